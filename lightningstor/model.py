"""Plain values the core hands to its callers. No protocol knowledge lives here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

DEFAULT_CONTENT_TYPE = "binary/octet-stream"
NULL_VERSION = "null"  # the version id of writes to an unversioned or suspended bucket

# Bucket versioning states, as S3 names them ("" is a bucket that never had versioning).
UNVERSIONED, VERSIONING_ENABLED, VERSIONING_SUSPENDED = "", "Enabled", "Suspended"
GOVERNANCE, COMPLIANCE = "GOVERNANCE", "COMPLIANCE"


@dataclass(frozen=True, slots=True, kw_only=True)
class Segment:
    """One content-addressed blob that makes up part of an object, in order."""

    sha256_hex: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    """A version's object-lock retention: kept unchanged until ``until_ns``. COMPLIANCE is
    never shortened or removed; GOVERNANCE may be, by a principal allowed to bypass it."""

    mode: str  # GOVERNANCE or COMPLIANCE
    until_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DefaultRetention:
    """A bucket's default retention for new versions: ``days`` or ``years`` (one of them)."""

    mode: str
    days: int = 0
    years: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectLock:
    """A bucket's object lock (enabled for good once on) and its default retention."""

    default: DefaultRetention | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Protection:
    """What a write asks for its new version: a retention and a legal hold (None: the
    bucket's default retention, no hold)."""

    retention: Retention | None = None
    legal_hold: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BucketInfo:
    name: str
    created_ns: int
    owner: str
    versioning: str = UNVERSIONED
    object_lock: ObjectLock | None = None  # None: the bucket has no object lock


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentHeaders:
    """The representation headers S3 stores with an object and returns verbatim."""

    content_type: str = DEFAULT_CONTENT_TYPE
    content_encoding: str = ""
    content_disposition: str = ""
    content_language: str = ""
    cache_control: str = ""
    expires: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectHead:
    """Everything known about an object except its bytes."""

    bucket: str
    key: str
    size: int
    md5_hex: str
    etag: str  # unquoted; a multipart ETag carries its "-N" suffix
    mtime_ns: int
    headers: ContentHeaders
    user_metadata: Mapping[str, str]
    checksums: Mapping[str, str]  # algorithm name (e.g. "crc32") -> base64 value
    segments: tuple[Segment, ...]
    # A small object's bytes, kept in its record (then ``segments`` is empty); see inline.py.
    inline: bytes | None = None
    # A multipart object's parts' own checksums, one mapping per part (segment), for reads of
    # one part and GetObjectAttributes; empty for other objects.
    part_checksums: tuple[Mapping[str, str], ...] = ()
    version_id: str = NULL_VERSION
    # Where the version sorts among the key's versions (see meta/keyspace.py); "" until placed.
    version_sort: str = ""
    delete_marker: bool = False  # a delete marker: no bytes, only a version
    retention: Retention | None = None
    legal_hold: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteResult:
    """What a delete did: the version it removed or the delete marker it added."""

    version_id: str | None  # None: an unversioned bucket's delete (no version to name)
    delete_marker: bool
    existed: bool  # whether the key (or the version) had anything to delete


@dataclass(frozen=True, slots=True, kw_only=True)
class ByteRange:
    """A resolved, satisfiable byte range: ``start`` to ``end`` inclusive."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True, slots=True, kw_only=True)
class RangeRequest:
    """A byte range as a client asked for it, before it meets the object's size.

    ``first``/``last`` as in ``bytes=first-last``; ``suffix`` for ``bytes=-suffix``.
    """

    first: int | None = None
    last: int | None = None
    suffix: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Preconditions:
    """HTTP conditional-request fields (RFC 9110 section 13). ETags are unquoted."""

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since_s: int | None = None
    if_unmodified_since_s: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyExpectations:
    """Digests a client declared for a body; each is verified before anything commits.

    ``checksums`` maps an algorithm (``crc32``, ``crc32c``, ``sha1``, ``sha256``) to its
    base64 value; an algorithm mapped to ``None`` is computed and stored but not checked.

    ``late_checksums`` is for values that arrive after the body (an HTTP trailer): it is called
    once the body is exhausted and before anything commits, and what it returns is checked like
    ``checksums``. Each algorithm it names must also be a key of ``checksums`` (mapped to
    ``None``), since the digests to compute are chosen before the first byte.
    """

    sha256_hex: str | None = None
    md5_b64: str | None = None
    checksums: Mapping[str, str | None] = field(default_factory=dict)
    size: int | None = None
    late_checksums: Callable[[], Mapping[str, str]] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListEntry:
    key: str
    size: int
    etag: str
    mtime_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionEntry:
    """One version in a ListObjectVersions page (a delete marker when ``delete_marker``)."""

    key: str
    version_id: str
    latest: bool
    delete_marker: bool
    size: int
    etag: str
    mtime_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionPage:
    """One page of versions in key order, each key's newest first; ``next_after`` is the
    (key, version id) to continue after (version id None after a common prefix)."""

    entries: tuple[VersionEntry, ...]
    common_prefixes: tuple[str, ...]
    next_after: tuple[str, str | None] | None

    @property
    def truncated(self) -> bool:
        return self.next_after is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListPage:
    """One page of a listing: objects and common prefixes in key order.

    ``next_after`` is the last key or prefix returned when the listing was cut short, the
    position to continue after; ``None`` when the listing is complete.
    """

    entries: tuple[ListEntry, ...]
    common_prefixes: tuple[str, ...]
    next_after: str | None

    @property
    def truncated(self) -> bool:
        return self.next_after is not None
