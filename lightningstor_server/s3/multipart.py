"""Multipart uploads: Create, UploadPart, UploadPartCopy, Complete, Abort, ListParts,
ListMultipartUploads."""

from __future__ import annotations

from aiohttp import web

from lightningstor.blobs.checksums import checksum_type
from lightningstor.errors import InvalidArgument, IsDeleteMarker
from lightningstor.model import RangeRequest
from lightningstor.objects.multipart import CompletedPart
from lightningstor.objects.versions import marker_copy_refused
from lightningstor_server.s3 import headers as h
from lightningstor_server.s3.acl import written_acl
from lightningstor_server.s3.body import object_upload, small_body
from lightningstor_server.s3.configuration import check_write_headers
from lightningstor_server.s3.context import S3Call
from lightningstor_server.s3.copy import COPY_SOURCE_PREFIX
from lightningstor_server.s3.documents import (
    CompleteMultipartUploadResult,
    CopyResult,
    InitiateMultipartUploadResult,
    ListedPart,
    ListedUpload,
    ListMultipartUploadsResult,
    ListPartsResult,
    xml_response,
)
from lightningstor_server.s3.errors import MalformedXML
from lightningstor_server.s3.params import plain_number
from lightningstor_server.s3.tagging import header_tags
from lightningstor_server.s3.xml import CHECKSUM_ELEMENTS, local_name, parse_request

# 10,000 parts of a few hundred bytes of XML each.
MAX_COMPLETE_BODY_BYTES = 8 * 1024 * 1024


def _checksum_headers(checksums: dict[str, str]) -> dict[str, str]:
    return {h.CHECKSUM_PREFIX + algorithm: value for algorithm, value in checksums.items()}


async def handle_create_multipart_upload(call: S3Call) -> web.StreamResponse:
    headers = call.headers
    check_write_headers(call)
    algorithm = headers.get("x-amz-checksum-algorithm", "").lower()
    upload = await call.gateway.multipart.create(
        call.endpoint.bucket,
        call.endpoint.key,
        headers=h.content_headers(headers),
        user_metadata=h.user_metadata(headers),
        checksum_algorithm=algorithm,
        checksum_type=headers.get("x-amz-checksum-type", ""),
        protection=h.protection(headers),
        acl=await written_acl(call, await call.bucket()),
        tags=header_tags(headers),
    )
    reply = {}
    if algorithm:
        reply = {
            "x-amz-checksum-algorithm": algorithm.upper(),
            "x-amz-checksum-type": upload.checksum_type,
        }
    result = InitiateMultipartUploadResult(upload.bucket, upload.key, upload.upload_id)
    return xml_response(result, headers=reply)


async def handle_upload_part(call: S3Call) -> web.StreamResponse:
    upload = object_upload(call)
    part = await call.gateway.multipart.upload_part(
        call.endpoint.bucket,
        call.endpoint.key,
        call.params.upload_id,
        call.params.part_number,
        upload.chunks,
        expect=upload.expect,
    )
    return web.Response(headers={"ETag": f'"{part.etag}"', **_checksum_headers(part.checksums)})


async def handle_upload_part_copy(call: S3Call) -> web.StreamResponse:
    headers = call.headers
    check_write_headers(call)
    source, number = call.params.copy_source, call.params.part_number
    assert source is not None  # the router parses it, and authorizes reading it
    try:
        reader = await call.store.open_object(
            *source,
            byte_range=_copy_range(headers.get("x-amz-copy-source-range")),
            version_id=call.params.copy_source_version,
            preconditions=h.preconditions(headers, prefix=COPY_SOURCE_PREFIX),
            exact_range=True,
        )
    except IsDeleteMarker:
        raise marker_copy_refused(source[1]) from None
    # A range of a blob is other content, so its bytes are staged as a new blob.
    part = await call.gateway.multipart.upload_part(
        call.endpoint.bucket, call.endpoint.key, call.params.upload_id, number, reader.chunks
    )
    return xml_response(CopyResult("CopyPartResult", part.mtime_ns, part.etag, part.checksums))


def _copy_range(value: str | None) -> RangeRequest | None:
    if value is None:
        return None
    requested = h.byte_range(value)
    if requested is None or requested.first is None or requested.last is None:
        raise InvalidArgument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where "
            "first and last are the zero-based offsets of the first and last bytes to copy",
            resource="x-amz-copy-source-range",
        )
    return requested


def parse_complete(body: bytes) -> list[CompletedPart]:
    root = parse_request(body, "CompleteMultipartUpload")
    parts: list[CompletedPart] = []
    for node in root:
        if local_name(node.tag) != "Part":
            raise MalformedXML()
        fields = {local_name(child.tag): (child.text or "").strip() for child in node}
        number, etag = plain_number(fields.get("PartNumber"), max_digits=5), fields.get("ETag")
        if number is None or etag is None:
            raise MalformedXML()
        checksums = {a: fields[n] for n, a in CHECKSUM_ELEMENTS.items() if n in fields}
        parts.append(CompletedPart(number=number, etag=etag, checksums=checksums))
    return parts


async def handle_complete_multipart_upload(call: S3Call) -> web.StreamResponse:
    parts = parse_complete(await small_body(call, MAX_COMPLETE_BODY_BYTES))
    head = await call.gateway.multipart.complete(
        call.endpoint.bucket,
        call.endpoint.key,
        call.params.upload_id,
        parts,
        preconditions=h.preconditions(call.headers),
        checksums=h.declared_checksums(call.headers),
    )
    first = next(iter(head.checksums.values()), None)
    result = CompleteMultipartUploadResult(
        bucket=head.bucket,
        key=head.key,
        etag=head.etag,
        checksums=dict(head.checksums),
        checksum_type=checksum_type(first) if first is not None else None,
    )
    return xml_response(result, headers=h.version_headers(head))


async def handle_abort_multipart_upload(call: S3Call) -> web.StreamResponse:
    await call.gateway.multipart.abort(
        call.endpoint.bucket, call.endpoint.key, call.params.upload_id
    )
    return web.Response(status=204)


async def handle_list_parts(call: S3Call) -> web.StreamResponse:
    marker, limit = call.params.part_number_marker, call.params.max_parts
    upload, parts, more = await call.gateway.multipart.list_parts(
        call.endpoint.bucket,
        call.endpoint.key,
        call.params.upload_id,
        after=marker,
        max_parts=limit,
    )
    result = ListPartsResult(
        bucket=upload.bucket,
        key=upload.key,
        upload_id=upload.upload_id,
        owner=upload.owner or (await call.bucket()).owner,
        part_number_marker=marker,
        max_parts=limit,
        truncated=more,
        checksum_algorithm=upload.checksum_algorithm.upper() or None,
        checksum_type=upload.checksum_type or None,
        parts=[ListedPart(p.number, p.mtime_ns, p.etag, p.size, p.checksums) for p in parts],
    )
    return xml_response(result)


async def handle_list_multipart_uploads(call: S3Call) -> web.StreamResponse:
    query = call.query
    limit = call.params.max_uploads
    key_marker, id_marker = query.get("key-marker", ""), query.get("upload-id-marker", "")
    prefix = query.get("prefix", "")
    bucket = await call.bucket()
    uploads, more = await call.gateway.multipart.list_uploads(
        call.endpoint.bucket,
        prefix=prefix,
        key_marker=key_marker,
        upload_id_marker=id_marker,
        max_uploads=limit,
    )
    result = ListMultipartUploadsResult(
        bucket=call.endpoint.bucket,
        owner=bucket.owner,
        key_marker=key_marker,
        upload_id_marker=id_marker,
        prefix=prefix,
        max_uploads=limit,
        truncated=more,
        uploads=[
            ListedUpload(u.key, u.upload_id, u.created_ns, u.owner or bucket.owner) for u in uploads
        ],
    )
    return xml_response(result)
