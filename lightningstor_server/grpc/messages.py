"""Translation between ``lightningstor.v1`` messages and the core's plain values.

Proto3 has no "unset" for strings and integers, so the empty string and 0 mean "not given"
throughout, as the .proto documents field by field.
"""

from __future__ import annotations

from collections.abc import Mapping

from lightningstor.blobs.checksums import SUPPORTED_ALGORITHMS
from lightningstor.errors import InvalidArgument, InvalidRequest
from lightningstor.model import (
    DEFAULT_CONTENT_TYPE,
    BodyExpectations,
    BucketInfo,
    ContentHeaders,
    ListEntry,
    ObjectHead,
    Preconditions,
    RangeRequest,
)
from lightningstor.objects.store import ObjectReader
from lightningstor.v1 import storage_pb2 as pb
from lightningstor.wire import chunk_crc32c

MAX_CHUNK_BYTES = int(pb.MAX_CHUNK_BYTES)
MAX_PAGE_SIZE = int(pb.MAX_PAGE_SIZE)


# --- render ---------------------------------------------------------------------------------
def render_bucket(info: BucketInfo) -> pb.Bucket:
    return pb.Bucket(name=info.name, created_unix_nanos=info.created_ns, owner=info.owner)


def render_headers(headers: ContentHeaders) -> pb.ContentHeaders:
    return pb.ContentHeaders(
        content_type=headers.content_type,
        content_encoding=headers.content_encoding,
        content_disposition=headers.content_disposition,
        content_language=headers.content_language,
        cache_control=headers.cache_control,
        expires=headers.expires,
    )


def render_object(head: ObjectHead) -> pb.Object:
    return pb.Object(
        bucket=head.bucket,
        key=head.key,
        size=head.size,
        etag=head.etag,
        modified_unix_nanos=head.mtime_ns,
        headers=render_headers(head.headers),
        metadata=dict(head.user_metadata),
        checksums=dict(head.checksums),
    )


def render_listed(bucket: str, entry: ListEntry) -> pb.Object:
    """A listing knows less than a head: no headers, metadata or checksums."""
    return pb.Object(
        bucket=bucket,
        key=entry.key,
        size=entry.size,
        etag=entry.etag,
        modified_unix_nanos=entry.mtime_ns,
    )


def render_range(reader: ObjectReader) -> pb.ContentRange:
    """The inclusive range served; a whole empty object is ``0..-1`` of 0 bytes."""
    size = reader.head.size
    if reader.range is None:
        return pb.ContentRange(start=0, end=size - 1, complete_length=size)
    return pb.ContentRange(start=reader.range.start, end=reader.range.end, complete_length=size)


def render_chunk(data: bytes) -> pb.ReadObjectResponse:
    """A data message of a read, with the CRC32C a reader verifies it against."""
    return pb.ReadObjectResponse(data=data, crc32c=chunk_crc32c(data))


# --- parse ----------------------------------------------------------------------------------
def parse_headers(headers: pb.ContentHeaders) -> ContentHeaders:
    values = {
        "content_type": headers.content_type or DEFAULT_CONTENT_TYPE,
        "content_encoding": headers.content_encoding,
        "content_disposition": headers.content_disposition,
        "content_language": headers.content_language,
        "cache_control": headers.cache_control,
        "expires": headers.expires,
    }
    return ContentHeaders(**values)


def parse_user_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """Names are stored lowercase, as S3 stores x-amz-meta-* names, so both doors agree
    (the core checks that names and values are servable as HTTP headers)."""
    parsed: dict[str, str] = {}
    for name, value in metadata.items():
        lowered = name.lower()
        if lowered in parsed:
            raise InvalidArgument(f"Metadata name {lowered!r} is given twice.", resource=name)
        parsed[lowered] = value
    return parsed


def parse_expectations(spec: pb.WriteSpec) -> BodyExpectations:
    checksums: dict[str, str | None] = {}
    for name, value in spec.checksums.items():
        algorithm = name.lower()
        # Checked here as well as by the core so a bad name fails before any byte is staged.
        if algorithm not in SUPPORTED_ALGORITHMS:
            raise InvalidRequest(f"Checksum algorithm {name!r} is not supported.")
        checksums[algorithm] = value
    if spec.HasField("size") and spec.size < 0:
        raise InvalidArgument("size must not be negative.", resource="size")
    return BodyExpectations(checksums=checksums, size=spec.size if spec.HasField("size") else None)


def parse_preconditions(*, if_match: str, if_none_match: str) -> Preconditions | None:
    if not if_match and not if_none_match:
        return None
    return Preconditions(if_match=if_match or None, if_none_match=if_none_match or None)


def parse_range(request: pb.ReadObjectRequest) -> RangeRequest | None:
    """offset/limit (or a suffix) as the range S3 would write ``bytes=first-last`` for."""
    offset, limit, suffix = request.read_offset, request.read_limit, request.suffix_length
    if offset < 0 or limit < 0 or suffix < 0:
        raise InvalidArgument("read_offset, read_limit and suffix_length must not be negative.")
    if suffix:
        if offset or limit:
            raise InvalidArgument("suffix_length excludes read_offset and read_limit.")
        return RangeRequest(suffix=suffix)
    if not offset and not limit:
        return None
    return RangeRequest(first=offset, last=offset + limit - 1 if limit else None)


def parse_page_size(page_size: int) -> int:
    if page_size == 0:
        return MAX_PAGE_SIZE
    if not 0 < page_size <= MAX_PAGE_SIZE:
        raise InvalidArgument(
            f"page_size must be between 1 and {MAX_PAGE_SIZE}.", resource="page_size"
        )
    return page_size
