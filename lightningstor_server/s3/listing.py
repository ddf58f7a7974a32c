"""ListObjects (v1) and ListObjectsV2."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from lightningstor.errors import InvalidArgument
from lightningstor.model import ListPage
from lightningstor_server.s3.context import S3Call
from lightningstor_server.s3.headers import iso_date
from lightningstor_server.s3.sigv4 import uri_encode
from lightningstor_server.s3.xml import document, element, group


def _encoder(call: S3Call) -> Callable[[str], str]:
    """botocore always asks for encoding-type=url and decodes only when we echo it."""
    encoding = call.query.get("encoding-type")
    if encoding is None:
        return lambda text: text
    if encoding != "url":
        raise InvalidArgument(
            "Invalid Encoding Method specified in Request", resource="encoding-type"
        )
    return lambda text: uri_encode(text, keep_slash=True)


def _contents(call: S3Call, page: ListPage, enc: Callable[[str], str], owner: bool) -> list[str]:
    owner_xml = (
        group("Owner", [element("ID", call.caller), element("DisplayName", call.caller)])
        if owner
        else ""
    )
    items = [
        group(
            "Contents",
            [
                element("Key", enc(e.key)),
                element("LastModified", iso_date(e.mtime_ns)),
                element("ETag", f'"{e.etag}"'),
                element("Size", e.size),
                owner_xml,
                element("StorageClass", "STANDARD"),
            ],
        )
        for e in page.entries
    ]
    items += [group("CommonPrefixes", [element("Prefix", enc(p))]) for p in page.common_prefixes]
    return items


async def _list(call: S3Call, after: str | None) -> tuple[ListPage, str, str, int]:
    """The page, with the prefix, delimiter and max-keys it was asked with."""
    query = call.query
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    limit = call.params.max_keys
    page = await call.store.list_objects(
        call.endpoint.bucket,
        prefix=prefix,
        delimiter=delimiter,
        after=after or None,
        max_keys=limit,
    )
    return page, prefix, delimiter, limit


async def handle_list_objects_v2(call: S3Call) -> web.StreamResponse:
    query = call.query
    enc = _encoder(call)
    token = query.get("continuation-token")
    start_after = query.get("start-after")
    page, prefix, delimiter, limit = await _list(
        # An empty token is the first page (and echoed as given), as S3 answers it.
        call,
        call.store.resume_after(token) if token else start_after,
    )
    fields = [
        element("Name", call.endpoint.bucket),
        element("Prefix", enc(prefix)),
        element("Delimiter", enc(delimiter) if delimiter else None),
        element("MaxKeys", limit),
        element("EncodingType", query.get("encoding-type")),
        element("KeyCount", len(page.entries) + len(page.common_prefixes)),
        element("IsTruncated", page.truncated),
        element("ContinuationToken", token),
        element(
            "NextContinuationToken",
            call.store.page_token(page.next_after) if page.next_after else None,
        ),
        element("StartAfter", enc(start_after) if start_after else None),
        *_contents(call, page, enc, owner=query.get("fetch-owner") == "true"),
    ]
    return web.Response(body=document("ListBucketResult", fields), content_type="application/xml")


async def handle_list_objects(call: S3Call) -> web.StreamResponse:
    query = call.query
    enc = _encoder(call)
    marker = query.get("marker", "")
    page, prefix, delimiter, limit = await _list(call, marker)
    fields = [
        element("Name", call.endpoint.bucket),
        # V1's Prefix is not URL-encoded, whatever encoding-type says: botocore decodes
        # Delimiter, Marker, NextMarker and keys of a V1 listing, not its Prefix, as S3 sends
        # it (ceph/s3-tests' test_bucket_list_prefix_unreadable checks the same).
        element("Prefix", prefix),
        element("Marker", enc(marker)),
        # Always sent when truncated (AWS only does with a delimiter): clients that page on
        # NextMarker would otherwise loop.
        element("NextMarker", enc(page.next_after) if page.next_after else None),
        element("MaxKeys", limit),
        element("Delimiter", enc(delimiter) if delimiter else None),
        element("EncodingType", query.get("encoding-type")),
        element("IsTruncated", page.truncated),
        *_contents(call, page, enc, owner=True),
    ]
    return web.Response(body=document("ListBucketResult", fields), content_type="application/xml")


async def handle_list_object_versions(call: S3Call) -> web.StreamResponse:
    """Our buckets never had versioning: every object is its one version, VersionId "null",
    as AWS lists a bucket that never had versioning enabled."""
    query = call.query
    enc = _encoder(call)
    key_marker = query.get("key-marker", "")
    page, prefix, delimiter, limit = await _list(call, key_marker)
    owner = group("Owner", [element("ID", call.caller), element("DisplayName", call.caller)])
    versions = [
        group(
            "Version",
            [
                element("Key", enc(e.key)),
                element("VersionId", "null"),
                element("IsLatest", True),
                element("LastModified", iso_date(e.mtime_ns)),
                element("ETag", f'"{e.etag}"'),
                element("Size", e.size),
                owner,
                element("StorageClass", "STANDARD"),
            ],
        )
        for e in page.entries
    ]
    prefixes = [group("CommonPrefixes", [element("Prefix", enc(p))]) for p in page.common_prefixes]
    fields = [
        element("Name", call.endpoint.bucket),
        element("Prefix", enc(prefix)),
        element("KeyMarker", enc(key_marker)),
        element("VersionIdMarker", query.get("version-id-marker", "")),
        element("NextKeyMarker", enc(page.next_after) if page.next_after else None),
        element("NextVersionIdMarker", "null" if page.next_after else None),
        element("MaxKeys", limit),
        element("Delimiter", enc(delimiter) if delimiter else None),
        element("EncodingType", query.get("encoding-type")),
        element("IsTruncated", page.truncated),
        *versions,
        *prefixes,
    ]
    return web.Response(body=document("ListVersionsResult", fields), content_type="application/xml")
