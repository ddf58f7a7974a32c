"""Tags as S3 requests carry them: the ``x-amz-tagging`` header of a write (URL-query encoded,
with ``x-amz-tagging-directive`` on a copy) and Tagging bodies; and the tagging operations
(Put/Get/DeleteObjectTagging, Put/Get/DeleteBucketTagging). The limits are the core's
(``objects/tags.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl

from aiohttp import web

from lightningstor.errors import InvalidArgument
from lightningstor.objects.tags import MAX_BUCKET_TAGS, MAX_OBJECT_TAGS, check_tags
from lightningstor_server.s3.body import request_document
from lightningstor_server.s3.configuration import absent
from lightningstor_server.s3.context import S3Call
from lightningstor_server.s3.documents import Tagging, xml_response
from lightningstor_server.s3.errors import MalformedXML
from lightningstor_server.s3.headers import version_headers
from lightningstor_server.s3.xml import fields_of, local_name, text_of

MAX_TAGGING_BYTES = 64 * 1024
TAGGING = "x-amz-tagging"


def header_tags(headers: Mapping[str, str]) -> dict[str, str] | None:
    """The tags ``x-amz-tagging`` gives ("k1=v1&k2=v2"; a key without "=" has an empty
    value, as S3 reads it), or None without the header."""
    value = headers.get(TAGGING)
    if value is None:
        return None
    return check_tags(parse_qsl(value, keep_blank_values=True))


def copy_tags(headers: Mapping[str, str]) -> dict[str, str] | None:
    """A copy's new tags: the header's under REPLACE (none: an empty set), else None (the
    source's, COPY being the default directive)."""
    directive = headers.get("x-amz-tagging-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise InvalidArgument("Unknown tagging directive.", resource="x-amz-tagging-directive")
    return (header_tags(headers) or {}) if directive == "REPLACE" else None


async def _body_tags(call: S3Call, *, limit: int) -> dict[str, str]:
    fields = await request_document(call, "Tagging", MAX_TAGGING_BYTES)
    tag_set = fields.get("TagSet")
    if tag_set is None or set(fields) != {"TagSet"}:
        raise MalformedXML()
    pairs = []
    for tag in tag_set:
        parts = fields_of(tag)
        key, value = text_of(parts.get("Key")), text_of(parts.get("Value"))
        if local_name(tag.tag) != "Tag" or key is None or value is None:
            raise MalformedXML()
        pairs.append((key, value))
    return check_tags(pairs, limit=limit)


async def handle_get_object_tagging(call: S3Call) -> web.StreamResponse:
    head = await call.store.head_object(
        call.endpoint.bucket, call.endpoint.key, version_id=call.params.version_id
    )
    return xml_response(Tagging(head.tags), headers=version_headers(head))


async def handle_put_object_tagging(call: S3Call) -> web.StreamResponse:
    tags = await _body_tags(call, limit=MAX_OBJECT_TAGS)
    head = await call.store.set_object_tags(
        call.endpoint.bucket, call.endpoint.key, tags, version_id=call.params.version_id
    )
    return web.Response(headers=version_headers(head))


async def handle_delete_object_tagging(call: S3Call) -> web.StreamResponse:
    head = await call.store.set_object_tags(
        call.endpoint.bucket, call.endpoint.key, {}, version_id=call.params.version_id
    )
    return web.Response(status=204, headers=version_headers(head))


async def handle_get_bucket_tagging(call: S3Call) -> web.StreamResponse:
    bucket = await call.bucket()
    if bucket.tags is None:
        raise absent("tagging", bucket.name)
    return xml_response(Tagging(bucket.tags))


async def handle_put_bucket_tagging(call: S3Call) -> web.StreamResponse:
    tags = await _body_tags(call, limit=MAX_BUCKET_TAGS)
    await call.store.set_bucket_tags(call.endpoint.bucket, tags)
    return web.Response(status=204)


async def handle_delete_bucket_tagging(call: S3Call) -> web.StreamResponse:
    await call.store.set_bucket_tags(call.endpoint.bucket, None)
    return web.Response(status=204)
