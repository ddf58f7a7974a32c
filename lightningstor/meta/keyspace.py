"""Key encoding of the one metadata keyspace.

All keys are bytes compared bytewise, so a listing is a single range scan in any ordered engine.

    m/schema                         schema version of the store (checked at start-up)
    m/token-key                      random key that seals listing continuation tokens
    m/lifecycle                      the lifecycle worker's place in its pass, and its totals
    m/master-check                   a constant sealed with the master key: proof at start that
                                     the key given is the one the secrets are sealed with
    b/<bucket>                       bucket record
    o/<bucket>\\0<key>                the key's current version: an object or, in a versioned
                                     bucket, a delete marker; absent when the key has no version at
                                     all (bucket names never contain NUL, so the first NUL ends the
                                     bucket; keys are UTF-8 without NUL and sort as S3 sorts them)
    v/<bucket>\0<key>\0<sort>         a noncurrent version (object or delete marker); ``sort`` is
                                     32 hex digits that sort a key's versions newest first, and is
                                     the version id of every version but the "null" one
    r/<sha256-hex>                   reference record of a blob (count + collection generation)
    g/<sha256-hex>                   a blob whose count fell to zero, waiting for collection
    k/<access-key-id>                credential record (secret sealed with the node master key)
    u/<bucket>\0<key>\0<upload-id>    multipart upload in progress
    p/<upload-id>/<part:05d>          uploaded part (holds a reference to its blob)
"""

from __future__ import annotations

SCHEMA_KEY = b"m/schema"
TOKEN_KEY = b"m/token-key"
LIFECYCLE_KEY = b"m/lifecycle"
MASTER_CHECK_KEY = b"m/master-check"
BUCKET_PREFIX = b"b/"
OBJECT_PREFIX = b"o/"
VERSION_PREFIX = b"v/"
REF_PREFIX = b"r/"
GARBAGE_PREFIX = b"g/"
CREDENTIAL_PREFIX = b"k/"
UPLOAD_PREFIX = b"u/"
PART_PREFIX = b"p/"

_SEP = b"\x00"
# Larger than any byte of UTF-8 text: appending it to a prefix bounds every key under it.
AFTER_ALL_TEXT = b"\xff"


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key that starts with ``prefix``."""
    return prefix + AFTER_ALL_TEXT


def bucket_key(bucket: str) -> bytes:
    return BUCKET_PREFIX + bucket.encode()


def bucket_from_key(key: bytes) -> str:
    return key[len(BUCKET_PREFIX) :].decode()


def object_prefix(bucket: str) -> bytes:
    """The prefix of every object key of ``bucket``."""
    return OBJECT_PREFIX + bucket.encode() + _SEP


def object_key(bucket: str, key: str) -> bytes:
    return object_prefix(bucket) + key.encode()


def key_from_object_key(bucket_prefix: bytes, raw: bytes) -> str:
    return raw[len(bucket_prefix) :].decode()


def version_prefix(bucket: str) -> bytes:
    """The prefix of every noncurrent version of ``bucket``."""
    return VERSION_PREFIX + bucket.encode() + _SEP


def key_versions_prefix(bucket: str, key: str) -> bytes:
    """The prefix of the noncurrent versions of one key, newest first."""
    return version_prefix(bucket) + key.encode() + _SEP


def version_key(bucket: str, key: str, sort: str) -> bytes:
    return key_versions_prefix(bucket, key) + sort.encode()


def split_version_key(bucket_prefix: bytes, raw: bytes) -> tuple[str, str]:
    """(key, sort) of a ``v/`` key under ``bucket_prefix`` (a sort holds no NUL)."""
    key, _, sort = raw[len(bucket_prefix) :].rpartition(_SEP)
    return key.decode(), sort.decode()


# A version's sort is its time inverted (so newer sorts first) then 16 random hex digits that
# break ties; for every version but the "null" one it is also the version id.
_MAX_NS = 2**64 - 1
VERSION_SORT_LENGTH = 32


def version_sort(time_ns: int, salt: str) -> str:
    return f"{_MAX_NS - time_ns:016x}{salt}"


def version_time(sort: str) -> int:
    """The time a version sort was made from (ns since the epoch)."""
    return _MAX_NS - int(sort[:16], 16)


def legacy_version_sort(mtime_ns: int) -> str:
    """The sort of a record written before versions existed: the null version, at its mtime."""
    return version_sort(mtime_ns, "0" * 16)


def ref_key(sha256_hex: str) -> bytes:
    return REF_PREFIX + sha256_hex.encode()


def garbage_key(sha256_hex: str) -> bytes:
    return GARBAGE_PREFIX + sha256_hex.encode()


def sha_from_garbage_key(raw: bytes) -> str:
    return raw[len(GARBAGE_PREFIX) :].decode()


def credential_key(access_key_id: str) -> bytes:
    return CREDENTIAL_PREFIX + access_key_id.encode()


def upload_prefix(bucket: str) -> bytes:
    """The prefix of every multipart upload record of ``bucket``."""
    return UPLOAD_PREFIX + bucket.encode() + _SEP


def upload_key(bucket: str, key: str, upload_id: str) -> bytes:
    # Upload ids are fixed-length hex, so the key ends at the last NUL and keys sort by
    # object key, then upload id, as ListMultipartUploads orders them.
    return upload_prefix(bucket) + key.encode() + _SEP + upload_id.encode()


def split_upload_key(bucket_prefix: bytes, raw: bytes) -> tuple[str, str]:
    key, _, upload_id = raw[len(bucket_prefix) :].rpartition(_SEP)
    return key.decode(), upload_id.decode()


def part_prefix(upload_id: str) -> bytes:
    return PART_PREFIX + upload_id.encode() + b"/"


def part_key(upload_id: str, part_number: int) -> bytes:
    return part_prefix(upload_id) + f"{part_number:05d}".encode()
