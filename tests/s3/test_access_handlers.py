"""The access-policy operations through the in-process S3 door: bucket policies, public access
blocks, ownership controls, ACLs, and what anonymous requests get. Every refusal leaves what
was stored as it was."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path

from lightningstor.auth.access import AccessSettings
from lightningstor.model import derived_canonical_id
from tests.s3.test_handlers import KEY_ID, LIMITED, NS, Door, code_of, serving

OPEN = AccessSettings(block_public_access=False)
PAB_OFF = (
    b"<PublicAccessBlockConfiguration><BlockPublicAcls>false</BlockPublicAcls>"
    b"<IgnorePublicAcls>false</IgnorePublicAcls><BlockPublicPolicy>false</BlockPublicPolicy>"
    b"<RestrictPublicBuckets>false</RestrictPublicBuckets></PublicAccessBlockConfiguration>"
)


def run(
    tmp_path: Path, scenario: Callable[[Door], Awaitable[None]], access: AccessSettings
) -> None:
    async def main() -> None:
        async with serving(tmp_path / "data", access) as d:
            await scenario(d)

    asyncio.run(main())


def public_get(bucket: str) -> bytes:
    statement = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}).encode()


async def anonymous(d: Door, method: str, target: str) -> tuple[int, str | None]:
    response = await d.client.request(method, target)
    body = await response.read()
    return response.status, code_of(body) if response.status >= 400 else None


def test_new_buckets_are_closed_and_say_so(tmp_path: Path) -> None:
    async def scenario(d: Door) -> None:
        await d.call("PUT", "/closed")
        status, _, body = await d.call("GET", "/closed?ownershipControls")
        assert status == 200 and b"<ObjectOwnership>BucketOwnerEnforced<" in body
        status, _, body = await d.call("GET", "/closed?publicAccessBlock")
        assert status == 200 and body.count(b">true<") == 4
        status, _, body = await d.call("GET", "/closed?acl")
        grants = ET.fromstring(body).findall(".//s3:Grant", NS)
        assert len(grants) == 1 and grants[0].findtext(".//s3:ID", namespaces=NS) == (
            derived_canonical_id(KEY_ID)
        )
        # ACLs are off: only the bucket owner's full control is accepted.
        status, _, body = await d.call("PUT", "/closed?acl", headers={"x-amz-acl": "public-read"})
        assert (status, code_of(body)) == (400, "AccessControlListNotSupported")
        status, _, body = await d.call("PUT", "/closed/k", b"x", {"x-amz-acl": "private"})
        assert (status, code_of(body)) == (400, "AccessControlListNotSupported")
        assert (await d.call("GET", "/closed/k"))[0] == 404
        ok = {"x-amz-acl": "bucket-owner-full-control"}
        assert (await d.call("PUT", "/closed/k", b"x", ok))[0] == 200

    run(tmp_path, scenario, AccessSettings())


def test_a_public_policy_needs_both_blocks_lifted(tmp_path: Path) -> None:
    async def scenario(d: Door) -> None:
        await d.call("PUT", "/pub")
        await d.call("PUT", "/pub/k", b"public bytes")
        status, _, body = await d.call("PUT", "/pub?policy", public_get("pub"))
        assert (status, code_of(body)) == (403, "AccessDenied")  # the bucket's own block
        assert (await d.call("GET", "/pub?policy"))[0] == 404
        assert (await d.call("PUT", "/pub?publicAccessBlock", PAB_OFF))[0] == 200
        assert (await d.call("PUT", "/pub?policy", public_get("pub")))[0] == 204
        assert await anonymous(d, "GET", "/pub/k") == (200, None)
        assert await anonymous(d, "GET", "/pub") == (403, "AccessDenied")
        assert await anonymous(d, "PUT", "/pub/k") == (403, "AccessDenied")
        assert await anonymous(d, "GET", "/nosuchbucket/k") == (404, "NoSuchBucket")
        status, _, body = await d.call("GET", "/pub?policyStatus")
        assert status == 200 and b"<IsPublic>true</IsPublic>" in body
        assert (await d.call("DELETE", "/pub?policy"))[0] == 204
        assert await anonymous(d, "GET", "/pub/k") == (403, "AccessDenied")

    run(tmp_path, scenario, OPEN)


def test_the_server_wide_block_holds_whatever_a_bucket_says(tmp_path: Path) -> None:
    async def scenario(d: Door) -> None:
        await d.call("PUT", "/pub")
        assert (await d.call("PUT", "/pub?publicAccessBlock", PAB_OFF))[0] == 200
        status, _, body = await d.call("PUT", "/pub?policy", public_get("pub"))
        assert (status, code_of(body)) == (403, "AccessDenied")
        await d.call("PUT", "/pub?ownershipControls", _ownership("ObjectWriter"))
        status, _, body = await d.call("PUT", "/pub/k", b"x", {"x-amz-acl": "public-read"})
        assert (status, code_of(body)) == (403, "AccessDenied")
        assert (await d.call("GET", "/pub/k"))[0] == 404

    run(tmp_path, scenario, AccessSettings())


def test_a_malformed_policy_is_refused_and_the_old_one_kept(tmp_path: Path) -> None:
    async def scenario(d: Door) -> None:
        await d.call("PUT", "/pol")
        await d.call("PUT", "/pol?publicAccessBlock", PAB_OFF)
        good = public_get("pol")
        assert (await d.call("PUT", "/pol?policy", good))[0] == 204
        other_bucket = public_get("elsewhere")
        unknown_action = good.replace(b"s3:GetObject", b"s3:GetObjekt")
        for bad in (b"{", b"[]", b"\xff\xfe", other_bucket, unknown_action):
            status, _, body = await d.call("PUT", "/pol?policy", bad)
            assert (status, code_of(body)) == (400, "MalformedPolicy"), bad
            assert (await d.call("GET", "/pol?policy"))[2] == good
        # A policy may not lock its owner out of managing it.
        deny = json.loads(good)
        deny["Statement"][0] |= {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
        assert (await d.call("PUT", "/pol?policy", json.dumps(deny).encode()))[0] == 204
        assert (await d.call("GET", "/pol?policy"))[0] == 200
        assert (await d.call("DELETE", "/pol?policy"))[0] == 204

    run(tmp_path, scenario, OPEN)


def _ownership(value: str) -> bytes:
    return (
        f"<OwnershipControls><Rule><ObjectOwnership>{value}</ObjectOwnership></Rule>"
        "</OwnershipControls>"
    ).encode()


def test_ownership_controls_and_bucket_acls(tmp_path: Path) -> None:
    async def scenario(d: Door) -> None:
        await d.call("PUT", "/own", headers={"x-amz-acl": "public-read"})
        status, _, body = await d.call("GET", "/own?ownershipControls")
        assert (status, code_of(body)) == (404, "OwnershipControlsNotFoundError")
        assert await anonymous(d, "GET", "/own") == (200, None)  # READ for AllUsers: listing
        status, _, body = await d.call(
            "PUT", "/own?ownershipControls", _ownership("BucketOwnerEnforced")
        )
        assert (status, code_of(body)) == (400, "InvalidBucketAclWithObjectOwnership")
        status, _, body = await d.call("PUT", "/own?ownershipControls", _ownership("Nobody"))
        assert (status, code_of(body)) == (400, "MalformedXML")
        assert (await d.call("PUT", "/own?acl", headers={"x-amz-acl": "private"}))[0] == 200
        assert await anonymous(d, "GET", "/own") == (403, "AccessDenied")
        assert (await d.call("PUT", "/own?ownershipControls", _ownership("BucketOwnerEnforced")))[
            0
        ] == 200
        assert (await d.call("DELETE", "/own?ownershipControls"))[0] == 204
        status, _, body = await d.call("GET", "/own?ownershipControls")
        assert code_of(body) == "OwnershipControlsNotFoundError"

    run(tmp_path, scenario, AccessSettings(block_public_access=False, legacy_bucket_defaults=True))


def test_grants_name_keys_by_canonical_id_and_refuse_what_they_cannot_resolve(
    tmp_path: Path,
) -> None:
    async def scenario(d: Door) -> None:
        await d.call("PUT", "/acl")
        await d.call("PUT", "/acl/k", b"data")
        status, _, body = await d.call("GET", "/acl/k", key_id=LIMITED)
        assert (status, code_of(body)) == (403, "AccessDenied")
        for header, code in (
            ('emailAddress="someone@example.com"', "UnresolvableGrantByEmailAddress"),
            ('uri="http://example.com/groups/Nobody"', "InvalidArgument"),
            ("id=", "InvalidArgument"),
        ):
            status, _, body = await d.call(
                "PUT", "/acl/k?acl", headers={"x-amz-grant-read": header}
            )
            assert (status, code_of(body)) == (400, code)
        malformed = (
            b"<AccessControlPolicy><AccessControlList><Grant/></AccessControlList>"
            b"</AccessControlPolicy>"
        )
        status, _, body = await d.call("PUT", "/acl/k?acl", malformed)
        assert (status, code_of(body)) == (400, "MalformedACLError")
        # Nothing changed: the limited key is still refused, the owner still reads.
        assert (await d.call("GET", "/acl/k", key_id=LIMITED))[0] == 403
        assert (await d.call("GET", "/acl/k"))[2] == b"data"
        headers = {"x-amz-acl": "public-read", "x-amz-grant-read": 'uri="x"'}
        status, _, body = await d.call("PUT", "/acl/k?acl", headers=headers)
        assert (status, code_of(body)) == (400, "InvalidRequest")
        status, _, body = await d.call("PUT", "/acl/k?acl", headers={"x-amz-acl": "public-ready"})
        assert (status, code_of(body)) == (400, "InvalidArgument")
        assert (await d.call("PUT", "/acl/k?acl", headers={"x-amz-acl": "authenticated-read"}))[
            0
        ] == 200
        assert (await d.call("GET", "/acl/k", key_id=LIMITED))[2] == b"data"
        assert await anonymous(d, "GET", "/acl/k") == (403, "AccessDenied")

    run(tmp_path, scenario, AccessSettings(block_public_access=False, legacy_bucket_defaults=True))


def test_a_cors_preflight_is_answered_before_authentication(tmp_path: Path) -> None:
    async def scenario(d: Door) -> None:
        await d.call("PUT", "/cors")
        response = await d.client.request("OPTIONS", "/cors/k")
        assert (response.status, code_of(await response.read())) == (400, "BadRequest")
        headers = {"Origin": "https://example.com", "Access-Control-Request-Method": "GET"}
        response = await d.client.request("OPTIONS", "/cors/k", headers=headers)
        assert (response.status, code_of(await response.read())) == (403, "AccessForbidden")

    run(tmp_path, scenario, AccessSettings())


def test_an_acl_is_set_on_the_version_named(tmp_path: Path) -> None:
    async def scenario(d: Door) -> None:
        await d.call("PUT", "/ver")
        enabled = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"
        await d.call("PUT", "/ver?versioning", enabled)
        old = (await d.call("PUT", "/ver/k", b"one"))[1]["x-amz-version-id"]
        await d.call("PUT", "/ver/k", b"two")
        public = {"x-amz-acl": "public-read"}
        assert (await d.call("PUT", f"/ver/k?acl&versionId={old}", headers=public))[0] == 200
        assert b"AllUsers" in (await d.call("GET", f"/ver/k?acl&versionId={old}"))[2]
        assert b"AllUsers" not in (await d.call("GET", "/ver/k?acl"))[2]
        assert await anonymous(d, "GET", "/ver/k") == (403, "AccessDenied")

    run(tmp_path, scenario, AccessSettings(block_public_access=False, legacy_bucket_defaults=True))
