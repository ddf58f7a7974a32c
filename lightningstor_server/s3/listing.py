"""ListObjects (v1), ListObjectsV2 and ListObjectVersions."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from lightningstor.errors import InvalidArgument
from lightningstor.model import ListPage
from lightningstor.objects.versions import check_version_id
from lightningstor_server.s3.context import S3Call
from lightningstor_server.s3.documents import (
    ListBucketResult,
    ListBucketResultV2,
    ListedObject,
    ListedPage,
    ListedVersion,
    ListVersionsResult,
    xml_response,
)
from lightningstor_server.s3.sigv4 import uri_encode


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


async def _list(
    call: S3Call, after: str | None, *, encode_prefix: bool = True
) -> tuple[ListPage, ListedPage]:
    """The page, and what every listing answers of it and of what it was asked."""
    query = call.query
    enc = _encoder(call)
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    page = await call.store.list_objects(
        call.endpoint.bucket,
        prefix=prefix,
        delimiter=delimiter,
        after=after or None,
        max_keys=call.params.max_keys,
    )
    listed = ListedPage(
        bucket=call.endpoint.bucket,
        prefix=enc(prefix) if encode_prefix else prefix,
        delimiter=enc(delimiter) if delimiter else None,
        max_keys=call.params.max_keys,
        encoding_type=query.get("encoding-type"),
        truncated=page.truncated,
        objects=[ListedObject(enc(e.key), e.mtime_ns, e.etag, e.size) for e in page.entries],
        common_prefixes=[enc(p) for p in page.common_prefixes],
    )
    return page, listed


async def handle_list_objects_v2(call: S3Call) -> web.StreamResponse:
    query = call.query
    enc = _encoder(call)
    token = query.get("continuation-token")
    start_after = query.get("start-after")
    # An empty token is the first page (and echoed as given), as S3 answers it.
    page, listed = await _list(call, call.store.resume_after(token) if token else start_after)
    listing = ListBucketResultV2(
        page=listed,
        continuation_token=token,
        next_continuation_token=call.store.page_token(page.next_after) if page.next_after else None,
        start_after=enc(start_after) if start_after else None,
        owner=(await call.bucket()).owner if query.get("fetch-owner") == "true" else None,
    )
    return xml_response(listing)


async def handle_list_objects(call: S3Call) -> web.StreamResponse:
    enc = _encoder(call)
    marker = call.query.get("marker", "")
    # V1's Prefix is not URL-encoded, whatever encoding-type says: botocore decodes
    # Delimiter, Marker, NextMarker and keys of a V1 listing, not its Prefix, as S3 sends
    # it (ceph/s3-tests' test_bucket_list_prefix_unreadable checks the same).
    page, listed = await _list(call, marker, encode_prefix=False)
    listing = ListBucketResult(
        page=listed,
        marker=enc(marker),
        # Always sent when truncated (AWS only does with a delimiter): clients that page on
        # NextMarker would otherwise loop.
        next_marker=enc(page.next_after) if page.next_after else None,
        owner=(await call.bucket()).owner,
    )
    return xml_response(listing)


async def handle_list_object_versions(call: S3Call) -> web.StreamResponse:
    query = call.query
    enc = _encoder(call)
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    key_marker = query.get("key-marker", "")
    version_marker = query.get("version-id-marker", "")
    if version_marker and not key_marker:
        raise InvalidArgument(
            "A version-id marker cannot be specified without a key marker.",
            resource="version-id-marker",
        )
    if version_marker:
        check_version_id(version_marker, resource="version-id-marker")
    after = (key_marker, version_marker or None) if key_marker else None
    page = await call.store.list_object_versions(
        call.endpoint.bucket,
        prefix=prefix,
        delimiter=delimiter,
        after=after,
        max_keys=call.params.max_keys,
    )
    listed = ListedPage(
        bucket=call.endpoint.bucket,
        prefix=enc(prefix),
        delimiter=enc(delimiter) if delimiter else None,
        max_keys=call.params.max_keys,
        encoding_type=query.get("encoding-type"),
        truncated=page.truncated,
        objects=[],
        common_prefixes=[enc(p) for p in page.common_prefixes],
    )
    next_key, next_version = page.next_after or (None, None)
    listing = ListVersionsResult(
        page=listed,
        versions=[
            ListedVersion(
                enc(e.key), e.version_id, e.latest, e.delete_marker, e.mtime_ns, e.etag, e.size
            )
            for e in page.entries
        ],
        key_marker=enc(key_marker),
        version_id_marker=version_marker,
        next_key_marker=enc(next_key) if next_key is not None else None,
        next_version_id_marker=next_version,
        owner=(await call.bucket()).owner,
    )
    return xml_response(listing)
