"""GetObjectAttributes: an object's ETag, checksum, parts, storage class and size, without its
bytes (``GET /bucket/key?attributes``)."""

from __future__ import annotations

from aiohttp import web

from lightningstor.blobs.checksums import checksum_type
from lightningstor.errors import InvalidArgument, InvalidRequest
from lightningstor.model import ObjectHead
from lightningstor_server.s3 import headers as h
from lightningstor_server.s3.context import S3Call
from lightningstor_server.s3.documents import GetObjectAttributesResponse, ObjectParts, xml_response
from lightningstor_server.s3.params import plain_number

ATTRIBUTES = frozenset({"ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"})
MAX_PARTS = 1000


async def handle_get_object_attributes(call: S3Call) -> web.StreamResponse:
    headers = call.headers
    wanted = _wanted(headers.get("x-amz-object-attributes", ""))
    head = await call.store.head_object(
        call.endpoint.bucket,
        call.endpoint.key,
        version_id=call.params.version_id,
        preconditions=h.preconditions(headers),
    )
    first = next(iter(head.checksums.values()), None)
    checksum = "Checksum" in wanted and first is not None
    result = GetObjectAttributesResponse(
        etag=head.etag if "ETag" in wanted else None,
        checksums=head.checksums if checksum else None,
        checksum_type=checksum_type(first) if checksum and first is not None else None,
        parts=_parts(call, head) if "ObjectParts" in wanted else None,
        storage_class="STANDARD" if "StorageClass" in wanted else None,
        size=head.size if "ObjectSize" in wanted else None,
    )
    return xml_response(
        result,
        headers={"Last-Modified": h.http_date(head.mtime_ns), **h.version_headers(head)},
    )


def _wanted(value: str) -> set[str]:
    names = {name.strip() for name in value.split(",") if name.strip()}
    if not names:
        raise InvalidRequest(
            "The x-amz-object-attributes header specifying the attributes "
            "to be retrieved is either missing or empty"
        )
    unknown = sorted(names - ATTRIBUTES)
    if unknown:
        raise InvalidArgument("Invalid attribute name specified.", resource=unknown[0])
    return names


def _parts(call: S3Call, head: ObjectHead) -> ObjectParts | None:
    """ObjectParts, for a multipart object only (as S3 answers)."""
    if "-" not in head.etag:
        return None
    marker = _number(call.headers.get("x-amz-part-number-marker"), 0)
    limit = min(_number(call.headers.get("x-amz-max-parts"), MAX_PARTS), MAX_PARTS)
    sums = head.part_checksums or tuple({} for _ in head.segments)
    numbered = list(enumerate(zip(head.segments, sums, strict=True), start=1))
    later = [(n, part) for n, part in numbered if n > marker]
    page = later[:limit]
    return ObjectParts(
        parts_count=len(head.segments),
        part_number_marker=marker,
        next_part_number_marker=page[-1][0] if page else marker,
        max_parts=limit,
        truncated=len(later) > limit,
        parts=[(n, seg.size, seg_sums) for n, (seg, seg_sums) in page],
    )


def _number(value: str | None, default: int) -> int:
    if value is None:
        return default
    number = plain_number(value)
    if number is None:
        raise InvalidArgument("Provided value is not an integer or within integer range")
    return number
