"""MultipartService: the same multipart machinery the S3 door uses, over gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator

from lightningstor.errors import InvalidArgument
from lightningstor.model import BodyExpectations
from lightningstor.objects.gatekeeper import Gatekeeper
from lightningstor.objects.multipart import CompletedPart, MultipartUploads, PartInfo, UploadInfo
from lightningstor.v1 import storage_pb2 as pb
from lightningstor.v1 import storage_pb2_grpc as pb_grpc
from lightningstor_server.grpc.messages import (
    parse_headers,
    parse_page_size,
    parse_preconditions,
    parse_protection,
    parse_user_metadata,
    render_object,
)
from lightningstor_server.grpc.objects import write_stream, written_acl
from lightningstor_server.grpc.wrapping import Context


def render_upload(upload: UploadInfo) -> pb.MultipartUpload:
    return pb.MultipartUpload(
        bucket=upload.bucket,
        key=upload.key,
        upload_id=upload.upload_id,
        created_unix_nanos=upload.created_ns,
        checksum_algorithm=upload.checksum_algorithm,
    )


def render_part(part: PartInfo) -> pb.Part:
    return pb.Part(
        part_number=part.number,
        size=part.size,
        etag=part.etag,
        checksums=part.checksums,
        modified_unix_nanos=part.mtime_ns,
    )


class MultipartServicer(pb_grpc.MultipartServiceServicer):
    def __init__(self, *, uploads: MultipartUploads, gatekeeper: Gatekeeper | None = None) -> None:
        self._uploads = uploads
        self._gatekeeper = gatekeeper

    async def CreateMultipartUpload(
        self, request: pb.CreateMultipartUploadRequest, context: Context
    ) -> pb.MultipartUpload:
        upload = await self._uploads.create(
            request.bucket,
            request.key,
            headers=parse_headers(request.headers),
            user_metadata=parse_user_metadata(request.metadata),
            checksum_algorithm=request.checksum_algorithm.lower(),
            protection=parse_protection(request),
            tags=dict(request.tags),
            acl=await written_acl(self._gatekeeper, request.bucket),
        )
        return render_upload(upload)

    async def UploadPart(
        self, request_iterator: AsyncIterator[pb.UploadPartRequest], context: Context
    ) -> pb.Part:
        messages = aiter(request_iterator)
        first = await anext(messages, None)
        if first is None or first.WhichOneof("payload") != "spec":
            raise InvalidArgument("The first UploadPart message must carry the spec.")
        spec = first.spec
        expect = BodyExpectations(
            checksums={name.lower(): value for name, value in spec.checksums.items()},
            size=spec.size if spec.HasField("size") else None,
        )
        async with write_stream(first, messages, context=context) as body:
            part = await self._uploads.upload_part(
                spec.bucket, spec.key, spec.upload_id, spec.part_number, body, expect=expect
            )
        return render_part(part)

    async def CompleteMultipartUpload(
        self, request: pb.CompleteMultipartUploadRequest, context: Context
    ) -> pb.Object:
        parts = [
            CompletedPart(number=p.part_number, etag=p.etag, checksums=dict(p.checksums))
            for p in request.parts
        ]
        head = await self._uploads.complete(
            request.bucket,
            request.key,
            request.upload_id,
            parts,
            preconditions=parse_preconditions(
                if_match=request.if_match, if_none_match=request.if_none_match
            ),
        )
        return render_object(head)

    async def AbortMultipartUpload(
        self, request: pb.AbortMultipartUploadRequest, context: Context
    ) -> pb.AbortMultipartUploadResponse:
        await self._uploads.abort(request.bucket, request.key, request.upload_id)
        return pb.AbortMultipartUploadResponse()

    async def ListParts(
        self, request: pb.ListPartsRequest, context: Context
    ) -> pb.ListPartsResponse:
        upload, parts, more = await self._uploads.list_parts(
            request.bucket,
            request.key,
            request.upload_id,
            after=max(0, request.part_number_marker),
            max_parts=parse_page_size(request.max_parts),
        )
        return pb.ListPartsResponse(
            upload=render_upload(upload), parts=[render_part(p) for p in parts], truncated=more
        )

    async def ListMultipartUploads(
        self, request: pb.ListMultipartUploadsRequest, context: Context
    ) -> pb.ListMultipartUploadsResponse:
        uploads, more = await self._uploads.list_uploads(
            request.bucket,
            prefix=request.prefix,
            key_marker=request.key_marker,
            upload_id_marker=request.upload_id_marker,
            max_uploads=parse_page_size(request.max_uploads),
        )
        return pb.ListMultipartUploadsResponse(
            uploads=[render_upload(u) for u in uploads], truncated=more
        )
