"""Multipart uploads: Create, UploadPart, UploadPartCopy, Complete, Abort, ListParts,
ListMultipartUploads."""

from __future__ import annotations

from aiohttp import web

from lightningstor.blobs.checksums import checksum_type
from lightningstor.errors import InvalidArgument
from lightningstor.model import RangeRequest
from lightningstor.objects.multipart import CompletedPart
from lightningstor_server.s3 import headers as h
from lightningstor_server.s3.body import object_upload, small_body
from lightningstor_server.s3.configuration import check_write_headers
from lightningstor_server.s3.context import S3Call
from lightningstor_server.s3.copy import COPY_SOURCE_PREFIX
from lightningstor_server.s3.errors import MalformedXML
from lightningstor_server.s3.params import plain_number
from lightningstor_server.s3.xml import (
    CHECKSUM_ELEMENTS,
    checksum_elements,
    document,
    element,
    group,
    local_name,
    parse_request,
)

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
    )
    reply = {}
    if algorithm:
        reply = {
            "x-amz-checksum-algorithm": algorithm.upper(),
            "x-amz-checksum-type": upload.checksum_type,
        }
    fields = [
        element("Bucket", upload.bucket),
        element("Key", upload.key),
        element("UploadId", upload.upload_id),
    ]
    return web.Response(
        body=document("InitiateMultipartUploadResult", fields),
        content_type="application/xml",
        headers=reply,
    )


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
    reader = await call.store.open_object(
        *source,
        byte_range=_copy_range(headers.get("x-amz-copy-source-range")),
        preconditions=h.preconditions(headers, prefix=COPY_SOURCE_PREFIX),
        exact_range=True,
    )
    # A range of a blob is other content, so its bytes are staged as a new blob.
    part = await call.gateway.multipart.upload_part(
        call.endpoint.bucket, call.endpoint.key, call.params.upload_id, number, reader.chunks
    )
    fields = [element("LastModified", h.iso_date(part.mtime_ns)), element("ETag", f'"{part.etag}"')]
    fields += checksum_elements(part.checksums)
    return web.Response(body=document("CopyPartResult", fields), content_type="application/xml")


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
    fields = [
        element("Location", f"/{head.bucket}/{head.key}"),
        element("Bucket", head.bucket),
        element("Key", head.key),
        element("ETag", f'"{head.etag}"'),
        *checksum_elements(dict(head.checksums)),
        *(element("ChecksumType", checksum_type(v)) for v in list(head.checksums.values())[:1]),
    ]
    return web.Response(
        body=document("CompleteMultipartUploadResult", fields), content_type="application/xml"
    )


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
    owner = [element("ID", call.caller), element("DisplayName", call.caller)]
    entries = [
        group(
            "Part",
            [
                element("PartNumber", p.number),
                element("LastModified", h.iso_date(p.mtime_ns)),
                element("ETag", f'"{p.etag}"'),
                element("Size", p.size),
                *checksum_elements(p.checksums),
            ],
        )
        for p in parts
    ]
    fields = [
        element("Bucket", upload.bucket),
        element("Key", upload.key),
        element("UploadId", upload.upload_id),
        group("Initiator", owner),
        group("Owner", owner),
        element("StorageClass", "STANDARD"),
        element("PartNumberMarker", marker),
        element("NextPartNumberMarker", parts[-1].number if parts else marker),
        element("MaxParts", limit),
        element("IsTruncated", more),
        element("ChecksumAlgorithm", upload.checksum_algorithm.upper() or None),
        element("ChecksumType", upload.checksum_type or None),
        *entries,
    ]
    return web.Response(body=document("ListPartsResult", fields), content_type="application/xml")


async def handle_list_multipart_uploads(call: S3Call) -> web.StreamResponse:
    query = call.query
    limit = call.params.max_uploads
    key_marker, id_marker = query.get("key-marker", ""), query.get("upload-id-marker", "")
    prefix = query.get("prefix", "")
    uploads, more = await call.gateway.multipart.list_uploads(
        call.endpoint.bucket,
        prefix=prefix,
        key_marker=key_marker,
        upload_id_marker=id_marker,
        max_uploads=limit,
    )
    owner = [element("ID", call.caller), element("DisplayName", call.caller)]
    entries = [
        group(
            "Upload",
            [
                element("Key", u.key),
                element("UploadId", u.upload_id),
                group("Initiator", owner),
                group("Owner", owner),
                element("StorageClass", "STANDARD"),
                element("Initiated", h.iso_date(u.created_ns)),
            ],
        )
        for u in uploads
    ]
    fields = [
        element("Bucket", call.endpoint.bucket),
        element("KeyMarker", key_marker),
        element("UploadIdMarker", id_marker),
        element("NextKeyMarker", uploads[-1].key if more and uploads else None),
        element("NextUploadIdMarker", uploads[-1].upload_id if more and uploads else None),
        element("Prefix", prefix),
        element("MaxUploads", limit),
        element("IsTruncated", more),
        *entries,
    ]
    return web.Response(
        body=document("ListMultipartUploadsResult", fields), content_type="application/xml"
    )
