"""Authorization of an S3 request: which IAM actions it needs on what, and the condition keys
a bucket policy may test, given to the core's gatekeeper (``objects/gatekeeper.py``)."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from multidict import CIMultiDictProxy

from lightningstor.auth.access import AccessRequest, Caller, base_context
from lightningstor.errors import AccessDenied, StorageError
from lightningstor.model import BucketInfo
from lightningstor.objects.gatekeeper import Gatekeeper
from lightningstor_server.s3.router import Endpoint
from lightningstor_server.s3.tagging import header_tags
from lightningstor_server.s3.target import RequestTarget

# Headers a policy may test as s3: condition keys, by the key's name (the header's).
_HEADER_KEYS = (
    "x-amz-acl",
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
    "x-amz-copy-source",
    "x-amz-metadata-directive",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-storage-class",
    "x-amz-content-sha256",
    "x-amz-object-ownership",
)
_LIST_KEYS = ("prefix", "delimiter", "max-keys")
# Operations checked per key by their handler (DeleteObjects names its keys in its body).
_PER_KEY = frozenset({"DeleteObjects"})


async def authorize(
    request: web.Request,
    endpoint: Endpoint,
    caller: Caller,
    gatekeeper: Gatekeeper,
    *,
    target: RequestTarget,
    headers: CIMultiDictProxy[str],
) -> None:
    """Raise AccessDenied (or NoSuchBucket/NoSuchKey: see objects/gatekeeper.py) unless
    ``caller`` may do what ``endpoint`` asks, and read a copy's source."""
    if not endpoint.bucket:  # ListBuckets: every key lists what it may see
        if caller.owner is None:
            raise AccessDenied()
        return
    if endpoint.operation == "CreateBucket":
        gatekeeper.may_create(caller)
        return
    source = endpoint.params.copy_source
    names = (endpoint.bucket,) if source is None else (endpoint.bucket, source[0])
    policed = await gatekeeper.has_policy(*names)
    context = condition_context(request, target, headers, caller) if policed else {}
    if endpoint.operation in _PER_KEY:
        bucket = await gatekeeper.bucket(endpoint.bucket)
    else:
        access = AccessRequest(
            action=endpoint.action,
            bucket=endpoint.bucket,
            key=endpoint.key or None,
            context=context,
        )
        bucket = await gatekeeper.check(caller, access, endpoint.params.version_id)
    _expected_owner(headers.get("x-amz-expected-bucket-owner"), bucket)
    if source is not None:
        version = endpoint.params.copy_source_version
        action = "s3:GetObject" if version is None else "s3:GetObjectVersion"
        read = AccessRequest(action=action, bucket=source[0], key=source[1], context=context)
        source_bucket = await gatekeeper.check(caller, read, version)
        _expected_owner(headers.get("x-amz-source-expected-bucket-owner"), source_bucket)


def _expected_owner(expected: str | None, bucket: BucketInfo) -> None:
    """x-amz-expected-bucket-owner: a request meant for someone else's bucket is refused, as
    S3 refuses it (so a recreated name cannot receive data meant for the old bucket)."""
    if expected is not None and expected != bucket.owner.id:
        raise AccessDenied(resource=bucket.name)


def condition_context(
    request: web.Request,
    target: RequestTarget,
    headers: Mapping[str, str],
    caller: Caller,
) -> dict[str, list[str]]:
    """The condition keys of a request ("Condition keys for Amazon S3" and the IAM global
    condition keys), those that apply to it; absent keys stay absent."""
    context = base_context(caller, source_ip=request.remote or "", secure=request.secure)
    for name in ("User-Agent", "Referer"):
        if name in headers:
            context["aws:" + name.replace("-", "")] = [headers[name]]
    for name in _HEADER_KEYS:
        if name in headers:
            context["s3:" + name] = [headers[name]]
    query = target.query
    for name in _LIST_KEYS:
        if name in query:
            context["s3:" + name] = [query[name]]
    if "versionId" in query:
        context["s3:VersionId"] = [query["versionId"]]
    return context | _request_tags(headers)


def _request_tags(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """s3:RequestObjectTag/<key> and s3:RequestObjectTagKeys, from x-amz-tagging."""
    try:
        tags = header_tags(headers)
    except StorageError:
        return {}  # the handler refuses the header; the policy sees no tags
    if not tags:
        return {}
    context = {f"s3:RequestObjectTag/{k}": [v] for k, v in tags.items()}
    return context | {"s3:RequestObjectTagKeys": list(tags)}
