"""Who may do what: a key is either admin or limited to named buckets, read, write or both.

Everything not granted is AccessDenied. Both doors ask the same questions here, so a key
limited to bucket A is refused bucket B over S3 and over gRPC alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum

from lightningstor.errors import AccessDenied, InvalidArgument

GRANT_LEVELS = {
    "read": frozenset({"read"}),
    "write": frozenset({"write"}),
    "readwrite": frozenset({"read", "write"}),
}


class Access(Enum):
    READ = "read"
    WRITE = "write"


def check_grants(grants: Mapping[str, str]) -> dict[str, str]:
    """Validated grants (bucket -> level); InvalidArgument for an unknown level."""
    for bucket, level in grants.items():
        if level not in GRANT_LEVELS:
            raise InvalidArgument(
                f"Grant level for {bucket!r} must be read, write or readwrite.", resource=bucket
            )
    return dict(grants)


def authorize(*, admin: bool, grants: Mapping[str, str], bucket: str, access: Access) -> None:
    """Raise AccessDenied unless the key may ``access`` ``bucket``."""
    if admin:
        return
    level = grants.get(bucket)
    if level is None or access.value not in GRANT_LEVELS[level]:
        raise AccessDenied(resource=bucket)


def visible(*, admin: bool, grants: Mapping[str, str], buckets: Iterable[str]) -> list[str]:
    """The buckets a key may see in a bucket listing: all for admins, else those granted."""
    return [b for b in buckets if admin or b in grants]
