"""HTTP preconditions and byte ranges, decided once for both front ends.

Preconditions follow RFC 9110 section 13.2.2: If-Match, then If-Unmodified-Since (only without
If-Match), then If-None-Match, then If-Modified-Since (only without If-None-Match). S3 answers
a failed If-None-Match or If-Modified-Since on a read with 304, on a write with 412.
"""

from __future__ import annotations

from lightningstor.errors import (
    InvalidPartNumber,
    InvalidRange,
    NoSuchKey,
    NotModified,
    PreconditionFailed,
)
from lightningstor.model import (
    ByteRange,
    DeleteConditions,
    ObjectHead,
    Preconditions,
    RangeRequest,
)


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    # Clients round-trip quoted ETags and some send them bare; weak tags compare equal too.
    candidates = (t.strip().removeprefix("W/").strip('"') for t in header.split(","))
    return etag in candidates


def check_read(head: ObjectHead, pre: Preconditions) -> None:
    """Raise PreconditionFailed (412) or NotModified (304) as RFC 9110 orders them."""
    mtime_s = head.mtime_ns // 1_000_000_000
    if pre.if_match is not None:
        if not _etag_matches(pre.if_match, head.etag):
            raise PreconditionFailed(resource=head.key)
    elif pre.if_unmodified_since_s is not None and mtime_s > pre.if_unmodified_since_s:
        raise PreconditionFailed(resource=head.key)
    if pre.if_none_match is not None:
        if _etag_matches(pre.if_none_match, head.etag):
            raise NotModified(resource=head.key, etag=head.etag, mtime_ns=head.mtime_ns)
    elif pre.if_modified_since_s is not None and mtime_s <= pre.if_modified_since_s:
        raise NotModified(resource=head.key, etag=head.etag, mtime_ns=head.mtime_ns)


def check_write(current: ObjectHead | None, pre: Preconditions, key: str) -> None:
    """Conditional writes: ``If-None-Match: *`` means create-only, ``If-Match`` compare-and-swap.

    If-None-Match with entity tags (RFC 9110 section 13.1.2) fails while the current version
    has one of them; AWS documents only "*", which this includes, and ceph/s3-tests' checks of
    tags (test_put_object_if_match) pass against it as written.
    """
    none_match = pre.if_none_match
    if none_match is not None and current is not None and _etag_matches(none_match, current.etag):
        raise PreconditionFailed(resource=key)
    if pre.if_match is not None:
        if current is None:
            raise NoSuchKey(resource=key)
        if not _etag_matches(pre.if_match, current.etag):
            raise PreconditionFailed(resource=key)


def check_delete(target: ObjectHead | None, conditions: DeleteConditions | None) -> None:
    """PreconditionFailed unless the version a delete removes is as ``conditions`` expect,
    checked in the delete's own commit. Nothing to remove is no failure: a delete of a missing
    key succeeds, conditional or not, as S3 answers it."""
    if target is None or not conditions:
        return
    mtime_s = target.mtime_ns // 1_000_000_000
    if (
        (conditions.etag is not None and not _etag_matches(conditions.etag, target.etag))
        or (conditions.modified_s is not None and conditions.modified_s != mtime_s)
        or (conditions.size is not None and conditions.size != target.size)
    ):
        raise PreconditionFailed(resource=target.key)


def resolve_range(request: RangeRequest, size: int, resource: str = "") -> ByteRange:
    """The bytes a range request selects from an object of ``size`` bytes.

    Follows S3: an end past the object is clipped, a suffix longer than the object selects all
    of it, and a start at or past the end (or any range of an empty object) is unsatisfiable.
    """
    if request.suffix is not None:
        if size == 0 or request.suffix == 0:
            raise InvalidRange(resource=resource, size=size)
        return ByteRange(start=max(0, size - request.suffix), end=size - 1)
    first = request.first or 0
    if first >= size:
        raise InvalidRange(resource=resource, size=size)
    last = size - 1 if request.last is None else min(request.last, size - 1)
    return ByteRange(start=first, end=last)


def part_range(head: ObjectHead, part_number: int) -> ByteRange | None:
    """The bytes of part ``part_number`` (1-based), as GET/HEAD ``?partNumber=`` select them.

    A single-part upload is its one part 1. ``None`` for the empty object's part 1, which
    has no bytes to range over. Raises InvalidPartNumber past the last part.
    """
    count = max(1, len(head.segments))
    if not 1 <= part_number <= count:
        # AWS's answer, with its detail fields ("Error responses", InvalidPartNumber: 416);
        # RGW, and so ceph/s3-tests, answer 400 InvalidPart instead.
        raise InvalidPartNumber(
            resource=head.key,
            extra={"PartNumberRequested": str(part_number), "ActualPartCount": str(count)},
        )
    if head.size == 0:
        return None
    if not head.segments:  # kept inline: one part, the whole object
        return ByteRange(start=0, end=head.size - 1)
    start = sum(s.size for s in head.segments[: part_number - 1])
    return ByteRange(start=start, end=start + head.segments[part_number - 1].size - 1)
