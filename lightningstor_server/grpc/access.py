"""Who may call what: one table of gRPC method -> the access it needs.

The auth interceptor applies it to each call's request (for a streamed request, its first
message, which carries the spec) after verifying the caller and before the servicer runs, so
no servicer checks access itself and a method without a rule is refused: closed by default.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lightningstor.auth.access import Access, authorize
from lightningstor.errors import AccessDenied
from lightningstor.v1 import admin_pb2, storage_pb2

if TYPE_CHECKING:  # auth.py applies this table, so it cannot be imported from here
    from lightningstor_server.grpc.auth import Caller

audit = logging.getLogger("lightningstor.audit")

# (bucket, access) pairs a request needs, read from the request message.
Buckets = Callable[[Any], tuple[tuple[str, Access], ...]]


@dataclass(frozen=True, slots=True)
class Needs:
    buckets: Buckets = lambda _message: ()
    admin: bool = False


def _field(name: str, access: Access) -> Needs:
    return Needs(lambda message: ((getattr(message, name), access),))


def _spec(access: Access) -> Needs:
    """For a streamed write, whose first message names the bucket in its spec (a first message
    without one is the servicer's InvalidArgument)."""

    def buckets(message: Any) -> tuple[tuple[str, Access], ...]:
        if message.WhichOneof("payload") != "spec":
            return ()
        return ((message.spec.bucket, access),)

    return Needs(buckets)


def _copy(message: Any) -> tuple[tuple[str, Access], ...]:
    return ((message.source_bucket, Access.READ), (message.bucket, Access.WRITE))


READ, WRITE = Access.READ, Access.WRITE
ADMIN = Needs(admin=True)
EVERY_CALLER = Needs()  # ListBuckets: every caller, shown only the buckets it is granted

_BY_SERVICE: dict[str, dict[str, Needs]] = {
    "BucketService": {
        "CreateBucket": _field("name", WRITE),
        "GetBucket": _field("name", READ),
        "DeleteBucket": _field("name", WRITE),
        "ListBuckets": EVERY_CALLER,
        "SetBucketVersioning": _field("name", WRITE),
        "SetObjectLockConfiguration": _field("name", WRITE),
    },
    "ObjectService": {
        "WriteObject": _spec(WRITE),
        "ReadObject": _field("bucket", READ),
        "HeadObject": _field("bucket", READ),
        "DeleteObject": _field("bucket", WRITE),
        "CopyObject": Needs(_copy),
        "ListObjects": _field("bucket", READ),
        "ListObjectVersions": _field("bucket", READ),
        # A version's lock is a write, as S3's PutObjectRetention and PutObjectLegalHold are.
        "SetObjectRetention": _field("bucket", WRITE),
        "SetObjectLegalHold": _field("bucket", WRITE),
    },
    "MultipartService": {
        "CreateMultipartUpload": _field("bucket", WRITE),
        "UploadPart": _spec(WRITE),
        "CompleteMultipartUpload": _field("bucket", WRITE),
        "AbortMultipartUpload": _field("bucket", WRITE),
        "ListParts": _field("bucket", READ),
        "ListMultipartUploads": _field("bucket", READ),
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


def enforce(method: str, caller: Caller, message: Any) -> None:
    """Raise AccessDenied unless ``caller`` may make this call with ``message``."""
    needs = NEEDS.get(method)
    if needs is None:
        raise AccessDenied("This method has no access rule, so nobody may call it.")
    if needs.admin and not caller.admin:
        audit.warning("method=%s by=%s refused=not-admin", method, caller.access_key_id)
        raise AccessDenied("This call needs an admin key.")
    for bucket, access in needs.buckets(message):
        authorize(admin=caller.admin, grants=caller.grants, bucket=bucket, access=access)
