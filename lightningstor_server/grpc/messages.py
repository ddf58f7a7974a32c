"""Translation between ``lightningstor.v1`` messages and the core's plain values.

Proto3 has no "unset" for strings and integers, so the empty string and 0 mean "not given"
throughout, as the .proto documents field by field.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from lightningstor.blobs.checksums import SUPPORTED_ALGORITHMS
from lightningstor.errors import InvalidArgument, InvalidRequest
from lightningstor.model import (
    COMPLIANCE,
    DEFAULT_CONTENT_TYPE,
    GOVERNANCE,
    UNVERSIONED,
    VERSIONING_ENABLED,
    VERSIONING_SUSPENDED,
    BodyExpectations,
    BucketInfo,
    ContentHeaders,
    DefaultRetention,
    ListEntry,
    ObjectHead,
    ObjectLock,
    Preconditions,
    Protection,
    RangeRequest,
    Retention,
    VersionEntry,
)
from lightningstor.objects.store import ObjectReader
from lightningstor.objects.versions import check_version_id
from lightningstor.v1 import storage_pb2 as pb
from lightningstor.wire import chunk_crc32c

MAX_CHUNK_BYTES = int(pb.MAX_CHUNK_BYTES)
MAX_PAGE_SIZE = int(pb.MAX_PAGE_SIZE)
MAX_RETENTION_DAYS = int(pb.MAX_RETENTION_DAYS)
MAX_RETENTION_YEARS = int(pb.MAX_RETENTION_YEARS)

# The proto's enums and the core's names, both ways.
_VERSIONING = {
    UNVERSIONED: pb.VERSIONING_STATUS_UNSPECIFIED,
    VERSIONING_ENABLED: pb.VERSIONING_STATUS_ENABLED,
    VERSIONING_SUSPENDED: pb.VERSIONING_STATUS_SUSPENDED,
}
_MODES = {GOVERNANCE: pb.RETENTION_MODE_GOVERNANCE, COMPLIANCE: pb.RETENTION_MODE_COMPLIANCE}
_MODE_NAMES: dict[int, str] = {number: name for name, number in _MODES.items()}
# A message that carries the lock a write asks for (retention + optional legal_hold).
Locking = pb.WriteSpec | pb.CopyObjectRequest | pb.CreateMultipartUploadRequest


# --- render ---------------------------------------------------------------------------------
def render_bucket(info: BucketInfo) -> pb.Bucket:
    bucket = pb.Bucket(
        name=info.name,
        created_unix_nanos=info.created_ns,
        owner=info.owner.id,
        owner_name=info.owner.name,
        versioning=_VERSIONING[info.versioning],
    )
    if info.object_lock is not None:
        bucket.object_lock.SetInParent()  # present, even with no default retention
        default = info.object_lock.default
        if default is not None:
            bucket.object_lock.default_retention.CopyFrom(
                pb.DefaultRetention(
                    mode=_MODES[default.mode], days=default.days, years=default.years
                )
            )
    return bucket


def render_retention(retention: Retention) -> pb.ObjectRetention:
    return pb.ObjectRetention(
        mode=_MODES[retention.mode], retain_until_unix_nanos=retention.until_ns
    )


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
        version_id=head.version_id,
        delete_marker=head.delete_marker,
        retention=None if head.retention is None else render_retention(head.retention),
        legal_hold=head.legal_hold,
        tags=dict(head.tags),
    )


def render_attributes(head: ObjectHead, *, after: int, max_parts: int) -> pb.ObjectAttributes:
    """What GetObjectAttributes may tell (no headers, metadata, tags or lock: those need
    s3:GetObject), with the page of parts numbered above ``after``. Parts are a multipart
    object's only, as S3 answers; each segment of one is a part, numbered from 1."""
    message = pb.ObjectAttributes(
        object=pb.Object(
            bucket=head.bucket,
            key=head.key,
            size=head.size,
            etag=head.etag,
            modified_unix_nanos=head.mtime_ns,
            checksums=dict(head.checksums),
            version_id=head.version_id,
        )
    )
    if "-" not in head.etag:
        return message
    sums = head.part_checksums or tuple({} for _ in head.segments)
    later = [
        (number, segment.size, checksums)
        for number, (segment, checksums) in enumerate(zip(head.segments, sums, strict=True), 1)
        if number > after
    ]
    message.parts_count = len(head.segments)
    message.parts.extend(
        pb.ObjectPart(part_number=number, size=size, checksums=dict(checksums))
        for number, size, checksums in later[:max_parts]
    )
    message.truncated = len(later) > max_parts
    return message


def render_listed(bucket: str, entry: ListEntry | VersionEntry) -> pb.Object:
    """A listing knows less than a head: no headers, metadata or checksums."""
    return pb.Object(
        bucket=bucket,
        key=entry.key,
        size=entry.size,
        etag=entry.etag,
        modified_unix_nanos=entry.mtime_ns,
    )


def render_version(bucket: str, entry: VersionEntry) -> pb.Object:
    """A version listing's entry: what ListObjects says, plus which version and whether it is
    current or a delete marker."""
    message = render_listed(bucket, entry)
    message.version_id = entry.version_id
    message.delete_marker = entry.delete_marker
    message.is_latest = entry.latest
    return message


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


# --- versions and object lock ---------------------------------------------------------------
def parse_version_id(version_id: str, *, resource: str = "version_id") -> str | None:
    """Empty: the current version. The core checks a given one again; checked here so a bad
    one names this door's field."""
    if not version_id:
        return None
    check_version_id(version_id, resource=resource)
    return version_id


def parse_versioning_status(status: int) -> str:
    if status == pb.VERSIONING_STATUS_ENABLED:
        return VERSIONING_ENABLED
    if status == pb.VERSIONING_STATUS_SUSPENDED:
        return VERSIONING_SUSPENDED
    raise InvalidArgument("status must be ENABLED or SUSPENDED.", resource="status")


def _parse_mode(mode: int, resource: str) -> str:
    name = _MODE_NAMES.get(mode)
    if name is None:
        raise InvalidArgument(f"{resource} must be GOVERNANCE or COMPLIANCE.", resource=resource)
    return name


def parse_retention(retention: pb.ObjectRetention, *, future: bool) -> Retention:
    """A retention as asked; ``future``: its date must lie ahead (a write's, as in S3)."""
    mode = _parse_mode(retention.mode, "retention.mode")
    until_ns = retention.retain_until_unix_nanos
    if until_ns <= 0 or (future and until_ns <= time.time_ns()):
        raise InvalidArgument(
            "The retain until date must be in the future!",
            resource="retention.retain_until_unix_nanos",
        )
    return Retention(mode=mode, until_ns=until_ns)


def parse_protection(message: Locking) -> Protection | None:
    """The lock a write asks for its new version (None: none asked, the bucket's default)."""
    asked_retention, asked_hold = message.HasField("retention"), message.HasField("legal_hold")
    if not asked_retention and not asked_hold:
        return None
    return Protection(
        retention=parse_retention(message.retention, future=True) if asked_retention else None,
        legal_hold=message.legal_hold if asked_hold else None,
    )


def parse_object_lock(request: pb.SetObjectLockConfigurationRequest) -> ObjectLock:
    if not request.HasField("default_retention"):
        return ObjectLock()
    default = request.default_retention
    mode = _parse_mode(default.mode, "default_retention.mode")
    # Bounded as AWS bounds it, which also keeps every retain-until date within int64
    # nanoseconds (and the calendar S3 renders dates in).
    days_ok = 0 < default.days <= MAX_RETENTION_DAYS and default.years == 0
    years_ok = 0 < default.years <= MAX_RETENTION_YEARS and default.days == 0
    if not days_ok and not years_ok:
        raise InvalidArgument(
            f"A default retention needs exactly one of days (1..{MAX_RETENTION_DAYS}) and "
            f"years (1..{MAX_RETENTION_YEARS}).",
            resource="default_retention",
        )
    return ObjectLock(default=DefaultRetention(mode=mode, days=default.days, years=default.years))


def encode_versions_after(after: tuple[str, str | None]) -> str:
    """The position a version listing continues after, as the text a page token seals."""
    return json.dumps(list(after))


def decode_versions_after(position: str) -> tuple[str, str | None]:
    """A sealed position back as (key, version id or None); InvalidArgument for one that is
    not a version listing's (a ListObjects token, say)."""
    try:
        key, version_id = json.loads(position)
    except (ValueError, TypeError):
        key = version_id = None
    if not isinstance(key, str) or not (version_id is None or isinstance(version_id, str)):
        raise InvalidArgument("The continuation token provided is incorrect", resource="page_token")
    return key, version_id
