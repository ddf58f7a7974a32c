"""An operation's query parameters, parsed once by the router, with S3's limits in one place.

Handlers read ``call.endpoint.params``, never a number from the query: a value that only
looks like a number (``"²"``, 5000 digits) or is out of range is refused here, with the
wording S3 uses, before any handler or store sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from multidict import MultiMapping

from lightningstor.errors import InvalidArgument, InvalidRequest
from lightningstor.objects.limits import MAX_PART_NUMBER
from lightningstor.objects.versions import check_version_id

# One listing page holds at most this many entries, whatever a client asks for.
MAX_PAGE = 1000
# S3 caps an account at 10,000 buckets, so one page may hold them all.
MAX_BUCKETS_PER_PAGE = 10_000
# More significant digits than any count or part number S3 accepts (2**31 - 1 is the largest).
_MAX_NUMBER_DIGITS = 18


@dataclass(frozen=True, slots=True, kw_only=True)
class Params:
    # 1 to 10,000; 0 when none is given (UploadPart(Copy) always has one, GetObject may).
    part_number: int = 0
    upload_id: str = ""
    max_keys: int = MAX_PAGE
    max_parts: int = MAX_PAGE
    part_number_marker: int = 0
    max_uploads: int = MAX_PAGE
    max_buckets: int = MAX_BUCKETS_PER_PAGE
    copy_source: tuple[str, str] | None = None  # CopyObject, UploadPartCopy: (bucket, key)
    copy_source_version: str | None = None  # the source's version, when one is named
    version_id: str | None = None  # an object operation's versionId, checked as the store would


def plain_number(value: str | None, *, max_digits: int = _MAX_NUMBER_DIGITS) -> int | None:
    """``value`` as a non-negative integer when it is plain ASCII digits of reasonable length,
    else None. ``str.isdigit`` admits digits such as "²" that ``int`` refuses, and ``int``
    refuses more than 4300 digits: either would otherwise surface as an internal error."""
    if value is None or not value.isascii() or not value.isdigit():
        return None
    if len(value.lstrip("0")) > max_digits:
        return None
    return int(value)


def max_keys(value: str | None) -> int:
    if value is None:
        return MAX_PAGE
    try:
        number = int(value)
    except ValueError:
        raise InvalidArgument(
            "Provided max-keys not an integer or within integer range", resource="max-keys"
        ) from None
    if number < 0:
        raise InvalidArgument(
            "Argument maxKeys must be an integer between 0 and 2147483647", resource="max-keys"
        )
    return min(number, MAX_PAGE)


def _page_size(name: str, default: int = MAX_PAGE) -> Callable[[str | None], int]:
    def parse(value: str | None) -> int:
        if value is None:
            return default
        number = plain_number(value)
        if number is None:
            raise InvalidArgument(
                f"Provided {name} not an integer or within integer range", resource=name
            )
        return min(number, MAX_PAGE)

    return parse


def _max_buckets(value: str | None) -> int:
    if value is None:
        return MAX_BUCKETS_PER_PAGE
    number = plain_number(value)
    if number is None or not 1 <= number <= MAX_BUCKETS_PER_PAGE:
        raise InvalidArgument(
            f"max-buckets must be an integer between 1 and {MAX_BUCKETS_PER_PAGE}",
            resource="max-buckets",
        )
    return number


def _part_number(value: str | None) -> int:
    number = plain_number(value)
    if number is None or not 1 <= number <= MAX_PART_NUMBER:
        raise InvalidArgument(
            f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive",
            resource="partNumber",
        )
    return number


def parse_copy_source(value: str) -> tuple[str, str, str | None]:
    """``bucket/key[?versionId=...]``, URL-encoded by the client: decoded exactly once, with
    ``+`` kept a plus (S3-CLIENTS.md section 14). (bucket, key, version id or None)."""
    path, _, query = value.partition("?")
    version = None
    if query:
        name, _, raw_version = query.partition("=")
        version = unquote(raw_version)
        if name != "versionId":
            raise InvalidArgument("Invalid version id specified", resource="x-amz-copy-source")
        check_version_id(version, resource="x-amz-copy-source")
    bucket, _, key = unquote(path).removeprefix("/").partition("/")
    if not bucket or not key:
        raise InvalidArgument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            resource="x-amz-copy-source",
        )
    return bucket, key, version


Query = MultiMapping[str]
Headers = Mapping[str, str]


def _listing(query: Query, headers: Headers) -> dict[str, Any]:
    return {"max_keys": max_keys(query.get("max-keys"))}


def _read_part(query: Query, headers: Headers) -> dict[str, Any]:
    value = query.get("partNumber")
    if value is None:
        return {}
    number = _part_number(value)
    if "Range" in headers:
        raise InvalidRequest("Cannot specify both Range header and partNumber query parameter.")
    return {"part_number": number}


def _upload(query: Query, headers: Headers) -> dict[str, Any]:
    return {"upload_id": query.get("uploadId", "")}


def _write_part(query: Query, headers: Headers) -> dict[str, Any]:
    return {**_upload(query, headers), "part_number": _part_number(query.get("partNumber"))}


def _copy(query: Query, headers: Headers) -> dict[str, Any]:
    bucket, key, version = parse_copy_source(headers["x-amz-copy-source"])
    return {"copy_source": (bucket, key), "copy_source_version": version}


def _version(query: Query, headers: Headers) -> dict[str, Any]:
    version = query.get("versionId")
    if version is None:
        return {}
    check_version_id(version)
    return {"version_id": version}


def _list_parts(query: Query, headers: Headers) -> dict[str, Any]:
    return {
        **_upload(query, headers),
        "part_number_marker": _page_size("part-number-marker", 0)(query.get("part-number-marker")),
        "max_parts": _page_size("max-parts")(query.get("max-parts")),
    }


_Parser = Callable[[Query, Headers], dict[str, Any]]
_BY_OPERATION: dict[str, tuple[_Parser, ...]] = {
    "ListObjects": (_listing,),
    "ListObjectsV2": (_listing,),
    "ListObjectVersions": (_listing,),
    "ListBuckets": (lambda q, _: {"max_buckets": _max_buckets(q.get("max-buckets"))},),
    "ListMultipartUploads": (
        lambda q, _: {"max_uploads": _page_size("max-uploads")(q.get("max-uploads"))},
    ),
    "GetObject": (_read_part, _version),
    "HeadObject": (_read_part, _version),
    "DeleteObject": (_version,),
    "GetObjectAcl": (_version,),
    "PutObjectAcl": (_version,),
    "GetObjectTagging": (_version,),
    "PutObjectTagging": (_version,),
    "DeleteObjectTagging": (_version,),
    "GetObjectAttributes": (_version,),
    "GetObjectRetention": (_version,),
    "PutObjectRetention": (_version,),
    "GetObjectLegalHold": (_version,),
    "PutObjectLegalHold": (_version,),
    "CopyObject": (_copy,),
    "UploadPart": (_write_part,),
    "UploadPartCopy": (_write_part, _copy),
    "CompleteMultipartUpload": (_upload,),
    "AbortMultipartUpload": (_upload,),
    "ListParts": (_list_parts,),
}


def parse_params(operation: str, query: Query, headers: Headers) -> Params:
    fields: dict[str, Any] = {}
    for parse in _BY_OPERATION.get(operation, ()):
        fields.update(parse(query, headers))
    return Params(**fields)


def check_numbers(query: Query, names: Mapping[str, str]) -> None:
    """Refuse a numeric parameter that only looks like a number (see plain_number), with
    the refusal S3 words for it (``names``: parameter -> message), whatever the operation."""
    for name, message in names.items():
        for value in query.getall(name, ()):
            if value.isdigit() and plain_number(value) is None:
                raise InvalidArgument(message, resource=name)
