"""The one access decision both doors ask (auth/access.py) and the ACL rules (auth/acls.py)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import pytest

from lightningstor import errors
from lightningstor.auth.access import (
    AccessRequest,
    AccessSettings,
    Caller,
    Verdict,
    decide,
    visible,
)
from lightningstor.auth.acls import (
    canned_acl,
    check_ownership_change,
    settable_acl,
    visible_acl,
    written_owner,
)
from lightningstor.auth.policy import Principal
from lightningstor.model import (
    ALL_USERS,
    AUTHENTICATED_USERS,
    BLOCK_ALL,
    BUCKET_OWNER_ENFORCED,
    BUCKET_OWNER_PREFERRED,
    FULL_CONTROL,
    OBJECT_WRITER,
    READ,
    BucketInfo,
    Grant,
    ObjectAcl,
    Owner,
    PublicAccessBlock,
)

OWNER = Owner("owner-id", "owner")
OTHER = Owner("other-id", "other")
OPEN = AccessSettings(block_public_access=False)


def key(owner: Owner, *, admin: bool = False, **grants: str) -> Caller:
    principal = Principal(
        anonymous=False, access_key_id="AK" + owner.id, canonical_id=owner.id, name=owner.name
    )
    return Caller(principal=principal, admin=admin, grants=grants)


ANYONE = Caller()


def bucket(**fields: Any) -> BucketInfo:
    """A bucket of OWNER's, as buckets are made by default (ACLs off) unless ``fields`` say."""
    info = BucketInfo(name="bkt", created_ns=0, owner=OWNER, ownership=BUCKET_OWNER_ENFORCED)
    return dataclasses.replace(info, **fields)


def policy(*statements: Mapping[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def ask(
    action: str, key_name: str | None = "k", context: Mapping[str, list[str]] | None = None
) -> AccessRequest:
    return AccessRequest(action=action, bucket="bkt", key=key_name, context=context or {})


PUBLIC_GET = {
    "Effect": "Allow",
    "Principal": "*",
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::bkt/*",
}


def test_owner_admin_and_grants_allow_and_strangers_are_refused() -> None:
    info = bucket()
    assert decide(key(OWNER), ask("s3:PutObject"), info, OPEN) is Verdict.ALLOW
    assert decide(key(OTHER, admin=True), ask("s3:DeleteBucket", None), info, OPEN) is Verdict.ALLOW
    assert decide(key(OTHER, bkt="read"), ask("s3:GetObject"), info, OPEN) is Verdict.ALLOW
    assert decide(key(OTHER, bkt="read"), ask("s3:PutObject"), info, OPEN) is Verdict.DENY
    assert decide(key(OTHER, bkt="write"), ask("s3:PutObject"), info, OPEN) is Verdict.ALLOW
    # A grant never covers managing access: that stays the owner's.
    assert decide(key(OTHER, bkt="readwrite"), ask("s3:PutBucketPolicy", None), info, OPEN) is (
        Verdict.DENY
    )
    for caller in (key(OTHER), ANYONE):
        assert decide(caller, ask("s3:GetObject"), info, OPEN) is Verdict.DENY


def test_an_explicit_deny_beats_admins_owners_and_grants_but_not_the_owners_policy_rights() -> None:
    everything = ["arn:aws:s3:::bkt", "arn:aws:s3:::bkt/*"]
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": everything}
    info = bucket(policy=policy(deny))
    for caller in (key(OWNER), key(OTHER, admin=True), key(OTHER, bkt="readwrite")):
        assert decide(caller, ask("s3:GetObject"), info, OPEN) is Verdict.DENY
    # Lockout protection: the owner (and admins) may still read, replace or remove the policy.
    for action in ("s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"):
        assert decide(key(OWNER), ask(action, None), info, OPEN) is Verdict.ALLOW
        assert decide(key(OTHER, bkt="readwrite"), ask(action, None), info, OPEN) is Verdict.DENY


def test_a_source_ip_deny_beats_an_allow_for_the_same_request() -> None:
    condition = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    deny = {**PUBLIC_GET, "Effect": "Deny", "Condition": condition}
    info = bucket(policy=policy(PUBLIC_GET, deny))
    inside, outside = (
        ask("s3:GetObject", context={"aws:SourceIp": ["10.1.2.3"]}),
        ask("s3:GetObject", context={"aws:SourceIp": ["192.0.2.1"]}),
    )
    assert decide(ANYONE, inside, info, OPEN) is Verdict.DENY
    assert decide(ANYONE, outside, info, OPEN) is Verdict.ALLOW


def test_the_public_access_block_in_force_is_the_buckets_or_the_servers() -> None:
    info = bucket(policy=policy(PUBLIC_GET))
    assert decide(ANYONE, ask("s3:GetObject"), info, OPEN) is Verdict.ALLOW
    # The server-wide block (the default) ignores the public policy; so does the bucket's own.
    assert decide(ANYONE, ask("s3:GetObject"), info, AccessSettings()) is Verdict.DENY
    restricted = bucket(
        policy=policy(PUBLIC_GET),
        public_access_block=PublicAccessBlock(restrict_public_buckets=True),
    )
    assert decide(ANYONE, ask("s3:GetObject"), restricted, OPEN) is Verdict.DENY
    assert decide(key(OWNER), ask("s3:GetObject"), restricted, OPEN) is Verdict.ALLOW


def test_acls_decide_only_when_ownership_leaves_them_on() -> None:
    public_read = canned_acl("public-read", owner=OWNER, bucket_owner=OWNER)
    on = bucket(acl=public_read, ownership="")
    assert decide(ANYONE, ask("s3:ListBucket", None), on, OPEN) is Verdict.ALLOW
    assert decide(ANYONE, ask("s3:PutObject"), on, OPEN) is Verdict.DENY
    enforced = bucket(acl=public_read, ownership=BUCKET_OWNER_ENFORCED)
    assert decide(ANYONE, ask("s3:ListBucket", None), enforced, OPEN) is Verdict.DENY
    ignored = bucket(
        acl=public_read, public_access_block=PublicAccessBlock(ignore_public_acls=True)
    )
    assert decide(ANYONE, ask("s3:ListBucket", None), ignored, OPEN) is Verdict.DENY


def test_an_objects_acl_is_asked_for_and_decides_object_reads() -> None:
    info = bucket(ownership=OBJECT_WRITER)
    request = ask("s3:GetObject")
    assert decide(key(OTHER), request, info, OPEN) is Verdict.ASK_OBJECT
    theirs = ObjectAcl(owner=OTHER)
    assert decide(key(OTHER), request, info, OPEN, theirs) is Verdict.ALLOW
    # With ACLs on, the bucket owner does not read what another key owns unless granted...
    assert decide(key(OWNER), request, info, OPEN, theirs) is Verdict.DENY
    granted = ObjectAcl(
        owner=OTHER, acl=canned_acl("bucket-owner-read", owner=OTHER, bucket_owner=OWNER)
    )
    assert decide(key(OWNER), request, info, OPEN, granted) is Verdict.ALLOW
    # ...but may always delete it.
    assert decide(key(OWNER), ask("s3:DeleteObject"), info, OPEN) is Verdict.ALLOW
    read = (Grant(permission=READ, group=AUTHENTICATED_USERS),)
    authenticated = ObjectAcl(owner=OTHER, acl=read)
    assert decide(ANYONE, request, info, OPEN, authenticated) is Verdict.DENY
    assert decide(key(Owner("third")), request, info, OPEN, authenticated) is Verdict.ALLOW


def test_canned_acls_expand_as_s3_defines_them_and_show_groups_first() -> None:
    assert canned_acl("private", owner=OWNER, bucket_owner=OWNER) == (
        Grant(permission=FULL_CONTROL, user=OWNER),
    )
    public = canned_acl("public-read-write", owner=OWNER, bucket_owner=OWNER)
    assert visible_acl(public, OWNER) == (
        Grant(permission=READ, group=ALL_USERS),
        Grant(permission="WRITE", group=ALL_USERS),
        Grant(permission=FULL_CONTROL, user=OWNER),
    )
    assert visible_acl(None, OWNER) == (Grant(permission=FULL_CONTROL, user=OWNER),)
    assert canned_acl("bucket-owner-full-control", owner=OTHER, bucket_owner=OWNER) == (
        Grant(permission=FULL_CONTROL, user=OTHER),
        Grant(permission=FULL_CONTROL, user=OWNER),
    )
    with pytest.raises(errors.InvalidArgument):
        canned_acl("public-ready", owner=OWNER, bucket_owner=OWNER)


def test_what_an_acl_may_be_set_to() -> None:
    full = canned_acl("bucket-owner-full-control", owner=OWNER, bucket_owner=OWNER)
    public = canned_acl("public-read", owner=OWNER, bucket_owner=OWNER)
    enforced = bucket(ownership=BUCKET_OWNER_ENFORCED)
    assert settable_acl(enforced, full, OPEN, canned="bucket-owner-full-control") is None
    for canned, acl in (("private", full), ("public-read", public), (None, public)):
        with pytest.raises(errors.AccessControlListNotSupported):
            settable_acl(enforced, acl, OPEN, canned=canned)
    writer = bucket(ownership=OBJECT_WRITER)
    assert settable_acl(writer, public, OPEN) == public
    with pytest.raises(errors.AccessDenied):  # BlockPublicAcls, the server's or the bucket's
        settable_acl(writer, public, AccessSettings())
    with pytest.raises(errors.AccessDenied):
        settable_acl(bucket(ownership="", public_access_block=BLOCK_ALL), public, OPEN)


def test_who_owns_what_a_write_creates() -> None:
    assert written_owner(bucket(ownership=BUCKET_OWNER_ENFORCED), OTHER, None) == OWNER
    preferred = bucket(ownership=BUCKET_OWNER_PREFERRED)
    assert written_owner(preferred, OTHER, "bucket-owner-full-control") == OWNER
    assert written_owner(preferred, OTHER, None) == OTHER
    assert (
        written_owner(bucket(ownership=OBJECT_WRITER), OTHER, "bucket-owner-full-control") == OTHER
    )
    assert written_owner(bucket(), None, None) == OWNER  # an anonymous write: the bucket owner's


def test_enforcing_ownership_needs_a_private_bucket_acl() -> None:
    public_read = canned_acl("public-read", owner=OWNER, bucket_owner=OWNER)
    public = bucket(acl=public_read, ownership=OBJECT_WRITER)
    with pytest.raises(errors.InvalidBucketAclWithObjectOwnership):
        check_ownership_change(public, BUCKET_OWNER_ENFORCED)
    check_ownership_change(public, OBJECT_WRITER)
    check_ownership_change(bucket(), BUCKET_OWNER_ENFORCED)


def test_a_key_lists_its_own_buckets_and_those_it_is_granted() -> None:
    mine, granted, other = bucket(name="mine"), bucket(name="granted"), bucket(name="other")
    mine = bucket(name="mine", owner=OTHER)
    shown = visible(key(OTHER, granted="read"), [mine, granted, other])
    assert [b.name for b in shown] == ["mine", "granted"]
    assert len(visible(key(OTHER, admin=True), [mine, granted, other])) == 3


def test_new_buckets_are_made_as_aws_makes_them_unless_the_operator_says_otherwise() -> None:
    modern = AccessSettings().new_bucket()
    assert (modern.ownership, modern.public_access_block) == (BUCKET_OWNER_ENFORCED, BLOCK_ALL)
    legacy = AccessSettings(legacy_bucket_defaults=True).new_bucket()
    assert (legacy.ownership, legacy.public_access_block) == ("", None)
    assert AccessSettings().new_bucket(OBJECT_WRITER).ownership == OBJECT_WRITER


def test_full_control_is_the_four_permissions_and_nothing_more() -> None:
    full = (Grant(permission=FULL_CONTROL, user=OTHER),)
    info = bucket(acl=full, ownership=OBJECT_WRITER)
    for action in ("s3:ListBucket", "s3:PutObject", "s3:GetBucketAcl", "s3:PutBucketAcl"):
        assert decide(key(OTHER), ask(action, None), info, OPEN) is Verdict.ALLOW
    for action in (
        "s3:DeleteBucket",
        "s3:PutBucketPolicy",
        "s3:PutBucketPublicAccessBlock",
        "s3:PutBucketOwnershipControls",
        "s3:BypassGovernanceRetention",
    ):
        assert decide(key(OTHER), ask(action, None), info, OPEN) is Verdict.DENY
