"""CopyObject: a new key that shares the source's blobs (no bytes are copied)."""

from __future__ import annotations

from aiohttp import web

from lightningstor.errors import InvalidArgument
from lightningstor.model import NULL_VERSION
from lightningstor_server.s3 import headers as h
from lightningstor_server.s3.acl import written_acl
from lightningstor_server.s3.configuration import check_write_headers
from lightningstor_server.s3.context import S3Call
from lightningstor_server.s3.documents import CopyResult, xml_response
from lightningstor_server.s3.tagging import copy_tags

COPY_SOURCE_PREFIX = "x-amz-copy-source-"


async def handle_copy_object(call: S3Call) -> web.StreamResponse:
    headers = call.headers
    check_write_headers(call)
    source = call.params.copy_source
    assert source is not None  # the router parses it, and authorizes reading it
    directive = headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise InvalidArgument("Unknown metadata directive.", resource="x-amz-metadata-directive")
    replace = (
        (h.content_headers(headers), h.user_metadata(headers)) if directive == "REPLACE" else None
    )
    src, head = await call.store.copy_object(
        source,
        (call.endpoint.bucket, call.endpoint.key),
        source_version=call.params.copy_source_version,
        replace=replace,
        source_preconditions=h.preconditions(headers, prefix=COPY_SOURCE_PREFIX),
        preconditions=h.preconditions(headers),
        protection=h.protection(headers),
        acl=await written_acl(call, await call.bucket()),
        tags=copy_tags(headers),
    )
    reply = h.version_headers(head)
    if call.params.copy_source_version is not None or src.version_id != NULL_VERSION:
        reply["x-amz-copy-source-version-id"] = src.version_id
    result = CopyResult("CopyObjectResult", head.mtime_ns, head.etag, head.checksums)
    return xml_response(result, headers=reply)
