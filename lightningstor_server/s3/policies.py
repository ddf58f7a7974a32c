"""Bucket policies, public access blocks and ownership controls: Put/Get/DeleteBucketPolicy,
GetBucketPolicyStatus, Put/Get/DeletePublicAccessBlock, Put/Get/DeleteBucketOwnershipControls.

Each is a thin translation: the policy language and what may be set are the core's
(``auth/policy.py``, ``auth/access.py``).
"""

from __future__ import annotations

from aiohttp import web

from lightningstor.auth.access import bucket_is_public, check_policy
from lightningstor.errors import InvalidArgument, MalformedPolicy
from lightningstor.model import OWNERSHIPS, PublicAccessBlock
from lightningstor_server.s3.body import request_document, small_body
from lightningstor_server.s3.configuration import absent
from lightningstor_server.s3.context import S3Call
from lightningstor_server.s3.documents import (
    OwnershipControls,
    PolicyStatus,
    PublicAccessBlockConfiguration,
    xml_response,
)
from lightningstor_server.s3.errors import MalformedXML
from lightningstor_server.s3.xml import fields_of, text_of

MAX_POLICY_BYTES = 20 * 1024  # AWS's limit on a bucket policy
MAX_CONFIGURATION_BYTES = 64 * 1024
_PAB_ELEMENTS = {
    "BlockPublicAcls": "block_public_acls",
    "IgnorePublicAcls": "ignore_public_acls",
    "BlockPublicPolicy": "block_public_policy",
    "RestrictPublicBuckets": "restrict_public_buckets",
}


# --- bucket policy ---------------------------------------------------------------------------
async def handle_get_bucket_policy(call: S3Call) -> web.StreamResponse:
    bucket = await call.bucket()
    if not bucket.policy:
        raise absent("policy", bucket.name)
    return web.Response(text=bucket.policy, content_type="application/json")


async def handle_put_bucket_policy(call: S3Call) -> web.StreamResponse:
    bucket = await call.bucket()
    body = await small_body(call, MAX_POLICY_BYTES)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise MalformedPolicy("Policies must be valid JSON text in UTF-8.") from None
    identities = call.gateway.identities
    await check_policy(
        text,
        bucket,
        call.access,
        principal_exists=identities.principal_exists if identities else None,
    )
    await call.store.set_bucket_policy(bucket.name, text)
    return web.Response(status=204)


async def handle_delete_bucket_policy(call: S3Call) -> web.StreamResponse:
    await call.store.set_bucket_policy(call.endpoint.bucket, "")
    return web.Response(status=204)


async def handle_get_bucket_policy_status(call: S3Call) -> web.StreamResponse:
    bucket = await call.bucket()
    if not bucket.policy:
        raise absent("policy", bucket.name)
    return xml_response(PolicyStatus(bucket_is_public(bucket, call.access)))


# --- public access block ---------------------------------------------------------------------
async def handle_get_public_access_block(call: S3Call) -> web.StreamResponse:
    bucket = await call.bucket()
    if bucket.public_access_block is None:
        raise absent("publicAccessBlock", bucket.name)
    return xml_response(PublicAccessBlockConfiguration(bucket.public_access_block))


async def handle_put_public_access_block(call: S3Call) -> web.StreamResponse:
    fields = await request_document(call, "PublicAccessBlockConfiguration", MAX_CONFIGURATION_BYTES)
    flags: dict[str, bool] = {}
    for name, value in fields.items():
        attribute = _PAB_ELEMENTS.get(name)
        text = (text_of(value) or "").lower()
        if attribute is None or text not in ("true", "false"):
            raise MalformedXML()
        flags[attribute] = text == "true"
    await call.store.set_public_access_block(call.endpoint.bucket, PublicAccessBlock(**flags))
    return web.Response()


async def handle_delete_public_access_block(call: S3Call) -> web.StreamResponse:
    await call.store.set_public_access_block(call.endpoint.bucket, None)
    return web.Response(status=204)


# --- ownership controls ----------------------------------------------------------------------
async def handle_get_ownership_controls(call: S3Call) -> web.StreamResponse:
    bucket = await call.bucket()
    if not bucket.ownership:
        raise absent("ownershipControls", bucket.name)
    return xml_response(OwnershipControls(bucket.ownership))


async def handle_put_ownership_controls(call: S3Call) -> web.StreamResponse:
    fields = await request_document(call, "OwnershipControls", MAX_CONFIGURATION_BYTES)
    rule = fields.get("Rule")
    if rule is None or set(fields) != {"Rule"}:
        raise MalformedXML()
    ownership = text_of(fields_of(rule).get("ObjectOwnership"))
    if ownership not in OWNERSHIPS:
        raise MalformedXML()
    await call.store.set_ownership(call.endpoint.bucket, ownership)
    return web.Response()


async def handle_delete_ownership_controls(call: S3Call) -> web.StreamResponse:
    await call.store.set_ownership(call.endpoint.bucket, "")
    return web.Response(status=204)


def object_ownership_header(value: str | None) -> str | None:
    """CreateBucket's x-amz-object-ownership, checked (None: not given)."""
    if value is not None and value not in OWNERSHIPS:
        raise InvalidArgument("Invalid x-amz-object-ownership header", resource=value)
    return value
