"""Bucket operations: CreateBucket, DeleteBucket, HeadBucket, ListBuckets, GetBucketLocation."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from lightningstor.auth.access import visible
from lightningstor.auth.acls import owner_only, settable_acl
from lightningstor.errors import BucketAlreadyOwnedByYou, InvalidBucketAclWithObjectOwnership
from lightningstor.model import (
    BUCKET_OWNER_ENFORCED,
    BucketAccess,
    BucketInfo,
    Owner,
)
from lightningstor_server.s3.acl import header_acl
from lightningstor_server.s3.body import small_body
from lightningstor_server.s3.configuration import check_write_headers
from lightningstor_server.s3.context import S3Call
from lightningstor_server.s3.documents import (
    BucketEntry,
    ListAllMyBucketsResult,
    LocationConstraint,
    xml_response,
)
from lightningstor_server.s3.policies import object_ownership_header
from lightningstor_server.s3.xml import parse_request

MAX_CREATE_BODY_BYTES = 64 * 1024
LOCK_ENABLED = "x-amz-bucket-object-lock-enabled"


async def handle_create_bucket(call: S3Call) -> web.StreamResponse:
    check_write_headers(call)
    owner = call.owner
    assert owner is not None  # authorization refuses anonymous CreateBucket
    access = await _new_bucket_access(call, owner)
    await _check_location(call)
    try:
        await call.store.create_bucket(
            call.endpoint.bucket,
            owner=owner,
            object_lock=call.headers.get(LOCK_ENABLED, "").lower() == "true",
            access=access,
        )
    except BucketAlreadyOwnedByYou:
        # AWS keeps its legacy answer in us-east-1: re-creating your own bucket succeeds.
        if call.gateway.region != "us-east-1":
            raise
    return web.Response(headers={"Location": f"/{call.endpoint.bucket}"})


async def _new_bucket_access(call: S3Call, owner: Owner) -> BucketAccess:
    """A new bucket's ownership controls, public access block (AccessSettings.new_bucket) and
    the ACL its request asks for."""
    asked = object_ownership_header(call.headers.get("x-amz-object-ownership"))
    access = call.access.new_bucket(asked)
    acl = await header_acl(call, owner=owner, bucket_owner=owner)
    if access.ownership == BUCKET_OWNER_ENFORCED:
        # x-amz-acl: private is how many tools create every bucket: it changes nothing here.
        if acl is not None and not owner_only(acl, owner):
            raise InvalidBucketAclWithObjectOwnership(resource=call.endpoint.bucket)
        return access
    draft = BucketInfo(
        name=call.endpoint.bucket,
        created_ns=0,
        owner=owner,
        ownership=access.ownership,
        public_access_block=access.public_access_block,
    )
    stored = settable_acl(draft, acl, call.access, on_bucket=True)
    return dataclasses.replace(access, acl=stored)


async def _check_location(call: S3Call) -> None:
    """Read (bounded) the optional CreateBucketConfiguration body; it must be well-formed."""
    body = await small_body(call, MAX_CREATE_BODY_BYTES)
    if not body.strip():
        return
    parse_request(body)


async def handle_delete_bucket(call: S3Call) -> web.StreamResponse:
    await call.gateway.multipart.delete_bucket(call.endpoint.bucket)  # its uploads end with it
    return web.Response(status=204)


async def handle_head_bucket(call: S3Call) -> web.StreamResponse:
    await call.store.head_bucket(call.endpoint.bucket)
    return web.Response(headers={"x-amz-bucket-region": call.gateway.region})


async def handle_get_bucket_location(call: S3Call) -> web.StreamResponse:
    await call.store.head_bucket(call.endpoint.bucket)
    # us-east-1 is reported as an empty LocationConstraint, as AWS does.
    region = "" if call.gateway.region == "us-east-1" else call.gateway.region
    return xml_response(LocationConstraint(region))


async def handle_list_buckets(call: S3Call) -> web.StreamResponse:
    query = call.query
    prefix = query.get("prefix", "")
    token = query.get("continuation-token")
    after = call.store.resume_after(token) if token else None
    limit = call.params.max_buckets
    # Bucket counts are small (S3 caps an account at 10,000): one scan, filtered here.
    shown = visible(call.caller, await call.store.list_buckets())
    region = call.gateway.region
    # Every bucket here is in the server's one region: another region's filter shows none.
    in_region = query.get("bucket-region", region) == region
    names = [b for b in shown if b.name.startswith(prefix) and in_region]
    page = [b for b in names if after is None or b.name > after][:limit]
    more = len(page) == limit and page[-1].name != names[-1].name
    result = ListAllMyBucketsResult(
        buckets=[BucketEntry(b.name, b.created_ns, region) for b in page],
        owner=_listing_owner(call),
        continuation_token=call.store.page_token(page[-1].name) if more else None,
        prefix=prefix if "prefix" in query else None,
    )
    return xml_response(result)


def _listing_owner(call: S3Call) -> Owner:
    owner = call.owner
    assert owner is not None  # authorization refuses anonymous ListBuckets
    return owner
