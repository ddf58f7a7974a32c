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
"""

from __future__ import annotations

SCHEMA_KEY = b"m/schema"
TOKEN_KEY = b"m/token-key"
BUCKET_PREFIX = b"b/"
OBJECT_PREFIX = b"o/"
REF_PREFIX = b"r/"
GARBAGE_PREFIX = b"g/"
CREDENTIAL_PREFIX = b"k/"

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
