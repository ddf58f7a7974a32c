"""ACLs as S3 keeps them: canned ACLs, who owns what a write creates, and which ACLs a bucket
accepts (its Object Ownership and its public access block decide).

Both doors build an ACL from what a request carries and ask here whether it may be set.
"""

from __future__ import annotations

from lightningstor.auth.access import AccessSettings, is_public_acl
from lightningstor.errors import (
    AccessControlListNotSupported,
    AccessDenied,
    InvalidArgument,
    InvalidBucketAclWithObjectOwnership,
)
from lightningstor.model import (
    ALL_USERS,
    AUTHENTICATED_USERS,
    BUCKET_OWNER_ENFORCED,
    BUCKET_OWNER_PREFERRED,
    FULL_CONTROL,
    LOG_DELIVERY,
    READ,
    READ_ACP,
    WRITE,
    Acl,
    BucketInfo,
    Grant,
    Owner,
    owner_acl,
)

BUCKET_OWNER_FULL_CONTROL = "bucket-owner-full-control"
CANNED_ACLS = frozenset(
    {
        "private",
        "public-read",
        "public-read-write",
        "authenticated-read",
        "aws-exec-read",
        "bucket-owner-read",
        BUCKET_OWNER_FULL_CONTROL,
        "log-delivery-write",
    }
)


def canned_acl(name: str, *, owner: Owner, bucket_owner: Owner) -> Acl:
    """The grants a canned ACL stands for ("Canned ACL" in the S3 user guide); InvalidArgument
    for a name S3 does not define. aws-exec-read's EC2 grant has no grantee here."""
    if name not in CANNED_ACLS:
        raise InvalidArgument(f"Unknown canned ACL {name!r}.", resource="x-amz-acl")
    extra: dict[str, tuple[Grant, ...]] = {
        "public-read": (Grant(permission=READ, group=ALL_USERS),),
        "public-read-write": (
            Grant(permission=READ, group=ALL_USERS),
            Grant(permission=WRITE, group=ALL_USERS),
        ),
        "authenticated-read": (Grant(permission=READ, group=AUTHENTICATED_USERS),),
        "bucket-owner-read": (Grant(permission=READ, user=bucket_owner),),
        BUCKET_OWNER_FULL_CONTROL: (Grant(permission=FULL_CONTROL, user=bucket_owner),),
        "log-delivery-write": (
            Grant(permission=WRITE, group=LOG_DELIVERY),
            Grant(permission=READ_ACP, group=LOG_DELIVERY),
        ),
    }
    # bucket-owner-* name the owner twice when the writer owns the bucket: once is enough.
    return tuple(dict.fromkeys(owner_acl(owner) + extra.get(name, ())))


def written_owner(bucket: BucketInfo, writer: Owner | None, canned: str | None) -> Owner:
    """Who owns a new object (S3 Object Ownership): the bucket owner when enforced, or
    preferred and given bucket-owner-full-control, or when nobody signed; else the writer."""
    if writer is None or bucket.ownership == BUCKET_OWNER_ENFORCED:
        return bucket.owner
    if bucket.ownership == BUCKET_OWNER_PREFERRED and canned == BUCKET_OWNER_FULL_CONTROL:
        return bucket.owner
    return writer


def settable_acl(
    bucket: BucketInfo,
    acl: Acl | None,
    settings: AccessSettings,
    *,
    canned: str | None = None,
    on_bucket: bool = False,
) -> Acl | None:
    """The ACL to store (None: the owner's full control), or AWS's refusal: with ACLs disabled
    only bucket-owner-full-control (canned, or as grants) is accepted, and stored as nothing
    ("Troubleshooting" of S3 Object Ownership); a public ACL is refused under BlockPublicAcls."""
    if acl is None:
        return None
    if not bucket.acls_enabled:
        named_other = canned is not None and canned != BUCKET_OWNER_FULL_CONTROL
        if named_other or not owner_only(acl, bucket.owner):
            raise AccessControlListNotSupported(resource=bucket.name)
        return None
    if settings.block(bucket).block_public_acls and is_public_acl(acl):
        raise AccessDenied(
            "Access Denied: public ACLs are blocked"
            + (" on this bucket." if on_bucket else " in this bucket."),
            resource=bucket.name,
        )
    return acl


def owner_only(acl: Acl, owner: Owner) -> bool:
    """Whether ``acl`` grants nothing but full control to ``owner``."""
    return all(
        g.permission == FULL_CONTROL and g.user is not None and g.user.id == owner.id for g in acl
    )


def check_ownership_change(bucket: BucketInfo, ownership: str) -> None:
    """BucketOwnerEnforced needs a bucket ACL that grants only its owner (AWS's
    InvalidBucketAclWithObjectOwnership)."""
    if ownership == BUCKET_OWNER_ENFORCED and not owner_only(bucket.grants, bucket.owner):
        raise InvalidBucketAclWithObjectOwnership(resource=bucket.name)


def visible_acl(acl: Acl | None, owner: Owner) -> Acl:
    """The grants GetBucketAcl/GetObjectAcl show: with ACLs disabled or none set, the owner's
    full control. Group grants come first, as RGW lists them (clients read them by position)."""
    grants = acl if acl is not None else owner_acl(owner)
    return tuple(sorted(grants, key=lambda g: not g.group))
