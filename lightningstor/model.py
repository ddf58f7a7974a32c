"""Plain values the core hands to its callers. No protocol knowledge lives here."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

DEFAULT_CONTENT_TYPE = "binary/octet-stream"
NULL_VERSION = "null"  # the version id of writes to an unversioned or suspended bucket

# Bucket versioning states, as S3 names them ("" is a bucket that never had versioning).
UNVERSIONED, VERSIONING_ENABLED, VERSIONING_SUSPENDED = "", "Enabled", "Suspended"
GOVERNANCE, COMPLIANCE = "GOVERNANCE", "COMPLIANCE"

# Object Ownership, as S3 names it ("" is a bucket with no ownership controls: ACLs on, the
# writer owns what it writes, as buckets were before April 2023).
BUCKET_OWNER_ENFORCED = "BucketOwnerEnforced"
BUCKET_OWNER_PREFERRED = "BucketOwnerPreferred"
OBJECT_WRITER = "ObjectWriter"
OWNERSHIPS = frozenset({BUCKET_OWNER_ENFORCED, BUCKET_OWNER_PREFERRED, OBJECT_WRITER})
# ACL permissions and the groups S3 grants to.
FULL_CONTROL, READ, WRITE, READ_ACP, WRITE_ACP = (
    "FULL_CONTROL", "READ", "WRITE", "READ_ACP", "WRITE_ACP",
)  # fmt: skip
PERMISSIONS = frozenset({FULL_CONTROL, READ, WRITE, READ_ACP, WRITE_ACP})
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
PUBLIC_GROUPS = frozenset({ALL_USERS, AUTHENTICATED_USERS})


def derived_canonical_id(access_key_id: str) -> str:
    """The canonical user id of a key created without one: stable across restarts and hosts
    (a hash of the key id), 64 hex digits like AWS's."""
    return hashlib.sha256(b"lightningstor canonical id:" + access_key_id.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Owner:
    """A canonical user: who owns a bucket or an object, and who a grant names."""

    id: str
    name: str = ""


def key_owner(access_key_id: str, canonical_id: str, name: str) -> Owner:
    """The canonical user a key is: its own canonical id, or one derived from its id."""
    return Owner(canonical_id or derived_canonical_id(access_key_id), name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """One ACL entry: a permission for a canonical user (``user``) or a group (a URI)."""

    permission: str
    user: Owner | None = None
    group: str = ""


Acl = tuple[Grant, ...]


def owner_acl(owner: Owner) -> Acl:
    """The ACL of a resource nobody set one on: its owner has full control."""
    return (Grant(permission=FULL_CONTROL, user=owner),)


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicAccessBlock:
    """S3's four Block Public Access flags (see auth/access.py for what each refuses)."""

    block_public_acls: bool = False
    ignore_public_acls: bool = False
    block_public_policy: bool = False
    restrict_public_buckets: bool = False

    def __or__(self, other: PublicAccessBlock) -> PublicAccessBlock:
        return PublicAccessBlock(
            block_public_acls=self.block_public_acls or other.block_public_acls,
            ignore_public_acls=self.ignore_public_acls or other.ignore_public_acls,
            block_public_policy=self.block_public_policy or other.block_public_policy,
            restrict_public_buckets=self.restrict_public_buckets or other.restrict_public_buckets,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BucketAccess:
    """What a new bucket starts with besides its owner (see BucketInfo)."""

    ownership: str = ""
    acl: Acl | None = None
    public_access_block: PublicAccessBlock | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectAcl:
    """Who owns an object version and its ACL (None: the owner's full control only)."""

    owner: Owner
    acl: Acl | None = None

    @property
    def grants(self) -> Acl:
        return self.acl if self.acl is not None else owner_acl(self.owner)


BLOCK_ALL = PublicAccessBlock(
    block_public_acls=True,
    ignore_public_acls=True,
    block_public_policy=True,
    restrict_public_buckets=True,
)
BLOCK_NONE = PublicAccessBlock()


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


# How a lifecycle rule's filter was written, so it is given back as written (S3 keeps both
# the old rule-level Prefix and the Filter element).
FILTER_PREFIX, FILTER_ONE, FILTER_AND = "prefix", "filter", "and"


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleFilter:
    """Which objects a lifecycle rule applies to: those meeting every condition given (an
    empty filter: every object of the bucket)."""

    prefix: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    size_greater_than: int | None = None  # bytes, exclusive
    size_less_than: int | None = None  # bytes, exclusive
    form: str = FILTER_ONE


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """A move to another storage class: ``days`` after creation (or after becoming noncurrent)
    or on ``date_ns``; of noncurrent versions, all but the ``newer_noncurrent`` newest."""

    storage_class: str
    days: int | None = None
    date_ns: int | None = None
    newer_noncurrent: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleRule:
    """One rule of a bucket's lifecycle configuration (S3's LifecycleRule)."""

    id: str
    enabled: bool
    filter: LifecycleFilter = field(default_factory=LifecycleFilter)
    expiration_days: int | None = None  # current versions, days after creation
    expiration_date_ns: int | None = None  # current versions, from this midnight UTC on
    expired_object_delete_marker: bool | None = None  # remove markers left alone
    noncurrent_days: int | None = None  # noncurrent versions, days after becoming noncurrent
    newer_noncurrent_versions: int | None = None  # ... all but this many newest of them
    abort_upload_days: int | None = None  # multipart uploads, days after initiation
    transitions: tuple[Transition, ...] = ()
    noncurrent_transitions: tuple[Transition, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class BucketInfo:
    name: str
    created_ns: int
    owner: Owner
    versioning: str = UNVERSIONED
    object_lock: ObjectLock | None = None  # None: the bucket has no object lock
    ownership: str = ""  # Object Ownership ("" = no ownership controls)
    acl: Acl | None = None  # None: the owner's full control only
    policy: str = ""  # the bucket policy as submitted ("" = none)
    public_access_block: PublicAccessBlock | None = None
    tags: Mapping[str, str] | None = None  # None: no tag set (NoSuchTagSet)
    # None: no lifecycle configuration (NoSuchLifecycleConfiguration)
    lifecycle: tuple[LifecycleRule, ...] | None = None

    @property
    def acls_enabled(self) -> bool:
        return self.ownership != BUCKET_OWNER_ENFORCED

    @property
    def grants(self) -> Acl:
        return self.acl if self.acl is not None else owner_acl(self.owner)


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
    owner: Owner | None = None  # None: written before owners existed (the bucket's owner)
    acl: Acl | None = None  # None: the owner's full control only
    tags: Mapping[str, str] = field(default_factory=dict)  # in the order they were set


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteConditions:
    """What a conditional delete expects of the version it removes (S3's If-Match,
    x-amz-if-match-last-modified-time, x-amz-if-match-size); None: not asked."""

    etag: str | None = None  # "*" or entity tags, as If-Match
    modified_s: int | None = None  # whole seconds, as Last-Modified
    size: int | None = None

    def __bool__(self) -> bool:
        return (self.etag, self.modified_s, self.size) != (None, None, None)


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
