"""Who may call what: one table of gRPC method -> the S3 actions it needs, on what.

The auth interceptor applies it to each call's request (for a streamed request, its first
message, which carries the spec) after verifying the caller and before the servicer runs, so
no servicer checks access itself and a method without a rule is refused: closed by default.
Each action is decided by the same core as S3's (``objects/gatekeeper.py``): a gRPC caller is
a key like any other, under the same bucket policies, ACLs and grants.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lightningstor.auth.access import AccessRequest, base_context
from lightningstor.errors import AccessDenied
from lightningstor.objects.gatekeeper import Gatekeeper
from lightningstor.v1 import admin_pb2, storage_pb2

if TYPE_CHECKING:  # auth.py applies this table, so it cannot be imported from here
    from lightningstor_server.grpc.auth import Caller

audit = logging.getLogger("lightningstor.audit")


@dataclass(frozen=True, slots=True)
class Ask:
    """One action a call needs: on ``bucket``, or its object ``key``."""

    action: str
    bucket: str
    key: str | None = None
    version_id: str | None = None
    context: tuple[tuple[str, str], ...] = ()  # the call's own condition keys (s3:prefix, ...)


# The actions a request needs, read from the request message.
Asks = Callable[[Any], tuple[Ask, ...]]


@dataclass(frozen=True, slots=True)
class Needs:
    asks: Asks = lambda _message: ()
    admin: bool = False
    creates: bool = False  # CreateBucket: may the caller create (and own) buckets


def _bucket(action: str, field: str = "bucket") -> Needs:
    return Needs(lambda message: (Ask(action, getattr(message, field)),))


def _object(action: str, version_action: str | None = None) -> Needs:
    def asks(message: Any) -> tuple[Ask, ...]:
        version = getattr(message, "version_id", "") or None
        chosen = version_action if version and version_action else action
        return (Ask(chosen, message.bucket, message.key or None, version),)

    return Needs(asks)


def _spec(action: str) -> Needs:
    """For a streamed write, whose first message names the bucket in its spec (a first message
    without one is the servicer's InvalidArgument)."""

    def asks(message: Any) -> tuple[Ask, ...]:
        if message.WhichOneof("payload") != "spec":
            return ()
        return (Ask(action, message.spec.bucket, message.spec.key or None),)

    return Needs(asks)


def _listing(action: str) -> Needs:
    def asks(message: Any) -> tuple[Ask, ...]:
        context = (
            ("s3:prefix", getattr(message, "prefix", "")),
            ("s3:delimiter", getattr(message, "delimiter", "")),
        )
        return (Ask(action, message.bucket, context=tuple((k, v) for k, v in context if v)),)

    return Needs(asks)


def _copy(message: Any) -> tuple[Ask, ...]:
    return (
        Ask("s3:GetObject", message.source_bucket, message.source_key or None),
        Ask("s3:PutObject", message.bucket, message.key or None),
    )


ADMIN = Needs(admin=True)
EVERY_CALLER = Needs()  # ListBuckets: every caller, shown only the buckets it may see

_BY_SERVICE: dict[str, dict[str, Needs]] = {
    "BucketService": {
        "CreateBucket": Needs(creates=True),
        "GetBucket": _bucket("s3:ListBucket", "name"),
        "DeleteBucket": _bucket("s3:DeleteBucket", "name"),
        "ListBuckets": EVERY_CALLER,
        "SetBucketVersioning": _bucket("s3:PutBucketVersioning", "name"),
        "SetObjectLockConfiguration": _bucket("s3:PutBucketObjectLockConfiguration", "name"),
        # Deleting a configuration is a Put, as in S3 (there is no s3:Delete... action for it).
        "SetBucketLifecycle": _bucket("s3:PutLifecycleConfiguration"),
        "GetBucketLifecycle": _bucket("s3:GetLifecycleConfiguration"),
        "DeleteBucketLifecycle": _bucket("s3:PutLifecycleConfiguration"),
        "SetBucketTagging": _bucket("s3:PutBucketTagging"),
        "GetBucketTagging": _bucket("s3:GetBucketTagging"),
        "DeleteBucketTagging": _bucket("s3:PutBucketTagging"),
    },
    "ObjectService": {
        "WriteObject": _spec("s3:PutObject"),
        "ReadObject": _object("s3:GetObject", "s3:GetObjectVersion"),
        "HeadObject": _object("s3:GetObject", "s3:GetObjectVersion"),
        "DeleteObject": _object("s3:DeleteObject", "s3:DeleteObjectVersion"),
        "CopyObject": Needs(_copy),
        "ListObjects": _listing("s3:ListBucket"),
        "ListObjectVersions": _listing("s3:ListBucketVersions"),
        "SetObjectRetention": _object("s3:PutObjectRetention"),
        "SetObjectLegalHold": _object("s3:PutObjectLegalHold"),
        "SetObjectTagging": _object("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
        "GetObjectAttributes": _object("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"),
    },
    "MultipartService": {
        "CreateMultipartUpload": _object("s3:PutObject"),
        "UploadPart": _spec("s3:PutObject"),
        "CompleteMultipartUpload": _object("s3:PutObject"),
        "AbortMultipartUpload": _object("s3:AbortMultipartUpload"),
        "ListParts": _object("s3:ListMultipartUploadParts"),
        "ListMultipartUploads": _listing("s3:ListBucketMultipartUploads"),
    },
    "AdminService": {
        method.name: ADMIN
        for method in admin_pb2.DESCRIPTOR.services_by_name["AdminService"].methods
    },
}
_PACKAGES = {
    name: descriptor.package
    for descriptor in (storage_pb2.DESCRIPTOR, admin_pb2.DESCRIPTOR)
    for name in descriptor.services_by_name
}
NEEDS: dict[str, Needs] = {
    f"/{_PACKAGES[service]}.{service}/{method}": needs
    for service, methods in _BY_SERVICE.items()
    for method, needs in methods.items()
}


async def enforce(method: str, caller: Caller, message: Any, gatekeeper: Gatekeeper) -> None:
    """Raise AccessDenied (or NoSuchBucket, NoSuchKey) unless ``caller`` may make this call
    with ``message``."""
    needs = NEEDS.get(method)
    if needs is None:
        raise AccessDenied("This method has no access rule, so nobody may call it.")
    if needs.admin and not caller.admin:
        audit.warning("method=%s by=%s refused=not-admin", method, caller.access_key_id)
        raise AccessDenied("This call needs an admin key.")
    core = caller.core
    if needs.creates:
        gatekeeper.may_create(core)
    for ask in needs.asks(message):
        context = {}
        if await gatekeeper.has_policy(ask.bucket):  # condition keys only matter to a policy
            context = {
                **base_context(core, source_ip=caller.source_ip, secure=caller.secure),
                **{k: [v] for k, v in ask.context},
            }
        access = AccessRequest(action=ask.action, bucket=ask.bucket, key=ask.key, context=context)
        await gatekeeper.check(core, access, ask.version_id)
