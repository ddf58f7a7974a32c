"""Translation between S3 request/response headers and the core's plain values."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from multidict import CIMultiDictProxy

from lightningstor.blobs.checksums import SUPPORTED_ALGORITHMS, checksum_type
from lightningstor.errors import InvalidArgument, InvalidRequest
from lightningstor.model import (
    COMPLIANCE,
    DEFAULT_CONTENT_TYPE,
    GOVERNANCE,
    NULL_VERSION,
    BodyExpectations,
    ContentHeaders,
    DeleteConditions,
    ObjectHead,
    Preconditions,
    Protection,
    RangeRequest,
    Retention,
)
from lightningstor_server.s3.errors import InvalidDigest
from lightningstor_server.s3.sigv4 import UNSIGNED_PAYLOAD

META_PREFIX = "x-amz-meta-"
CHECKSUM_PREFIX = "x-amz-checksum-"
# ASCII digits only (RFC 9110's DIGIT): \d would also admit other scripts' digits.
_RANGE_RE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
# Range positions are clamped here: no object comes near it, and Python refuses to convert a
# string of more than 4300 digits, which fits in one header line.
MAX_RANGE_POSITION = 2**63 - 1
_MAX_RANGE_DIGITS = len(str(MAX_RANGE_POSITION))
# Header name <-> ContentHeaders field, in the order S3 returns them.
CONTENT_HEADERS = (
    ("Content-Type", "content_type"),
    ("Content-Encoding", "content_encoding"),
    ("Content-Disposition", "content_disposition"),
    ("Content-Language", "content_language"),
    ("Cache-Control", "cache_control"),
    ("Expires", "expires"),
)


def content_headers(headers: CIMultiDictProxy[str]) -> ContentHeaders:
    values = {field: headers.get(name, "") for name, field in CONTENT_HEADERS}
    values["content_type"] = values["content_type"] or DEFAULT_CONTENT_TYPE
    return ContentHeaders(**values)


def user_metadata(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    return {
        name.lower()[len(META_PREFIX) :]: value
        for name, value in headers.items()
        if name.lower().startswith(META_PREFIX)
    }


def declared_checksums(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    """The ``x-amz-checksum-<algorithm>`` values a request carries (at most one)."""
    checksums: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith(CHECKSUM_PREFIX) and lowered not in (
            "x-amz-checksum-mode",
            "x-amz-checksum-type",
            "x-amz-checksum-algorithm",
        ):
            algorithm = lowered[len(CHECKSUM_PREFIX) :]
            if algorithm not in SUPPORTED_ALGORITHMS:
                raise InvalidRequest(f"Checksum algorithm {algorithm.upper()} is not supported.")
            checksums[algorithm] = value
    if len(checksums) > 1:
        raise InvalidRequest(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
        )
    return checksums


def body_expectations(headers: CIMultiDictProxy[str], payload_hash: str) -> BodyExpectations:
    """Every digest the request declares for its body (verified by the core before commit)."""
    checksums: dict[str, str | None] = dict(declared_checksums(headers))
    declared = headers.get("x-amz-sdk-checksum-algorithm")
    if declared and not checksums:
        algorithm = declared.lower()
        if algorithm not in SUPPORTED_ALGORITHMS:
            raise InvalidRequest(f"Checksum algorithm {declared} is not supported.")
        checksums[algorithm] = None  # computed and stored, nothing to compare against
    content_length = headers.get("Content-Length")
    return BodyExpectations(
        sha256_hex=None if payload_hash == UNSIGNED_PAYLOAD else payload_hash,
        md5_b64=_content_md5(headers.get("Content-MD5")),
        checksums=checksums,
        size=int(content_length) if content_length is not None else None,
    )


def _content_md5(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:  # binascii.Error, or a non-ASCII value, which b64decode refuses
        raise InvalidDigest(resource="Content-MD5") from None
    if len(raw) != 16:
        raise InvalidDigest(resource="Content-MD5")
    return value


def byte_range(value: str | None) -> RangeRequest | None:
    """A single ``bytes=`` range; anything S3 ignores (bad syntax, several ranges) is None."""
    if value is None:
        return None
    match = _RANGE_RE.fullmatch(value.strip())
    if match is None:
        return None
    first, last = _significant(match[1]), _significant(match[2])
    if not first and not last:
        return None
    if not first:
        return RangeRequest(suffix=_range_position(last))
    # Compared as digit strings (length, then digits): exact whatever their size.
    if last and (len(last), last) < (len(first), first):
        return None  # S3 ignores an inverted range and serves the whole object
    return RangeRequest(first=_range_position(first), last=_range_position(last) if last else None)


def _significant(digits: str) -> str:
    """``digits`` without leading zeros ("" stays "": the position was left out)."""
    return digits.lstrip("0") or digits[:1]


def _range_position(digits: str) -> int:
    """The value of ``digits`` (no leading zeros), clamped to MAX_RANGE_POSITION."""
    if len(digits) > _MAX_RANGE_DIGITS:
        return MAX_RANGE_POSITION
    return min(int(digits), MAX_RANGE_POSITION)


def preconditions(headers: Mapping[str, str], prefix: str = "") -> Preconditions:
    """If-* headers (or, with ``prefix="x-amz-copy-source-"``, their copy-source forms)."""
    return Preconditions(
        if_match=headers.get(f"{prefix}If-Match"),
        if_none_match=headers.get(f"{prefix}If-None-Match"),
        if_modified_since_s=_http_date(headers.get(f"{prefix}If-Modified-Since")),
        if_unmodified_since_s=_http_date(headers.get(f"{prefix}If-Unmodified-Since")),
    )


def delete_conditions(etag: str | None, modified: str | None, size: str | None) -> DeleteConditions:
    """A conditional delete's expectations (If-Match, x-amz-if-match-last-modified-time and
    x-amz-if-match-size, or a DeleteObjects entry's ETag, LastModifiedTime and Size);
    InvalidArgument for a time or a size that is not one."""
    modified_s = None
    if modified is not None:
        modified_s = _http_date(modified)
        if modified_s is None:
            try:
                modified_s = int(datetime.fromisoformat(modified).timestamp())
            except ValueError:
                raise InvalidArgument("Invalid last modified time.", resource=modified) from None
    if size is not None and not (size.isascii() and size.isdigit()):
        raise InvalidArgument("Invalid object size.", resource=size)
    return DeleteConditions(
        etag=etag, modified_s=modified_s, size=None if size is None else int(size)
    )


def _http_date(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError):
        return None  # RFC 9110: an invalid date is ignored


def http_date(mtime_ns: int) -> str:
    return format_datetime(datetime.fromtimestamp(mtime_ns // 1_000_000_000, UTC), usegmt=True)


def iso_date(mtime_ns: int) -> str:
    moment = datetime.fromtimestamp(mtime_ns / 1e9, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def object_headers(head: ObjectHead, *, checksums: Mapping[str, str]) -> dict[str, str]:
    """The response headers that describe an object (GET and HEAD), with ``checksums`` (the
    object's, or the part's a read of one part returns) and their type."""
    headers = {
        "ETag": f'"{head.etag}"',
        "Last-Modified": http_date(head.mtime_ns),
        "Accept-Ranges": "bytes",
    }
    for name, field in CONTENT_HEADERS:
        value = getattr(head.headers, field)
        if value:
            headers[name] = value
    for name, value in head.user_metadata.items():
        headers[META_PREFIX + name] = value
    headers.update(version_headers(head))
    headers.update(lock_headers(head))
    if head.tags:
        headers["x-amz-tagging-count"] = str(len(head.tags))
    if checksums:
        headers.update(checksum_headers(checksums, of=head.checksums))
    return headers


def checksum_headers(checksums: Mapping[str, str], *, of: Mapping[str, str]) -> dict[str, str]:
    """``x-amz-checksum-<algorithm>`` for ``checksums`` and ``x-amz-checksum-type``, the type of
    the object's own checksum ``of`` (COMPOSITE or FULL_OBJECT: a part read has its object's)."""
    headers = {CHECKSUM_PREFIX + algorithm: value for algorithm, value in checksums.items()}
    for value in list(of.values())[:1]:
        headers["x-amz-checksum-type"] = checksum_type(value)
    return headers


# --- versions and object lock -------------------------------------------------------------
LOCK_MODE = "x-amz-object-lock-mode"
LOCK_UNTIL = "x-amz-object-lock-retain-until-date"
LEGAL_HOLD = "x-amz-object-lock-legal-hold"
BYPASS_GOVERNANCE = "x-amz-bypass-governance-retention"


def parse_retain_until(value: str, resource: str) -> int:
    """An ISO 8601 date-time (as SDKs send RetainUntilDate) in ns since the epoch."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidArgument(
            "The retain until date must be an ISO 8601 date-time.", resource=resource
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000) * 1000


def check_lock_mode(mode: str, resource: str) -> str:
    if mode not in (GOVERNANCE, COMPLIANCE):
        raise InvalidArgument("Unknown wormMode directive.", resource=resource)
    return mode


def protection(headers: Mapping[str, str]) -> Protection | None:
    """The lock a write asks for through its x-amz-object-lock-* headers (None: none)."""
    mode, until, hold = headers.get(LOCK_MODE), headers.get(LOCK_UNTIL), headers.get(LEGAL_HOLD)
    if mode is None and until is None and hold is None:
        return None
    retention = None
    if (mode is None) != (until is None):
        raise InvalidArgument(
            "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
            resource=LOCK_MODE if mode is None else LOCK_UNTIL,
        )
    if mode is not None and until is not None:
        until_ns = parse_retain_until(until, LOCK_UNTIL)
        if until_ns <= time.time_ns():
            raise InvalidArgument(
                "The retain until date must be in the future!", resource=LOCK_UNTIL
            )
        retention = Retention(mode=check_lock_mode(mode, LOCK_MODE), until_ns=until_ns)
    if hold is not None and hold not in ("ON", "OFF"):
        raise InvalidArgument("Legal Hold must be either of 'ON' or 'OFF'", resource=LEGAL_HOLD)
    return Protection(retention=retention, legal_hold=None if hold is None else hold == "ON")


def version_headers(head: ObjectHead, *, versioned: bool = False) -> dict[str, str]:
    """x-amz-version-id (and x-amz-delete-marker) of a version: sent for every version but
    the null one of a bucket that never had versioning (``versioned`` says it has)."""
    headers = {}
    if versioned or head.version_id != NULL_VERSION:
        headers["x-amz-version-id"] = head.version_id
    if head.delete_marker:
        headers["x-amz-delete-marker"] = "true"
    return headers


def lock_headers(head: ObjectHead) -> dict[str, str]:
    """What a GET or HEAD says of a version's lock."""
    headers = {}
    if head.retention is not None:
        headers[LOCK_MODE] = head.retention.mode
        headers[LOCK_UNTIL] = iso_date(head.retention.until_ns)
    if head.legal_hold:
        headers[LEGAL_HOLD] = "ON"
    return headers
