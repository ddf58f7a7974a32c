"""A small async client of LightningSTOR's gRPC API, for internal services.

    async with Client("127.0.0.1:50051", access_key_id=..., secret_access_key=...) as ls:
        await ls.create_bucket("photos")
        await ls.put_object("photos", "cat.jpg", data, content_type="image/jpeg")
        async for chunk in ls.iter_object("photos", "cat.jpg"):
            ...

Every call is signed per call (see ``lightningstor/tokens.py``); the secret never leaves the
process. A call the server refuses raises the core's own error class named by the S3 code the
server sent (``NoSuchKey``, ``PreconditionFailed``...), so callers catch the same exceptions as
code that uses the ObjectStore directly; transport failures (UNAVAILABLE, DEADLINE_EXCEEDED)
stay ``grpc.aio.AioRpcError``. Code that drives the generated stubs itself signs its calls with
:func:`call_metadata`.

Every data message carries the CRC32C of its bytes (the proto's ``crc32c`` fields, as in Cloud
Storage v2): the client sets it on each chunk it writes, so the server refuses a chunk damaged in
transit before anything is stored, and checks it on each chunk it reads, raising
:class:`~lightningstor.errors.BadDigest` on a mismatch (:func:`verify_chunk`).

This module is part of the core package that internal services install: it imports grpc and
the generated stubs, never the server.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc

from lightningstor import errors
from lightningstor.model import COMPLIANCE, GOVERNANCE, Retention
from lightningstor.v1 import storage_pb2 as pb
from lightningstor.v1 import storage_pb2_grpc as pb_grpc
from lightningstor.wire import (
    BUCKET_SERVICE,
    DELETE_MARKER_KEY,
    ERROR_CODE_KEY,
    KEY_ID_HEADER,
    MAX_CHUNK_BYTES,
    MULTIPART_SERVICE,
    NONCE_HEADER,
    OBJECT_SERVICE,
    OBJECT_SIZE_KEY,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WRITE_ACCEPTED_KEY,
    chunk_crc32c,
    new_nonce,
    sign_call,
)

_Unary = grpc.aio.UnaryUnaryMultiCallable
Req = TypeVar("Req")
Resp = TypeVar("Resp")
ListItem = pb.Object | str  # an object, or a common prefix when listing with a delimiter
_MODES = {GOVERNANCE: pb.RETENTION_MODE_GOVERNANCE, COMPLIANCE: pb.RETENTION_MODE_COMPLIANCE}


def call_metadata(
    access_key_id: str, secret_access_key: str, method: str, *, timestamp: int | None = None
) -> list[tuple[str, str]]:
    """The metadata that signs one call of ``method`` ("/lightningstor.v1.ObjectService/...")."""
    when = int(time.time()) if timestamp is None else timestamp
    nonce = new_nonce()  # one per call: the server accepts each token once
    return [
        (KEY_ID_HEADER, access_key_id),
        (TIMESTAMP_HEADER, str(when)),
        (NONCE_HEADER, nonce),
        (SIGNATURE_HEADER, sign_call(secret_access_key, method, when, nonce)),
    ]


def verify_chunk(data: bytes, crc32c: int, *, offset: int) -> None:
    """Raise BadDigest unless ``crc32c`` is the CRC32C of ``data``, read at object ``offset``."""
    computed = chunk_crc32c(data)
    if computed != crc32c:
        raise errors.BadDigest(
            f"The {len(data)} bytes read at offset {offset} have CRC32C {computed:#010x}, "
            f"but the server sent {crc32c:#010x}: the data was damaged in transit.",
            resource="crc32c",
        )


def _error_classes() -> dict[str, type[errors.StorageError]]:
    """S3 code -> the core class that names it (families without a code of their own skipped)."""
    found: dict[str, type[errors.StorageError]] = {}
    pending = list(errors.StorageError.__subclasses__())
    while pending:
        cls = pending.pop(0)
        pending.extend(cls.__subclasses__())
        if cls.__module__ == errors.__name__ and "code" in vars(cls):
            found.setdefault(cls.code, cls)
    return found


_ERROR_CLASSES = _error_classes()


def translate_error(error: grpc.aio.AioRpcError) -> Exception:
    """The core error a refused call stands for, or ``error`` itself for transport failures."""
    # grpc.aio hands back (key, value) pairs; the stubs describe the sync API's objects.
    pairs: Any = error.trailing_metadata() or ()
    trailing = {str(key): str(value) for key, value in pairs}
    code = trailing.get(ERROR_CODE_KEY, "")
    cls = _ERROR_CLASSES.get(code)
    message = (error.details() or "").removeprefix(f"{code}: ")
    if cls is None:
        # Every NOT_FOUND code without a class of its own names a configuration the bucket
        # lacks (NoSuchTagSet, NoSuchLifecycleConfiguration, NoSuchBucketPolicy...).
        if code and error.code() == grpc.StatusCode.NOT_FOUND:
            return errors.NoSuchConfiguration(code, message)
        return error
    if cls is errors.InvalidRange:
        size = trailing.get(OBJECT_SIZE_KEY, "")
        return errors.InvalidRange(message, size=int(size) if size.isdigit() else 0)
    marker = trailing.get(DELETE_MARKER_KEY) or None
    if cls is errors.IsDeleteMarker:
        return errors.IsDeleteMarker(marker or "")
    if cls is errors.NoSuchKey:
        return errors.NoSuchKey(message, delete_marker=marker)
    return cls(message)


def retention_message(retention: Retention) -> pb.ObjectRetention:
    """``retention`` (mode GOVERNANCE or COMPLIANCE) as the API sends it; ValueError for
    another mode."""
    mode = _MODES.get(retention.mode)
    if mode is None:
        raise ValueError(f"A retention mode is GOVERNANCE or COMPLIANCE, not {retention.mode!r}.")
    return pb.ObjectRetention(mode=mode, retain_until_unix_nanos=retention.until_ns)


def retention_of(obj: pb.Object) -> Retention | None:
    """The retention a HeadObject (or write) answer reports, or None."""
    if not obj.HasField("retention"):
        return None
    names = {number: name for name, number in _MODES.items()}
    return Retention(
        mode=names.get(obj.retention.mode, ""), until_ns=obj.retention.retain_until_unix_nanos
    )


class ChannelOwner:
    """Owns one grpc.aio channel to a daemon (TLS when credentials are given) and the access
    key that signs its calls, and closes it as an async context manager. Create it inside a
    running loop."""

    def __init__(
        self,
        target: str,
        channel_credentials: grpc.ChannelCredentials | None,
        *,
        access_key_id: str,
        secret_access_key: str,
    ) -> None:
        self._key_id = access_key_id
        self._secret = secret_access_key
        if channel_credentials is None:
            self._channel = grpc.aio.insecure_channel(target)
        else:
            self._channel = grpc.aio.secure_channel(target, channel_credentials)

    def _signed(self, method: str) -> list[tuple[str, str]]:
        return call_metadata(self._key_id, self._secret, method)

    async def close(self) -> None:
        await self._channel.close(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Client(ChannelOwner):
    """An authenticated channel to one LightningSTOR daemon. Create it inside a running loop."""

    def __init__(
        self,
        target: str,
        *,
        access_key_id: str,
        secret_access_key: str,
        channel_credentials: grpc.ChannelCredentials | None = None,
        timeout_seconds: float | None = None,
    ) -> None:
        # Deadline of unary calls; streams run as long as their bytes keep flowing.
        self._timeout = timeout_seconds
        super().__init__(
            target,
            channel_credentials,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
        )
        # The generated stubs are untyped; these annotations are their types.
        buckets: Any = pb_grpc.BucketServiceStub(self._channel)  # type: ignore[no-untyped-call]
        objects: Any = pb_grpc.ObjectServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._buckets, self._objects = buckets, objects  # for the calls without a typed slot
        self._create_bucket: _Unary[pb.CreateBucketRequest, pb.Bucket] = buckets.CreateBucket
        self._get_bucket: _Unary[pb.GetBucketRequest, pb.Bucket] = buckets.GetBucket
        self._delete_bucket: _Unary[pb.DeleteBucketRequest, pb.DeleteBucketResponse] = (
            buckets.DeleteBucket
        )
        self._list_buckets: _Unary[pb.ListBucketsRequest, pb.ListBucketsResponse] = (
            buckets.ListBuckets
        )
        self._write_object: grpc.aio.StreamUnaryMultiCallable[
            pb.WriteObjectRequest, pb.WriteObjectResponse
        ] = objects.WriteObject
        self._read_object: grpc.aio.UnaryStreamMultiCallable[
            pb.ReadObjectRequest, pb.ReadObjectResponse
        ] = objects.ReadObject
        self._head_object: _Unary[pb.HeadObjectRequest, pb.Object] = objects.HeadObject
        self._delete_object: _Unary[pb.DeleteObjectRequest, pb.DeleteObjectResponse] = (
            objects.DeleteObject
        )
        self._list_objects: _Unary[pb.ListObjectsRequest, pb.ListObjectsResponse] = (
            objects.ListObjects
        )
        self._copy_object: _Unary[pb.CopyObjectRequest, pb.Object] = objects.CopyObject
        self._multipart: Any = pb_grpc.MultipartServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def _unary(
        self, rpc: grpc.aio.UnaryUnaryMultiCallable[Req, Resp], method: str, request: Req
    ) -> Resp:
        try:
            return await rpc(request, metadata=self._signed(method), timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            raise translate_error(error) from error

    # --- buckets --------------------------------------------------------------------------
    async def create_bucket(self, name: str, *, object_lock_enabled: bool = False) -> pb.Bucket:
        """With ``object_lock_enabled`` the bucket has object lock and versioning, for good."""
        request = pb.CreateBucketRequest(name=name, object_lock_enabled=object_lock_enabled)
        return await self._unary(self._create_bucket, BUCKET_SERVICE + "CreateBucket", request)

    async def set_bucket_versioning(self, name: str, *, enabled: bool) -> pb.Bucket:
        """Enable versioning, or (``enabled=False``) suspend it; the bucket as it now is.
        Suspending a bucket with object lock raises InvalidBucketState."""
        status = pb.VERSIONING_STATUS_ENABLED if enabled else pb.VERSIONING_STATUS_SUSPENDED
        request = pb.SetBucketVersioningRequest(name=name, status=status)
        method = BUCKET_SERVICE + "SetBucketVersioning"
        return await self._unary(self._buckets.SetBucketVersioning, method, request)

    async def set_object_lock_configuration(
        self, name: str, *, mode: str = "", days: int = 0, years: int = 0
    ) -> pb.Bucket:
        """Turn object lock on (versioning must be enabled), with a default retention of
        ``days`` or ``years`` in ``mode`` (GOVERNANCE or COMPLIANCE; "" for none)."""
        request = pb.SetObjectLockConfigurationRequest(name=name)
        if mode or days or years:
            request.default_retention.CopyFrom(
                pb.DefaultRetention(
                    mode=_MODES.get(mode, pb.RETENTION_MODE_UNSPECIFIED), days=days, years=years
                )
            )
        method = BUCKET_SERVICE + "SetObjectLockConfiguration"
        return await self._unary(self._buckets.SetObjectLockConfiguration, method, request)

    async def set_bucket_lifecycle(
        self, bucket: str, rules: Sequence[pb.LifecycleRule]
    ) -> list[pb.LifecycleRule]:
        """Replace the bucket's lifecycle configuration; its rules as stored (each with an id).
        A configuration S3 would refuse raises InvalidArgument, InvalidRequest or
        InvalidStorageClass (any transition), and the one in force stays."""
        request = pb.SetBucketLifecycleRequest(bucket=bucket, rules=rules)
        method = BUCKET_SERVICE + "SetBucketLifecycle"
        return list((await self._unary(self._buckets.SetBucketLifecycle, method, request)).rules)

    async def get_bucket_lifecycle(self, bucket: str) -> list[pb.LifecycleRule]:
        """Raises NoSuchConfiguration (NoSuchLifecycleConfiguration) for a bucket without one."""
        request = pb.GetBucketLifecycleRequest(bucket=bucket)
        method = BUCKET_SERVICE + "GetBucketLifecycle"
        return list((await self._unary(self._buckets.GetBucketLifecycle, method, request)).rules)

    async def delete_bucket_lifecycle(self, bucket: str) -> None:
        request = pb.DeleteBucketLifecycleRequest(bucket=bucket)
        method = BUCKET_SERVICE + "DeleteBucketLifecycle"
        await self._unary(self._buckets.DeleteBucketLifecycle, method, request)

    async def set_bucket_tags(self, bucket: str, tags: Mapping[str, str]) -> dict[str, str]:
        """Replace the bucket's tag set ({} is an empty set, not none); InvalidTag for a set
        S3 refuses."""
        request = pb.SetBucketTaggingRequest(bucket=bucket, tags=dict(tags))
        method = BUCKET_SERVICE + "SetBucketTagging"
        return dict((await self._unary(self._buckets.SetBucketTagging, method, request)).tags)

    async def get_bucket_tags(self, bucket: str) -> dict[str, str]:
        """Raises NoSuchConfiguration (NoSuchTagSet) for a bucket without a tag set."""
        request = pb.GetBucketTaggingRequest(bucket=bucket)
        method = BUCKET_SERVICE + "GetBucketTagging"
        return dict((await self._unary(self._buckets.GetBucketTagging, method, request)).tags)

    async def delete_bucket_tags(self, bucket: str) -> None:
        request = pb.DeleteBucketTaggingRequest(bucket=bucket)
        method = BUCKET_SERVICE + "DeleteBucketTagging"
        await self._unary(self._buckets.DeleteBucketTagging, method, request)

    async def get_bucket(self, name: str) -> pb.Bucket:
        request = pb.GetBucketRequest(name=name)
        return await self._unary(self._get_bucket, BUCKET_SERVICE + "GetBucket", request)

    async def delete_bucket(self, name: str) -> None:
        request = pb.DeleteBucketRequest(name=name)
        await self._unary(self._delete_bucket, BUCKET_SERVICE + "DeleteBucket", request)

    async def list_buckets(self) -> list[pb.Bucket]:
        request = pb.ListBucketsRequest()
        reply = await self._unary(self._list_buckets, BUCKET_SERVICE + "ListBuckets", request)
        return list(reply.buckets)

    # --- objects --------------------------------------------------------------------------
    async def put_object(
        self,
        bucket: str,
        key: str,
        data: bytes | AsyncIterable[bytes],
        *,
        content_type: str = "",
        metadata: Mapping[str, str] | None = None,
        checksums: Mapping[str, str] | None = None,
        if_none_match: str = "",
        if_match: str = "",
        retention: Retention | None = None,
        legal_hold: bool | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> pb.Object:
        """Store ``data`` as ``bucket/key``; nothing is visible unless every byte arrived. The
        version as placed (its ``version_id``, its lock, its ``tags``).

        ``checksums`` (algorithm -> base64) are verified by the server before it commits; each
        chunk also carries its own CRC32C, so a chunk damaged in transit fails the write with
        BadDigest and nothing is stored. ``retention`` and ``legal_hold`` lock the new version
        (the bucket must have object lock); without a retention it gets the bucket's default.
        """
        spec = pb.WriteSpec(
            bucket=bucket,
            key=key,
            headers=pb.ContentHeaders(content_type=content_type),
            metadata=metadata or {},
            checksums=checksums or {},
            # A size known up front lets the server refuse a short or long body.
            size=len(data) if isinstance(data, bytes) else None,
            if_none_match=if_none_match,
            if_match=if_match,
            retention=None if retention is None else retention_message(retention),
            legal_hold=legal_hold,
            tags=tags or {},
        )
        call = self._write_object(None, metadata=self._signed(OBJECT_SERVICE + "WriteObject"))
        try:
            await _send(call, pb.WriteObjectRequest, spec, data)
            reply = await call
        except grpc.aio.AioRpcError as error:
            raise translate_error(error) from error
        finally:
            # A no-op once the call is done; if the data source failed, the server sees the
            # stream end without finish_write and stores nothing.
            call.cancel()
        return reply.object

    async def iter_object(
        self,
        bucket: str,
        key: str,
        *,
        offset: int = 0,
        limit: int = 0,
        suffix_length: int = 0,
        if_match: str = "",
        if_none_match: str = "",
        version_id: str = "",
    ) -> AsyncGenerator[bytes, None]:
        """The object's bytes (``limit`` 0: to the end; ``suffix_length``: the last bytes), of
        its current version or ``version_id``.

        Each chunk is checked against the CRC32C the server sent with it before it is yielded;
        a mismatch raises BadDigest (and cancels the call). A caller that stops early should
        ``aclose()`` it, which cancels the call at once.
        """
        request = pb.ReadObjectRequest(
            bucket=bucket,
            key=key,
            read_offset=offset,
            read_limit=limit,
            suffix_length=suffix_length,
            if_match=if_match,
            if_none_match=if_none_match,
            version_id=version_id,
        )
        call = self._read_object(request, metadata=self._signed(OBJECT_SERVICE + "ReadObject"))
        offset = 0  # of the next chunk in the object, for error messages
        try:
            async for reply in call:
                if reply.HasField("content_range"):
                    offset = reply.content_range.start
                # Each read of a bytes field copies it out of the message: read it once.
                data = reply.data
                if reply.HasField("crc32c"):
                    verify_chunk(data, reply.crc32c, offset=offset)
                if data:
                    offset += len(data)
                    yield data
        except grpc.aio.AioRpcError as error:
            raise translate_error(error) from error
        finally:
            call.cancel()  # the caller stopped reading early: stop the server sending

    async def get_object(
        self, bucket: str, key: str, *, offset: int = 0, limit: int = 0, version_id: str = ""
    ) -> bytes:
        """The object's bytes, whole in memory: for small objects; use iter_object otherwise.

        Every chunk is verified as :meth:`iter_object` verifies it (BadDigest on a mismatch).
        """
        chunks = self.iter_object(bucket, key, offset=offset, limit=limit, version_id=version_id)
        return b"".join([c async for c in chunks])

    async def head_object(self, bucket: str, key: str, *, version_id: str = "") -> pb.Object:
        """The current version's metadata, or ``version_id``'s (NoSuchVersion if it has no
        such version, IsDeleteMarker if it is a delete marker)."""
        request = pb.HeadObjectRequest(bucket=bucket, key=key, version_id=version_id)
        return await self._unary(self._head_object, OBJECT_SERVICE + "HeadObject", request)

    async def delete_object(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str = "",
        bypass_governance_retention: bool = False,
    ) -> bool:
        """Remove the object (or one version of it); False if there was none. See
        :meth:`delete` for what the delete did."""
        reply = await self.delete(
            bucket,
            key,
            version_id=version_id,
            bypass_governance_retention=bypass_governance_retention,
        )
        return reply.existed

    async def delete(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str = "",
        bypass_governance_retention: bool = False,
    ) -> pb.DeleteObjectResponse:
        """Without ``version_id``: remove the key, or in a versioned bucket put a delete marker
        on it. With one: remove that version for good. What was removed or placed comes back
        (``version_id``, ``delete_marker``). A locked version raises AccessDenied; the bypass
        of GOVERNANCE retention is honoured for admin keys only."""
        request = pb.DeleteObjectRequest(
            bucket=bucket,
            key=key,
            version_id=version_id,
            bypass_governance_retention=bypass_governance_retention,
        )
        return await self._unary(self._delete_object, OBJECT_SERVICE + "DeleteObject", request)

    async def set_object_retention(
        self,
        bucket: str,
        key: str,
        retention: Retention | None,
        *,
        version_id: str = "",
        bypass_governance_retention: bool = False,
    ) -> pb.Object:
        """Set (None: remove) a version's retention; the version as it now is."""
        request = pb.SetObjectRetentionRequest(
            bucket=bucket,
            key=key,
            version_id=version_id,
            retention=None if retention is None else retention_message(retention),
            bypass_governance_retention=bypass_governance_retention,
        )
        method = OBJECT_SERVICE + "SetObjectRetention"
        return await self._unary(self._objects.SetObjectRetention, method, request)

    async def set_object_legal_hold(
        self, bucket: str, key: str, on: bool, *, version_id: str = ""
    ) -> pb.Object:
        """Put a legal hold on a version or lift it; the version as it now is."""
        request = pb.SetObjectLegalHoldRequest(
            bucket=bucket, key=key, version_id=version_id, legal_hold=on
        )
        method = OBJECT_SERVICE + "SetObjectLegalHold"
        return await self._unary(self._objects.SetObjectLegalHold, method, request)

    async def set_object_tags(
        self, bucket: str, key: str, tags: Mapping[str, str], *, version_id: str = ""
    ) -> pb.Object:
        """Replace a version's tags (empty: remove them); InvalidTag for a set S3 refuses."""
        request = pb.SetObjectTaggingRequest(
            bucket=bucket, key=key, version_id=version_id, tags=dict(tags)
        )
        method = OBJECT_SERVICE + "SetObjectTagging"
        return await self._unary(self._objects.SetObjectTagging, method, request)

    async def get_object_attributes(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str = "",
        part_number_marker: int = 0,
        max_parts: int = 0,
    ) -> pb.ObjectAttributes:
        """S3's GetObjectAttributes: size, ETag, checksums and one page of a multipart
        object's parts (those numbered above ``part_number_marker``; ``truncated`` says more
        follow)."""
        request = pb.GetObjectAttributesRequest(
            bucket=bucket,
            key=key,
            version_id=version_id,
            part_number_marker=part_number_marker,
            max_parts=max_parts,
        )
        method = OBJECT_SERVICE + "GetObjectAttributes"
        return await self._unary(self._objects.GetObjectAttributes, method, request)

    async def copy_object(
        self,
        source: tuple[str, str],
        target: tuple[str, str],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        source_version_id: str = "",
        retention: Retention | None = None,
        legal_hold: bool | None = None,
    ) -> pb.Object:
        """Server-side copy of (bucket, key) ``source`` (its current version, or
        ``source_version_id``) to ``target``; no bytes travel. The new version as placed.

        Giving ``content_type`` or ``metadata`` replaces the source's; otherwise both are copied.
        The source's lock is never copied; ``retention`` and ``legal_hold`` lock the new version.
        """
        replace = content_type is not None or metadata is not None
        request = pb.CopyObjectRequest(
            source_bucket=source[0],
            source_key=source[1],
            bucket=target[0],
            key=target[1],
            replace_metadata=replace,
            headers=pb.ContentHeaders(content_type=content_type or ""),
            metadata=metadata or {},
            source_version_id=source_version_id,
            retention=None if retention is None else retention_message(retention),
            legal_hold=legal_hold,
        )
        return await self._unary(self._copy_object, OBJECT_SERVICE + "CopyObject", request)

    # --- multipart ----------------------------------------------------------------------
    async def create_multipart_upload(
        self,
        bucket: str,
        key: str,
        *,
        content_type: str = "",
        checksum_algorithm: str = "",
        retention: Retention | None = None,
        legal_hold: bool | None = None,
    ) -> pb.MultipartUpload:
        """``retention`` and ``legal_hold`` lock the version the completion makes."""
        request = pb.CreateMultipartUploadRequest(
            bucket=bucket,
            key=key,
            headers=pb.ContentHeaders(content_type=content_type),
            checksum_algorithm=checksum_algorithm,
            retention=None if retention is None else retention_message(retention),
            legal_hold=legal_hold,
        )
        method = MULTIPART_SERVICE + "CreateMultipartUpload"
        return await self._unary(self._multipart.CreateMultipartUpload, method, request)

    async def upload_part(
        self, upload: pb.MultipartUpload, part_number: int, data: bytes | AsyncIterable[bytes]
    ) -> pb.Part:
        """Stream one part; sending the same number again replaces it.

        Each chunk carries its CRC32C, as with :meth:`put_object`: a chunk damaged in transit
        fails the part with BadDigest and records nothing.
        """
        spec = pb.PartSpec(
            bucket=upload.bucket,
            key=upload.key,
            upload_id=upload.upload_id,
            part_number=part_number,
            size=len(data) if isinstance(data, bytes) else None,
        )
        metadata = self._signed(MULTIPART_SERVICE + "UploadPart")
        call = self._multipart.UploadPart(None, metadata=metadata)
        try:
            await _send(call, pb.UploadPartRequest, spec, data)
            part: pb.Part = await call
        except grpc.aio.AioRpcError as error:
            raise translate_error(error) from error
        finally:
            call.cancel()
        return part

    async def complete_multipart_upload(
        self, upload: pb.MultipartUpload, parts: Sequence[pb.Part]
    ) -> pb.Object:
        """Make the object from ``parts`` (in ascending order); the rest are discarded."""
        request = pb.CompleteMultipartUploadRequest(
            bucket=upload.bucket,
            key=upload.key,
            upload_id=upload.upload_id,
            parts=[pb.CompletedPart(part_number=p.part_number, etag=p.etag) for p in parts],
        )
        method = MULTIPART_SERVICE + "CompleteMultipartUpload"
        return await self._unary(self._multipart.CompleteMultipartUpload, method, request)

    async def abort_multipart_upload(self, upload: pb.MultipartUpload) -> None:
        request = pb.AbortMultipartUploadRequest(
            bucket=upload.bucket, key=upload.key, upload_id=upload.upload_id
        )
        method = MULTIPART_SERVICE + "AbortMultipartUpload"
        await self._unary(self._multipart.AbortMultipartUpload, method, request)

    async def list_parts(self, upload: pb.MultipartUpload) -> list[pb.Part]:
        parts: list[pb.Part] = []
        marker = 0
        while True:
            request = pb.ListPartsRequest(
                bucket=upload.bucket,
                key=upload.key,
                upload_id=upload.upload_id,
                part_number_marker=marker,
            )
            page = await self._unary(
                self._multipart.ListParts, MULTIPART_SERVICE + "ListParts", request
            )
            parts += page.parts
            if not page.truncated:
                return parts
            marker = page.parts[-1].part_number

    async def put_large_object(
        self,
        bucket: str,
        key: str,
        parts: AsyncIterable[bytes],
        *,
        content_type: str = "",
        retention: Retention | None = None,
        legal_hold: bool | None = None,
    ) -> pb.Object:
        """Upload a big object part by part (each item of ``parts`` is one part); aborts the
        upload if anything fails, so nothing is left behind."""
        upload = await self.create_multipart_upload(
            bucket, key, content_type=content_type, retention=retention, legal_hold=legal_hold
        )
        try:
            done = [await self.upload_part(upload, n, data) async for n, data in _numbered(parts)]
            return await self.complete_multipart_upload(upload, done)
        except BaseException:
            await self.abort_multipart_upload(upload)
            raise

    async def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        page_size: int = 0,
    ) -> AsyncGenerator[ListItem, None]:
        """Every object (and, with a delimiter, common prefix) in key order, page by page."""
        request = pb.ListObjectsRequest(
            bucket=bucket,
            prefix=prefix,
            delimiter=delimiter,
            start_after=start_after,
            page_size=page_size,
        )
        while True:
            page = await self._unary(self._list_objects, OBJECT_SERVICE + "ListObjects", request)
            items: list[ListItem] = [*page.objects, *page.common_prefixes]
            items.sort(key=lambda item: item if isinstance(item, str) else item.key)
            for item in items:
                yield item
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    async def list_object_versions(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        version_id_marker: str = "",
        page_size: int = 0,
    ) -> AsyncGenerator[ListItem, None]:
        """Every version and delete marker (``delete_marker`` set), keys in order and each
        key's versions newest first, and with a delimiter the common prefixes, page by page."""
        request = pb.ListObjectVersionsRequest(
            bucket=bucket,
            prefix=prefix,
            delimiter=delimiter,
            key_marker=key_marker,
            version_id_marker=version_id_marker,
            page_size=page_size,
        )
        method = OBJECT_SERVICE + "ListObjectVersions"
        while True:
            page = await self._unary(self._objects.ListObjectVersions, method, request)
            items: list[ListItem] = [*page.versions, *page.common_prefixes]
            # Stable: a key's versions keep the server's newest-first order.
            items.sort(key=lambda item: item if isinstance(item, str) else item.key)
            for item in items:
                yield item
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token


async def _send(
    call: Any,
    message: type[pb.WriteObjectRequest] | type[pb.UploadPartRequest],
    spec: Any,
    data: bytes | AsyncIterable[bytes],
) -> None:
    """Spec, data chunks each with its offset and CRC32C, then finish_write; stops if the
    server answers.

    The server marks its initial metadata once it has accepted the spec. Waiting for that
    before streaming means an early refusal (no such bucket, bad key, bad token) ends the call
    before any data is written: a write racing the refusal would lose its status to grpc.aio's
    "Internal error from Core" (grpc/grpc#36066).
    """
    offset = 0
    try:
        await call.write(message(spec=spec, write_offset=0))
        initial: Any = await call.initial_metadata()
        if not any(key == WRITE_ACCEPTED_KEY for key, _ in initial or ()):
            return  # refused: the status is on its way
        async for chunk in _chunks(data):
            await call.write(message(data=chunk, write_offset=offset, crc32c=chunk_crc32c(chunk)))
            offset += len(chunk)
        await call.write(message(write_offset=offset, finish_write=True))
        await call.done_writing()
    except (asyncio.InvalidStateError, grpc.aio.AioRpcError):
        return  # the server ended the call early (an error); awaiting the call reports it


async def _numbered(items: AsyncIterable[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    number = 0
    async for item in items:
        number += 1
        yield number, item


async def _chunks(data: bytes | AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """``data`` in pieces of at most MAX_CHUNK_BYTES, the largest the server accepts."""
    if isinstance(data, bytes):
        for start in range(0, len(data), MAX_CHUNK_BYTES):
            yield data[start : start + MAX_CHUNK_BYTES]
        return
    async for piece in data:
        for start in range(0, len(piece), MAX_CHUNK_BYTES):
            yield piece[start : start + MAX_CHUNK_BYTES]


class SyncClient:
    """The same client for code without an event loop: it runs one of its own in a thread.

    ``SyncClient(target, access_key_id=..., secret_access_key=...)`` offers every method of
    :class:`Client`; streaming ones return lists (``list_objects``) or bytes (``get_object``).
    """

    def __init__(self, target: str, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="lightningstor-client", daemon=True
        )
        self._thread.start()
        self._client: Client = self._call(self._make(target, options))

    @staticmethod
    async def _make(target: str, options: dict[str, Any]) -> Client:
        return Client(target, **options)  # the channel belongs to the loop it is made in

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if inspect.isasyncgen(result):
                return self._call(_collect(result))
            return self._call(result)

        return call

    def close(self) -> None:
        self._call(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _collect(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]
