"""Validation of bucket names and object keys, by S3's rules."""

from __future__ import annotations

import ipaddress
import re

from lightningstor.errors import InvalidArgument, InvalidBucketName, KeyTooLongError

MAX_KEY_BYTES = 1024
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
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgument("Object key is not valid UTF-8.", resource=key[:64]) from exc
    if len(encoded) > MAX_KEY_BYTES:
        raise KeyTooLongError(resource=key[:64])
