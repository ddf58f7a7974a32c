"""Validation of bucket names and object keys, by S3's rules."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from lightningstor.errors import (
    InvalidArgument,
    InvalidBucketName,
    KeyTooLongError,
    MetadataTooLarge,
)
from lightningstor.model import ContentHeaders

MAX_KEY_BYTES = 1024
# S3 limits user-defined metadata (names + values, UTF-8) to 2 KB per object.
MAX_USER_METADATA_BYTES = 2048
# RFC 9110 token characters: what an S3 client will see as part of an x-amz-meta-* name.
_METADATA_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9a-z]+$")
# Control characters (tab aside) would let a stored value split a header when it is served.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Characters XML 1.0 cannot carry (C0 controls but tab, LF and CR; U+FFFE, U+FFFF; lone
# surrogates, which are not UTF-8 either). The S3 door's XML writer uses it too.
NOT_XML_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def validate_bucket_name(name: str) -> None:
    """Raise :class:`InvalidBucketName` unless ``name`` follows S3's general-purpose rules."""
    if (
        not _BUCKET_RE.match(name)
        or ".." in name
        or ".-" in name
        or "-." in name
        or name.startswith(_RESERVED_PREFIXES)
        or name.endswith(_RESERVED_SUFFIXES)
        or _is_ip_address(name)
    ):
        raise InvalidBucketName(resource=name)


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def validate_key(key: str) -> None:
    """Keys are opaque UTF-8 of 1..1024 bytes; nothing in them is normalized."""
    if not key:
        raise InvalidArgument("Object key must not be empty.")
    if NOT_XML_RE.search(key):
        # No XML 1.0 document can carry these, so no S3 listing could show the key (NUL also
        # ends a key in the upload keyspace). AWS stores such keys and lists them only with
        # encoding-type=url; refusing them keeps every reply well-formed.
        raise InvalidArgument(
            "Object key must not contain characters XML cannot carry (control characters "
            "other than tab, LF and CR).",
            resource=key[:64],
        )
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgument("Object key is not valid UTF-8.", resource=key[:64]) from exc
    if len(encoded) > MAX_KEY_BYTES:
        raise KeyTooLongError(resource=key[:64])


def validate_metadata(headers: ContentHeaders, user_metadata: Mapping[str, str]) -> None:
    """Stored headers and metadata must be servable as HTTP headers by either door.

    Metadata names are lowercase HTTP tokens (S3 lowercases x-amz-meta-* names); values carry
    no control characters; names and values together fit in 2 KB.
    """
    for field in ContentHeaders.__slots__:
        _check_header_value(field, getattr(headers, field))
    size = 0
    for name, value in user_metadata.items():
        if not _METADATA_NAME_RE.match(name):
            raise InvalidArgument(
                f"Metadata name {name!r} is not a lowercase HTTP token.", resource=name
            )
        _check_header_value(name, value)
        size += len(name.encode()) + len(value.encode())
    if size > MAX_USER_METADATA_BYTES:
        raise MetadataTooLarge(
            extra={"MaxSizeAllowed": str(MAX_USER_METADATA_BYTES), "Size": str(size)}
        )


def _check_header_value(name: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # bytes that were not UTF-8, carried as surrogates
        raise InvalidArgument(f"{name} must be valid UTF-8.", resource=name) from None
    if _CONTROL_RE.search(value):
        raise InvalidArgument(f"{name} must not contain control characters.", resource=name)
