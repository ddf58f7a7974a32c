"""Key encoding of the one metadata keyspace.

All keys are bytes compared bytewise, so a listing is a single range scan in any ordered engine.

    m/schema                         schema version of the store (checked at start-up)
    m/token-key                      random key that seals listing continuation tokens
    b/<bucket>                       bucket record
    o/<bucket>\\0<key>                object record (bucket names never contain NUL, so the first
                                     NUL ends the bucket; keys are UTF-8 and sort as S3 sorts them)
    r/<sha256-hex>                   reference record of a blob (count + collection generation)
    g/<sha256-hex>                   a blob whose count fell to zero, waiting for collection
    k/<access-key-id>                credential record (secret sealed with the node master key)
    u/<bucket>\0<key>\0<upload-id>    multipart upload in progress
    p/<upload-id>/<part:05d>          uploaded part (holds a reference to its blob)
"""

from __future__ import annotations

SCHEMA_KEY = b"m/schema"
TOKEN_KEY = b"m/token-key"
BUCKET_PREFIX = b"b/"
OBJECT_PREFIX = b"o/"
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
