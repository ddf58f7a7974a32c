"""Tags as S3 limits them ("Categorizing your storage using tags" in the S3 user guide): up to
10 per object and 50 per bucket, keys of 1-128 and values of up to 256 Unicode characters,
each key once, none in the reserved ``aws:`` namespace. Both doors check tags here."""

from __future__ import annotations

from collections.abc import Iterable

from lightningstor.errors import InvalidTag

MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50
MAX_KEY_CHARS = 128
MAX_VALUE_CHARS = 256


def check_tags(pairs: Iterable[tuple[str, str]], *, limit: int = MAX_OBJECT_TAGS) -> dict[str, str]:
    """The tag set ``pairs`` make, in their order; InvalidTag for anything S3 refuses."""
    tags: dict[str, str] = {}
    for key, value in pairs:
        if not 1 <= len(key) <= MAX_KEY_CHARS:
            raise InvalidTag("The TagKey you have provided is invalid", resource=key[:128])
        if len(value) > MAX_VALUE_CHARS:
            raise InvalidTag("The TagValue you have provided is invalid", resource=key)
        if key.lower().startswith("aws:"):
            raise InvalidTag("System tags cannot be added/updated by requester", resource=key)
        if key in tags:
            raise InvalidTag("Cannot provide multiple Tags with the same key", resource=key)
        tags[key] = value
    if len(tags) > limit:
        raise InvalidTag(f"Object tags cannot be greater than {limit}")
    return tags
