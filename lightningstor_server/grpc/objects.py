"""ObjectService: streamed writes and reads, head, delete, paged listings of objects and of
versions, a version's retention, legal hold and tags, and its attributes (S3's
GetObjectAttributes, with its parts page by page)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager

from lightningstor.errors import BadDigest, IncompleteBody, InvalidArgument
from lightningstor.model import ObjectAcl
from lightningstor.objects.gatekeeper import Gatekeeper
from lightningstor.objects.store import ObjectStore
from lightningstor.v1 import storage_pb2 as pb
from lightningstor.v1 import storage_pb2_grpc as pb_grpc
from lightningstor.wire import WRITE_ACCEPTED_KEY, chunk_crc32c
from lightningstor_server.grpc.auth import current_caller, may_bypass_governance
from lightningstor_server.grpc.messages import (
    MAX_CHUNK_BYTES,
    decode_versions_after,
    encode_versions_after,
    parse_expectations,
    parse_headers,
    parse_page_size,
    parse_preconditions,
    parse_protection,
    parse_range,
    parse_retention,
    parse_user_metadata,
    parse_version_id,
    render_attributes,
    render_chunk,
    render_listed,
    render_object,
    render_range,
    render_version,
)
from lightningstor_server.grpc.wrapping import Context
from lightningstor_server.metrics import METRICS

_ACCEPTED = ((WRITE_ACCEPTED_KEY, "1"),)


class ObjectServicer(pb_grpc.ObjectServiceServicer):
    def __init__(self, *, store: ObjectStore, gatekeeper: Gatekeeper | None = None) -> None:
        self._store = store
        self._gatekeeper = gatekeeper

    async def _written(self, bucket: str) -> ObjectAcl | None:
        return await written_acl(self._gatekeeper, bucket)

    async def WriteObject(
        self, request_iterator: AsyncIterator[pb.WriteObjectRequest], context: Context
    ) -> pb.WriteObjectResponse:
        messages = aiter(request_iterator)
        first = await anext(messages, None)
        if first is None or first.WhichOneof("payload") != "spec":
            raise InvalidArgument("The first WriteObject message must carry the spec.")
        spec = first.spec
        async with write_stream(first, messages, context=context) as body:
            head = await self._store.put_object(
                spec.bucket,
                spec.key,
                body,
                headers=parse_headers(spec.headers),
                user_metadata=parse_user_metadata(spec.metadata),
                expect=parse_expectations(spec),
                preconditions=parse_preconditions(
                    if_match=spec.if_match, if_none_match=spec.if_none_match
                ),
                protection=parse_protection(spec),
                tags=dict(spec.tags),
                acl=await self._written(spec.bucket),
            )
        return pb.WriteObjectResponse(object=render_object(head))

    async def ReadObject(
        self, request: pb.ReadObjectRequest, context: Context
    ) -> AsyncIterator[pb.ReadObjectResponse]:
        reader = await self._store.open_object(
            request.bucket,
            request.key,
            byte_range=parse_range(request),
            version_id=parse_version_id(request.version_id),
            preconditions=parse_preconditions(
                if_match=request.if_match, if_none_match=request.if_none_match
            ),
        )
        async with _closing(reader.chunks) as chunks:
            yield pb.ReadObjectResponse(
                metadata=render_object(reader.head), content_range=render_range(reader)
            )
            async for chunk in chunks:
                METRICS.traffic("grpc", 0, len(chunk))
                for start in range(0, len(chunk), MAX_CHUNK_BYTES):
                    yield render_chunk(chunk[start : start + MAX_CHUNK_BYTES])

    async def HeadObject(self, request: pb.HeadObjectRequest, context: Context) -> pb.Object:
        head = await self._store.head_object(
            request.bucket, request.key, version_id=parse_version_id(request.version_id)
        )
        return render_object(head)

    async def DeleteObject(
        self, request: pb.DeleteObjectRequest, context: Context
    ) -> pb.DeleteObjectResponse:
        result = await self._store.delete_object(
            request.bucket,
            request.key,
            version_id=parse_version_id(request.version_id),
            bypass_governance=await may_bypass_governance(
                request.bypass_governance_retention, self._gatekeeper, request.bucket, request.key
            ),
        )
        return pb.DeleteObjectResponse(
            existed=result.existed,
            version_id=result.version_id or "",
            delete_marker=result.delete_marker,
        )

    async def CopyObject(self, request: pb.CopyObjectRequest, context: Context) -> pb.Object:
        replace = (
            (parse_headers(request.headers), parse_user_metadata(request.metadata))
            if request.replace_metadata
            else None
        )
        _source, head = await self._store.copy_object(
            (request.source_bucket, request.source_key),
            (request.bucket, request.key),
            source_version=parse_version_id(
                request.source_version_id, resource="source_version_id"
            ),
            replace=replace,
            source_preconditions=parse_preconditions(
                if_match=request.source_if_match, if_none_match=request.source_if_none_match
            ),
            preconditions=parse_preconditions(
                if_match=request.if_match, if_none_match=request.if_none_match
            ),
            protection=parse_protection(request),
            tags=dict(request.tags) if request.replace_tags else None,
            acl=await self._written(request.bucket),
        )
        return render_object(head)

    async def ListObjects(
        self, request: pb.ListObjectsRequest, context: Context
    ) -> pb.ListObjectsResponse:
        if request.page_token:
            after: str | None = self._store.resume_after(request.page_token)
        else:
            after = request.start_after or None
        page = await self._store.list_objects(
            request.bucket,
            prefix=request.prefix,
            delimiter=request.delimiter,
            after=after,
            max_keys=parse_page_size(request.page_size),
        )
        return pb.ListObjectsResponse(
            objects=[render_listed(request.bucket, entry) for entry in page.entries],
            common_prefixes=page.common_prefixes,
            next_page_token=""
            if page.next_after is None
            else self._store.page_token(page.next_after),
        )

    async def ListObjectVersions(
        self, request: pb.ListObjectVersionsRequest, context: Context
    ) -> pb.ListObjectVersionsResponse:
        page = await self._store.list_object_versions(
            request.bucket,
            prefix=request.prefix,
            delimiter=request.delimiter,
            after=self._versions_after(request),
            max_keys=parse_page_size(request.page_size),
        )
        return pb.ListObjectVersionsResponse(
            versions=[render_version(request.bucket, entry) for entry in page.entries],
            common_prefixes=page.common_prefixes,
            next_page_token=""
            if page.next_after is None
            else self._store.page_token(encode_versions_after(page.next_after)),
        )

    def _versions_after(
        self, request: pb.ListObjectVersionsRequest
    ) -> tuple[str, str | None] | None:
        """Where a version listing starts: its token's position, or S3's pair of markers."""
        if request.page_token:
            return decode_versions_after(self._store.resume_after(request.page_token))
        version_id = parse_version_id(request.version_id_marker, resource="version_id_marker")
        if version_id is not None and not request.key_marker:
            raise InvalidArgument(
                "A version_id_marker cannot be given without a key_marker.",
                resource="version_id_marker",
            )
        return (request.key_marker, version_id) if request.key_marker else None

    async def SetObjectRetention(
        self, request: pb.SetObjectRetentionRequest, context: Context
    ) -> pb.Object:
        retention = (
            parse_retention(request.retention, future=False)
            if request.HasField("retention")
            else None
        )
        head = await self._store.set_retention(
            request.bucket,
            request.key,
            retention,
            version_id=parse_version_id(request.version_id),
            bypass_governance=await may_bypass_governance(
                request.bypass_governance_retention, self._gatekeeper, request.bucket, request.key
            ),
        )
        return render_object(head)

    async def SetObjectLegalHold(
        self, request: pb.SetObjectLegalHoldRequest, context: Context
    ) -> pb.Object:
        head = await self._store.set_legal_hold(
            request.bucket,
            request.key,
            request.legal_hold,
            version_id=parse_version_id(request.version_id),
        )
        return render_object(head)

    async def SetObjectTagging(
        self, request: pb.SetObjectTaggingRequest, context: Context
    ) -> pb.Object:
        head = await self._store.set_object_tags(
            request.bucket,
            request.key,
            dict(request.tags),
            version_id=parse_version_id(request.version_id),
        )
        return render_object(head)

    async def GetObjectAttributes(
        self, request: pb.GetObjectAttributesRequest, context: Context
    ) -> pb.ObjectAttributes:
        head = await self._store.head_object(
            request.bucket, request.key, version_id=parse_version_id(request.version_id)
        )
        return render_attributes(
            head,
            after=max(0, request.part_number_marker),
            max_parts=parse_page_size(request.max_parts),
        )


async def written_acl(gatekeeper: Gatekeeper | None, bucket: str) -> ObjectAcl | None:
    """The owner of what the caller writes into ``bucket`` (S3 Object Ownership; None without
    a gatekeeper: the bucket's)."""
    if gatekeeper is None:
        return None
    return await gatekeeper.written_acl(current_caller().core, bucket)


# Streams with a spec first, then data with offsets and an explicit finish.
Framed = pb.WriteObjectRequest | pb.UploadPartRequest

# How long a write refused mid-stream goes on reading what its client still sends before the
# status goes out (see write_stream).
REFUSED_WRITE_DRAIN_SECONDS = 10.0


@asynccontextmanager
async def write_stream(
    first: Framed, messages: AsyncIterator[Framed], *, context: Context
) -> AsyncIterator[AsyncIterator[bytes]]:
    """The payload of a WriteObject (or UploadPart) call, for the core to store.

    When storing fails while the client is still streaming (a bad chunk CRC32C or offset, a full
    disk), the rest of its messages are read and dropped, up to finish_write or the end of the
    stream and for at most REFUSED_WRITE_DRAIN_SECONDS, before the error becomes the status. A
    grpc.aio client whose write fails because the call has ended loses the server's status to
    "Internal error from Core" (grpc/grpc#36066): the status must reach it after its last write.
    The core has discarded what it staged before this runs, so draining holds no disk space.
    A call refused before its spec was accepted is not drained: that client stops at once.
    """
    body = _WriteBody(first, messages, context=context)
    chunks = body.chunks()
    try:
        yield chunks
    except Exception:
        if body.accepted and not body.ended:
            await body.drain()
        raise
    finally:
        await chunks.aclose()  # if the core stopped reading it early


class _WriteBody:
    """One write stream's messages, checked as they arrive, and how far the stream got."""

    def __init__(self, first: Framed, messages: AsyncIterator[Framed], *, context: Context) -> None:
        self._first = first
        self._messages = messages
        self._context = context
        self.accepted = False  # the client was told to send its data
        self.ended = False  # finish_write arrived, or the stream ended

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The payload, each message checked as it arrives.

        The core stages what this yields and commits only after it is exhausted, so raising
        here, including when the stream ends without ``finish_write``, discards everything
        staged: a client that dies mid-upload leaves no object and no file behind. A message
        whose ``crc32c`` does not match its data is refused before its bytes are yielded
        (BadDigest), so a chunk damaged in transit never reaches the blob store.

        The first request for data means the core has accepted the spec (key, bucket,
        staging): initial metadata marked accepted then tells the client to stream. A grpc.aio
        client that writes after the server has refused the call loses its status to
        "Internal error from Core" (grpc/grpc#36066), so it waits for that mark.
        """
        received = 0
        message = self._first
        while True:
            # The client sends nothing after finish_write, whether this message passes or not.
            self.ended = message.finish_write
            if message is not self._first and message.WhichOneof("payload") == "spec":
                raise InvalidArgument("Only the first WriteObject message may carry a spec.")
            if message.write_offset != received:
                raise InvalidArgument(
                    f"write_offset is {message.write_offset}, but {received} bytes were received.",
                    resource="write_offset",
                )
            data = message.data  # each read of a bytes field copies it: read it once
            if len(data) > MAX_CHUNK_BYTES:
                raise InvalidArgument(
                    f"A data chunk holds at most {MAX_CHUNK_BYTES} bytes.", resource="data"
                )
            if message.HasField("crc32c"):
                _verify_chunk(message, data)
            if data:
                received += len(data)
                METRICS.traffic("grpc", len(data), 0)
                yield data
            if message.finish_write:
                return
            if message is self._first:
                await self._context.send_initial_metadata(_ACCEPTED)
                self.accepted = True
            following = await anext(self._messages, None)
            if following is None:
                self.ended = True
                raise IncompleteBody(
                    "The write stream ended without finish_write; nothing was stored."
                )
            message = following

    async def drain(self) -> None:
        """Read and drop the client's remaining messages (see write_stream)."""
        try:
            async with asyncio.timeout(REFUSED_WRITE_DRAIN_SECONDS):
                async for message in self._messages:
                    if message.finish_write:
                        return
        except TimeoutError:
            return


def _verify_chunk(message: Framed, data: bytes) -> None:
    """Refuse a message whose ``crc32c`` is not the CRC32C of its ``data`` (empty: 0).

    Inline on the event loop on purpose: awscrt's C implementation (hardware CRC32) takes
    under 0.1 ms for a full chunk, less than handing the chunk to the offload pool would.
    """
    computed = chunk_crc32c(data)
    if computed != message.crc32c:
        raise BadDigest(
            f"The data at write_offset {message.write_offset} has CRC32C {computed:#010x}, "
            f"but the message says {message.crc32c:#010x}; nothing was stored.",
            resource="crc32c",
        )


@asynccontextmanager
async def _closing(chunks: AsyncIterator[bytes]) -> AsyncIterator[AsyncIterator[bytes]]:
    """Close the core's byte stream when the read ends, however it ends.

    A client that cancels mid-read leaves the stream unfinished; closing it now releases the
    blob's file descriptor at once instead of whenever the generator is collected.
    """
    try:
        yield chunks
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
