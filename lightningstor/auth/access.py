"""Who may do what, asked the same way by both doors: one decision per request, in AWS's order.

    1. An explicit Deny in the bucket's policy refuses, admin keys included (the bucket's owner
       keeps Get/Put/DeleteBucketPolicy, as AWS keeps them for the account root, so a policy
       cannot lock its owner out for good).
    2. Otherwise any of these allows: an admin key; the bucket's owner; a key's bucket grant
       (read or write, the simplest policy there is); an Allow in the bucket policy (ignored for
       a public policy under RestrictPublicBuckets); an ACL grant, when the bucket's Object
       Ownership leaves ACLs on (public grants ignored under IgnorePublicAcls).
    3. Otherwise AccessDenied.

Public access blocks are the bucket's flags OR'd with the server-wide one (an operator setting,
on by default: nothing is public unless the operator and the bucket owner both say so).
A request for a bucket that does not exist is not refused here, so that its handler answers
NoSuchBucket (the doors check first). This module is pure; the doors fetch what it reads.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

from lightningstor.auth.policy import (
    ANONYMOUS,
    Decision,
    Policy,
    PolicyRequest,
    Principal,
    evaluate,
    is_public,
    parse_policy,
)
from lightningstor.errors import AccessDenied, InvalidArgument, MalformedPolicy
from lightningstor.model import (
    ALL_USERS,
    AUTHENTICATED_USERS,
    BLOCK_ALL,
    BLOCK_NONE,
    BUCKET_OWNER_ENFORCED,
    FULL_CONTROL,
    PUBLIC_GROUPS,
    READ,
    READ_ACP,
    WRITE,
    WRITE_ACP,
    Acl,
    BucketAccess,
    BucketInfo,
    ObjectAcl,
    Owner,
    PublicAccessBlock,
    key_owner,
)

GRANT_LEVELS = {
    "read": frozenset({"read"}),
    "write": frozenset({"write"}),
    "readwrite": frozenset({"read", "write"}),
}
# What each ACL permission allows, on a bucket's ACL and on an object's.
_BUCKET_ACL_ACTIONS = {
    READ: frozenset({"s3:listbucket", "s3:listbucketversions", "s3:listbucketmultipartuploads"}),
    WRITE: frozenset(
        {
            "s3:putobject",
            "s3:deleteobject",
            "s3:deleteobjectversion",
            "s3:abortmultipartupload",
            "s3:listmultipartuploadparts",
        }
    ),
    READ_ACP: frozenset({"s3:getbucketacl"}),
    WRITE_ACP: frozenset({"s3:putbucketacl"}),
}
_OBJECT_ACL_ACTIONS = {
    READ: frozenset({"s3:getobject", "s3:getobjectversion"}),
    READ_ACP: frozenset({"s3:getobjectacl", "s3:getobjectversionacl"}),
    WRITE_ACP: frozenset({"s3:putobjectacl", "s3:putobjectversionacl"}),
}
OBJECT_ACL_ACTIONS = frozenset().union(*_OBJECT_ACL_ACTIONS.values())
_ACP_ACTIONS = _OBJECT_ACL_ACTIONS[READ_ACP] | _OBJECT_ACL_ACTIONS[WRITE_ACP]
# What an owner keeps whatever its policy says, and what a bucket grant never covers.
_LOCKOUT_PROOF = frozenset({"s3:getbucketpolicy", "s3:putbucketpolicy", "s3:deletebucketpolicy"})
_OWNER_ONLY = frozenset(
    {
        *_LOCKOUT_PROOF,
        "s3:getbucketpolicystatus",
        "s3:putbucketacl",
        "s3:putbucketpublicaccessblock",
        "s3:putbucketownershipcontrols",
        "s3:bypassgovernanceretention",
    }
)
_READ_PREFIXES = ("s3:get", "s3:list")


class Access(Enum):
    READ = "read"
    WRITE = "write"


class Verdict(Enum):
    ALLOW = "allow"
    DENY = "deny"
    # Only the object's own ACL could still allow it: ask again with it.
    ASK_OBJECT = "ask-object"


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """Who a request comes from: a key (its principal, admin flag and bucket grants) or nobody
    (an unsigned request)."""

    principal: Principal = ANONYMOUS
    admin: bool = False
    grants: Mapping[str, str] = field(default_factory=dict)

    @property
    def owner(self) -> Owner | None:
        p = self.principal
        return None if p.anonymous else Owner(p.canonical_id, p.name)


ANONYMOUS_CALLER = Caller()


def key_caller(
    *, access_key_id: str, canonical_id: str, name: str, admin: bool, grants: Mapping[str, str]
) -> Caller:
    """A key as authorization knows it, whichever door verified it."""
    owner = key_owner(access_key_id, canonical_id, name)
    principal = Principal(
        anonymous=False, access_key_id=access_key_id, canonical_id=owner.id, name=name
    )
    return Caller(principal=principal, admin=admin, grants=grants)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessSettings:
    """The operator's say (settings.py documents each)."""

    block_public_access: bool = True
    keys_create_buckets: bool = True
    legacy_bucket_defaults: bool = False

    def new_bucket(self, ownership: str | None = None) -> BucketAccess:
        """What a new bucket starts with: as AWS makes buckets since April 2023
        (BucketOwnerEnforced, all four blocks on) unless the operator chose the older defaults;
        an ``ownership`` asked for at creation chooses for itself either way."""
        legacy = self.legacy_bucket_defaults
        if ownership is None:
            ownership = "" if legacy else BUCKET_OWNER_ENFORCED
        return BucketAccess(ownership=ownership, public_access_block=None if legacy else BLOCK_ALL)

    def block(self, bucket: BucketInfo) -> PublicAccessBlock:
        """The public access block in force on ``bucket``: its own and the server's."""
        own = bucket.public_access_block or BLOCK_NONE
        return own | (BLOCK_ALL if self.block_public_access else BLOCK_NONE)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessRequest:
    action: str  # an S3 action, e.g. "s3:GetObject"
    bucket: str
    key: str | None = None  # None: a bucket action
    context: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @property
    def resource(self) -> str:
        tail = "" if self.key is None else "/" + self.key
        return f"arn:aws:s3:::{self.bucket}{tail}"


def base_context(caller: Caller, *, source_ip: str, secure: bool) -> dict[str, list[str]]:
    """The global condition keys every request has, whichever door it came through."""
    now = time.time()
    context = {
        "aws:SourceIp": [source_ip],
        "aws:SecureTransport": ["true" if secure else "false"],
        "aws:CurrentTime": [datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")],
        "aws:EpochTime": [str(int(now))],
        "aws:PrincipalType": ["Anonymous" if caller.owner is None else "User"],
    }
    if caller.owner is not None:
        context["aws:userid"] = [caller.principal.access_key_id]
        context["aws:username"] = [caller.principal.name]
    return context


def check_grants(grants: Mapping[str, str]) -> dict[str, str]:
    """Validated grants (bucket -> level); InvalidArgument for an unknown level."""
    for bucket, level in grants.items():
        if level not in GRANT_LEVELS:
            raise InvalidArgument(
                f"Grant level for {bucket!r} must be read, write or readwrite.", resource=bucket
            )
    return dict(grants)


def authorize(
    caller: Caller,
    request: AccessRequest,
    bucket: BucketInfo,
    settings: AccessSettings,
    obj: ObjectAcl | None = None,
) -> None:
    """Raise AccessDenied unless ``caller`` may do ``request`` (ASK_OBJECT counts as a
    refusal: give ``obj`` where an object's ACL could matter)."""
    if decide(caller, request, bucket, settings, obj) is not Verdict.ALLOW:
        raise AccessDenied(resource=request.bucket if request.key is None else request.key)


def decide(
    caller: Caller,
    request: AccessRequest,
    bucket: BucketInfo,
    settings: AccessSettings,
    obj: ObjectAcl | None = None,
) -> Verdict:
    """The decision of AWS's evaluation order (module docstring); ASK_OBJECT when only the
    object's ACL (not given) could still allow."""
    action = request.action.lower()
    is_owner = caller.owner is not None and caller.owner.id == bucket.owner.id
    policy = bucket_policy(bucket)
    said = Decision.NONE if policy is None else evaluate(policy, _as_policy(caller, request))
    if said is Decision.DENY and not ((is_owner or caller.admin) and action in _LOCKOUT_PROOF):
        return Verdict.DENY
    if (
        caller.admin
        or (is_owner and not _objects_acl(request, bucket))
        or _granted(caller, bucket.name, action)
    ):
        return Verdict.ALLOW
    block = settings.block(bucket)
    restricted = block.restrict_public_buckets and policy is not None and is_public(policy)
    if said is Decision.ALLOW and not restricted:
        return Verdict.ALLOW
    return _acl_verdict(caller, request, bucket, block, obj)


def _objects_acl(request: AccessRequest, bucket: BucketInfo) -> bool:
    """Whether only the object's ACL decides, even for the bucket's owner: with ACLs on, an
    object another key wrote is that key's, and its owner's ACL says who may read it or its ACL
    (the bucket owner may still delete it, list it, or deny access by policy)."""
    action = request.action.lower()
    return bucket.acls_enabled and request.key is not None and action in OBJECT_ACL_ACTIONS


def _acl_verdict(
    caller: Caller,
    request: AccessRequest,
    bucket: BucketInfo,
    block: PublicAccessBlock,
    obj: ObjectAcl | None,
) -> Verdict:
    action = request.action.lower()
    if not bucket.acls_enabled:
        return Verdict.DENY
    if request.key is None or action not in OBJECT_ACL_ACTIONS:
        return _by_acl(caller, bucket.grants, _BUCKET_ACL_ACTIONS, action, block.ignore_public_acls)
    if obj is None:
        return Verdict.ASK_OBJECT
    if caller.owner is not None and caller.owner.id == obj.owner.id and action in _ACP_ACTIONS:
        return Verdict.ALLOW  # an object's owner may always read and change its ACL, as in S3
    return _by_acl(caller, obj.grants, _OBJECT_ACL_ACTIONS, action, block.ignore_public_acls)


def _granted(caller: Caller, bucket: str, action: str) -> bool:
    level = caller.grants.get(bucket)
    if level is None or action in _OWNER_ONLY:
        return False
    needed = "read" if action.startswith(_READ_PREFIXES) else "write"
    return needed in GRANT_LEVELS[level]


def _by_acl(
    caller: Caller,
    acl: Acl,
    actions: Mapping[str, frozenset[str]],
    action: str,
    ignore_public: bool,
) -> Verdict:
    for grant in acl:
        if grant.group and (ignore_public and grant.group in PUBLIC_GROUPS):
            continue
        if not _grantee(caller, grant.user, grant.group):
            continue
        # FULL_CONTROL is the four permissions together, nothing more (not DeleteBucket, not
        # the bucket's policy or its public access block: those stay the owner's).
        granted = (
            frozenset().union(*actions.values())
            if grant.permission == FULL_CONTROL
            else actions.get(grant.permission, frozenset())
        )
        if action in granted:
            return Verdict.ALLOW
    return Verdict.DENY


def _grantee(caller: Caller, user: Owner | None, group: str) -> bool:
    if user is not None:
        return caller.owner is not None and caller.owner.id == user.id
    return group == ALL_USERS or (group == AUTHENTICATED_USERS and caller.owner is not None)


def _as_policy(caller: Caller, request: AccessRequest) -> PolicyRequest:
    return PolicyRequest(
        principal=caller.principal,
        action=request.action,
        resource=request.resource,
        context=request.context,
    )


def bucket_policy(bucket: BucketInfo) -> Policy | None:
    return _parsed_policy(bucket.policy, bucket.name) if bucket.policy else None


@functools.lru_cache(maxsize=1024)
def _parsed_policy(text: str, bucket: str) -> Policy:
    # Policies were checked when they were put; parsing again per request would cost more
    # than the evaluation, and the text of a bucket's policy changes rarely.
    return parse_policy(text, bucket=bucket)


async def check_policy(
    text: str,
    bucket: BucketInfo,
    settings: AccessSettings,
    *,
    principal_exists: Callable[[str], Awaitable[bool]] | None,
) -> Policy:
    """A policy as PutBucketPolicy may set it: MalformedPolicy for anything the evaluator
    would not apply as written, a principal naming no key included; AccessDenied for a
    public policy under BlockPublicPolicy."""
    named: list[str] = []

    def collect(value: str) -> bool:  # checked below: key lookups are async
        named.append(value)
        return True

    policy = parse_policy(text, bucket=bucket.name, principal_exists=collect)
    for value in named:
        if principal_exists is None or not await principal_exists(value):
            raise MalformedPolicy("Invalid principal in policy")
    if settings.block(bucket).block_public_policy and is_public(policy):
        raise AccessDenied("Access Denied: public policies are blocked", resource=bucket.name)
    return policy


def is_public_acl(acl: Acl) -> bool:
    """Whether an ACL grants anything to AllUsers or AuthenticatedUsers (AWS's "public")."""
    return any(grant.group in PUBLIC_GROUPS for grant in acl)


def bucket_is_public(bucket: BucketInfo, settings: AccessSettings) -> bool:
    """GetBucketPolicyStatus's IsPublic: a public policy not blocked from taking effect."""
    policy = bucket_policy(bucket)
    block = settings.block(bucket)
    return policy is not None and is_public(policy) and not block.restrict_public_buckets


def visible(caller: Caller, buckets: Iterable[BucketInfo]) -> list[BucketInfo]:
    """The buckets a key sees in a bucket listing: all for admins, else its own and those it
    holds a grant on."""
    owner = caller.owner
    return [
        b
        for b in buckets
        if caller.admin or (owner is not None and b.owner.id == owner.id) or b.name in caller.grants
    ]
