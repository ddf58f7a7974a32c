"""ACLs as S3 requests carry them: a canned ACL (x-amz-acl), grant headers (x-amz-grant-*), or
an AccessControlPolicy body; and the ACL handlers (Get/PutBucketAcl, Get/PutObjectAcl).

What an ACL may be set to, and who owns what a write creates, is the core's (``auth/acls.py``);
here the request's forms become grants, each grantee found among the keys.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping

from aiohttp import web

from lightningstor.auth.acls import (
    canned_acl,
    settable_acl,
    visible_acl,
    written_owner,
)
from lightningstor.errors import (
    InvalidArgument,
    InvalidRequest,
    MalformedACLError,
    UnresolvableGrantByEmailAddress,
)
from lightningstor.model import (
    ALL_USERS,
    AUTHENTICATED_USERS,
    LOG_DELIVERY,
    PERMISSIONS,
    Acl,
    BucketInfo,
    Grant,
    ObjectAcl,
    Owner,
)
from lightningstor_server.s3.body import small_body
from lightningstor_server.s3.context import S3Call
from lightningstor_server.s3.documents import AccessControlPolicy, xml_response
from lightningstor_server.s3.errors import MalformedXML
from lightningstor_server.s3.headers import version_headers
from lightningstor_server.s3.xml import local_name, parse_request

MAX_ACL_BODY_BYTES = 64 * 1024
_GRANT_HEADERS = {
    "x-amz-grant-read": "READ",
    "x-amz-grant-write": "WRITE",
    "x-amz-grant-read-acp": "READ_ACP",
    "x-amz-grant-write-acp": "WRITE_ACP",
    "x-amz-grant-full-control": "FULL_CONTROL",
}
_GROUPS = frozenset({ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY})
_GRANTEE_ENTRY = re.compile(r'\s*(id|uri|emailAddress)\s*=\s*"?([^",]*)"?\s*(?:,|$)', re.I)
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


# --- what a request asks for -----------------------------------------------------------------
def canned_name(headers: Mapping[str, str]) -> str | None:
    """The canned ACL a request names; InvalidRequest when it also carries grant headers."""
    canned = headers.get("x-amz-acl")
    if canned is not None and any(name in headers for name in _GRANT_HEADERS):
        raise InvalidRequest("Specifying both Canned ACLs and Header Grants is not allowed")
    return canned


async def header_acl(call: S3Call, *, owner: Owner, bucket_owner: Owner) -> Acl | None:
    """The ACL a request's x-amz-acl or x-amz-grant-* headers give (None: neither)."""
    canned = canned_name(call.headers)
    if canned is not None:
        return canned_acl(canned, owner=owner, bucket_owner=bucket_owner)
    grants: list[Grant] = []
    for header, permission in _GRANT_HEADERS.items():
        for value in call.headers.getall(header, ()):
            grants += [await _grant(call, permission, kind, v) for kind, v in _entries(value)]
    return tuple(grants) if any(h in call.headers for h in _GRANT_HEADERS) else None


def _entries(value: str) -> list[tuple[str, str]]:
    entries, position = [], 0
    while position < len(value):
        match = _GRANTEE_ENTRY.match(value, position)
        if match is None or match.end() == position:
            raise InvalidArgument(f"Invalid grant header value {value!r}.")
        entries.append((match[1].lower(), match[2]))
        position = match.end()
    return entries


async def _grant(call: S3Call, permission: str, kind: str, value: str) -> Grant:
    if kind == "uri":
        if value not in _GROUPS:
            raise InvalidArgument("Invalid group uri", resource=value)
        return Grant(permission=permission, group=value)
    if kind == "emailaddress":
        raise UnresolvableGrantByEmailAddress(resource=value)
    identities = call.gateway.identities
    user = await identities.owner(value) if identities is not None else None
    if user is None:
        raise InvalidArgument("Invalid id", resource=value)
    return Grant(permission=permission, user=user)


async def body_acl(call: S3Call) -> Acl:
    """The grants of an AccessControlPolicy body; MalformedACLError for anything else."""
    body = await small_body(call, MAX_ACL_BODY_BYTES)
    try:
        root = parse_request(body, "AccessControlPolicy")
    except MalformedXML:
        raise MalformedACLError() from None
    grants: list[Grant] = []
    for node in root.iter():
        if local_name(node.tag) == "Grant":
            grants.append(await _xml_grant(call, node))
    return tuple(grants)


async def _xml_grant(call: S3Call, node: ET.Element) -> Grant:
    fields = {local_name(child.tag): child for child in node}
    grantee, permission = fields.get("Grantee"), _text(fields.get("Permission"))
    if grantee is None or permission not in PERMISSIONS:
        raise MalformedACLError()
    inner = {local_name(child.tag): (child.text or "").strip() for child in grantee}
    kind = grantee.get(_XSI_TYPE, "")
    if kind == "CanonicalUser" and inner.get("ID"):
        return await _grant(call, permission, "id", inner["ID"])
    if kind == "Group" and inner.get("URI"):
        return await _grant(call, permission, "uri", inner["URI"])
    if kind == "AmazonCustomerByEmail" and inner.get("EmailAddress"):
        return await _grant(call, permission, "emailaddress", inner["EmailAddress"])
    raise MalformedACLError()


def _text(node: ET.Element | None) -> str:
    return (node.text or "").strip() if node is not None else ""


async def requested_acl(call: S3Call, *, owner: Owner, bucket_owner: Owner) -> Acl:
    """PutBucketAcl's and PutObjectAcl's new ACL: from the headers, else the body."""
    from_headers = await header_acl(call, owner=owner, bucket_owner=bucket_owner)
    return from_headers if from_headers is not None else await body_acl(call)


async def written_acl(call: S3Call, bucket: BucketInfo) -> ObjectAcl:
    """Who owns the object a write creates and its ACL (PutObject, CopyObject,
    CreateMultipartUpload), as the bucket's Object Ownership and public access block allow."""
    canned = canned_name(call.headers)
    owner = written_owner(bucket, call.owner, canned)
    acl = await header_acl(call, owner=owner, bucket_owner=bucket.owner)
    return ObjectAcl(owner=owner, acl=settable_acl(bucket, acl, call.access, canned=canned))


# --- handlers --------------------------------------------------------------------------------
async def handle_get_bucket_acl(call: S3Call) -> web.StreamResponse:
    bucket = await call.bucket()
    shown = visible_acl(bucket.acl if bucket.acls_enabled else None, bucket.owner)
    return xml_response(AccessControlPolicy(bucket.owner, shown))


async def handle_put_bucket_acl(call: S3Call) -> web.StreamResponse:
    bucket = await call.bucket()
    acl = await requested_acl(call, owner=bucket.owner, bucket_owner=bucket.owner)
    canned = canned_name(call.headers)
    stored = settable_acl(bucket, acl, call.access, canned=canned, on_bucket=True)
    await call.store.set_bucket_acl(bucket.name, stored)
    return web.Response()


async def handle_get_object_acl(call: S3Call) -> web.StreamResponse:
    bucket = await call.bucket()
    head = await call.store.head_object(
        bucket.name, call.endpoint.key, version_id=call.params.version_id
    )
    owner = head.owner or bucket.owner
    shown = visible_acl(head.acl if bucket.acls_enabled else None, owner)
    return xml_response(AccessControlPolicy(owner, shown), headers=version_headers(head))


async def handle_put_object_acl(call: S3Call) -> web.StreamResponse:
    bucket = await call.bucket()
    key, version = call.endpoint.key, call.params.version_id
    head = await call.store.head_object(bucket.name, key, version_id=version)
    acl = await requested_acl(call, owner=head.owner or bucket.owner, bucket_owner=bucket.owner)
    stored = settable_acl(bucket, acl, call.access, canned=canned_name(call.headers))
    changed = await call.store.set_object_acl(bucket.name, key, stored, version_id=version)
    return web.Response(headers=version_headers(changed))
