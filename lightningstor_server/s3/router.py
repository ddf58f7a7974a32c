"""Parses method + path + query (+ the one header that changes an operation) into an endpoint.

A request naming a sub-resource we do not implement is refused with NotImplemented rather than
being served as the plain operation it resembles: a silent wrong success is the worst answer.
So is any parameter an operation does not take: nothing in a query is ignored, but the
SDKs' ``x-id`` label and the authentication parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from multidict import MultiMapping

from lightningstor.errors import InvalidArgument, InvalidBucketName, InvalidRequest
from lightningstor_server.s3.errors import MethodNotAllowed, NotImplementedByServer
from lightningstor_server.s3.params import Params, check_numbers, parse_params
from lightningstor_server.s3.presign import AUTH_QUERY_PARAMETERS, is_query_header

# Query parameters that modify an operation rather than select a sub-resource.
_LIST_PARAMS = frozenset(
    {
        "prefix", "delimiter", "marker", "max-keys", "encoding-type", "list-type",
        "continuation-token", "start-after", "fetch-owner", "allow-unordered",
        "optional-object-attributes", "key-marker", "version-id-marker", "upload-id-marker",
        "max-uploads",
    }
)  # fmt: skip
_OBJECT_PARAMS = frozenset(
    {
        "versionId", "partNumber", "uploadId", "part-number-marker", "max-parts",
        "response-content-type", "response-content-language",
        "response-expires", "response-cache-control", "response-content-disposition",
        "response-content-encoding",
    }
)  # fmt: skip
_SERVICE_PARAMS = frozenset({"max-buckets", "continuation-token", "prefix", "bucket-region"})
# botocore and other SDKs add this to some requests to name the operation; it selects nothing.
_IGNORED = frozenset({"x-id", *AUTH_QUERY_PARAMETERS})

# Bucket configurations we keep none of: reads answer as AWS does for a bucket without one.
BUCKET_CONFIGURATIONS = frozenset(
    {
        "versioning", "acl", "tagging", "cors", "lifecycle", "policy", "encryption",
        "object-lock", "website", "replication", "logging", "notification", "accelerate",
        "requestPayment", "ownershipControls", "publicAccessBlock", "policyStatus",
    }
)  # fmt: skip
_BUCKET_LISTINGS = {"versions": "ListObjectVersions", "uploads": "ListMultipartUploads"}
# Parameters whose value is a number, and how S3 words its refusal of one that is not.
_NUMBER_PARAMS = {
    "partNumber": "Part number must be an integer between 1 and 10000, inclusive",
    "part-number-marker": "Provided part-number-marker not an integer or within integer range",
    "max-parts": "Provided max-parts not an integer or within integer range",
    "max-keys": "Provided max-keys not an integer or within integer range",
    "max-uploads": "Provided max-uploads not an integer or within integer range",
    "max-buckets": "Provided max-buckets not an integer or within integer range",
}
_OBJECT_READS = {
    "tagging": "GetObjectTagging",
    "acl": "GetObjectAcl",
    "attributes": "GetObjectAttributes",
    "retention": "GetObjectRetention",
    "legal-hold": "GetObjectLegalHold",
}
_OBJECT_WRITES = {
    "retention": "PutObjectRetention",
    "legal-hold": "PutObjectLegalHold",
    "acl": "PutObjectAcl",
    "tagging": "PutObjectTagging",
}
_OBJECT_DELETES = {"tagging": "DeleteObjectTagging"}
# Bucket configurations we keep, by (method, sub-resource).
_BUCKET_SETTINGS = {
    ("GET", "versioning"): "GetBucketVersioning",
    ("PUT", "versioning"): "PutBucketVersioning",
    ("GET", "object-lock"): "GetObjectLockConfiguration",
    ("PUT", "object-lock"): "PutObjectLockConfiguration",
    ("GET", "acl"): "GetBucketAcl",
    ("PUT", "acl"): "PutBucketAcl",
    ("GET", "policy"): "GetBucketPolicy",
    ("PUT", "policy"): "PutBucketPolicy",
    ("DELETE", "policy"): "DeleteBucketPolicy",
    ("GET", "policyStatus"): "GetBucketPolicyStatus",
    ("GET", "publicAccessBlock"): "GetPublicAccessBlock",
    ("PUT", "publicAccessBlock"): "PutPublicAccessBlock",
    ("DELETE", "publicAccessBlock"): "DeletePublicAccessBlock",
    ("GET", "ownershipControls"): "GetBucketOwnershipControls",
    ("PUT", "ownershipControls"): "PutBucketOwnershipControls",
    ("DELETE", "ownershipControls"): "DeleteBucketOwnershipControls",
    ("GET", "tagging"): "GetBucketTagging",
    ("PUT", "tagging"): "PutBucketTagging",
    ("DELETE", "tagging"): "DeleteBucketTagging",
    ("GET", "lifecycle"): "GetBucketLifecycleConfiguration",
    ("PUT", "lifecycle"): "PutBucketLifecycleConfiguration",
    ("DELETE", "lifecycle"): "DeleteBucketLifecycle",
}
# The IAM action (bucket policies name these) each operation needs, where it is not its own
# name; a version-specific request needs the action's "Version" form (ACTION_OF_VERSION).
_ACTIONS = {
    "HeadObject": "s3:GetObject",
    "HeadBucket": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "ListParts": "s3:ListMultipartUploadParts",
    "CopyObject": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "UploadPartCopy": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "PostObject": "s3:PutObject",
    "DeleteObjects": "s3:DeleteObject",
    "ListBuckets": "s3:ListAllMyBuckets",
    "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "DeleteBucketOwnershipControls": "s3:PutBucketOwnershipControls",
    "GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
    "PutObjectLockConfiguration": "s3:PutBucketObjectLockConfiguration",
    "GetObjectAttributes": "s3:GetObjectAttributes",
    "DeleteBucketTagging": "s3:PutBucketTagging",
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "DeleteBucketLifecycle": "s3:PutLifecycleConfiguration",
}
_VERSION_ACTIONS = {
    "s3:GetObject": "s3:GetObjectVersion",
    "s3:DeleteObject": "s3:DeleteObjectVersion",
    "s3:GetObjectAcl": "s3:GetObjectVersionAcl",
    "s3:PutObjectAcl": "s3:PutObjectVersionAcl",
    "s3:GetObjectTagging": "s3:GetObjectVersionTagging",
    "s3:PutObjectTagging": "s3:PutObjectVersionTagging",
    "s3:DeleteObjectTagging": "s3:DeleteObjectVersionTagging",
    "s3:GetObjectAttributes": "s3:GetObjectVersionAttributes",
}
# Bucket sub-resources read by GetBucketConfiguration, by the action that reads each.
_CONFIGURATION_ACTIONS = {
    "cors": "s3:GetBucketCORS",
    "lifecycle": "s3:GetLifecycleConfiguration",
    "encryption": "s3:GetEncryptionConfiguration",
    "website": "s3:GetBucketWebsite",
    "replication": "s3:GetReplicationConfiguration",
    "logging": "s3:GetBucketLogging",
    "notification": "s3:GetBucketNotification",
    "accelerate": "s3:GetAccelerateConfiguration",
    "requestPayment": "s3:GetBucketRequestPayment",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """What a request asks for, and what it needs: everything after routing reads this."""

    operation: str
    bucket: str = ""
    key: str = ""
    subresource: str = ""
    # The IAM action the caller needs on ``bucket`` (or its object ``key``); a copy also needs
    # s3:GetObject on its source, ``params.copy_source``.
    action: str = ""
    params: Params = dataclasses.field(default_factory=Params)


def route(method: str, path: str, query: MultiMapping[str], headers: Mapping[str, str]) -> Endpoint:
    """``path`` and ``query`` come from the one parse of the target (``target.py``): the path
    in path-style form, decoded once (``+`` stays a plus, ``//`` is kept)."""
    check_numbers(query, _NUMBER_PARAMS)
    endpoint = _endpoint(method, path, query, headers)
    return dataclasses.replace(
        endpoint,
        action=action_of(endpoint.operation, endpoint.subresource, "versionId" in query),
        params=parse_params(endpoint.operation, query, headers),
    )


def action_of(operation: str, subresource: str, versioned: bool) -> str:
    """The IAM action an operation needs (S3's "Actions, resources and condition keys")."""
    if operation == "GetBucketConfiguration":
        action = _CONFIGURATION_ACTIONS.get(subresource, "s3:GetBucketAcl")
    else:
        action = _ACTIONS.get(operation, "s3:" + operation)
    return _VERSION_ACTIONS.get(action, action) if versioned else action


def _endpoint(
    method: str, path: str, query: MultiMapping[str], headers: Mapping[str, str]
) -> Endpoint:
    bucket, _, key = path.removeprefix("/").partition("/")
    if not bucket and key:  # "//k": a key in no bucket
        raise InvalidBucketName("The request names an object but no bucket.", resource="")
    if not bucket:
        _only(_names(query), _SERVICE_PARAMS, "service")
        return _pick(method, {"GET": "ListBuckets"})
    if not key:
        return _bucket_endpoint(method, bucket, query)
    return _object_endpoint(method, bucket, key, query, headers)


def _names(query: MultiMapping[str]) -> set[str]:
    """The parameters that select or modify an operation: not the authentication ones, the
    SDKs' x-id label, or headers carried in the query (applied as headers)."""
    return {name for name in query if name not in _IGNORED and not is_query_header(name)}


def _bucket_endpoint(method: str, bucket: str, query: MultiMapping[str]) -> Endpoint:
    names = _names(query)
    if method == "GET" and "location" in names:
        _only(names - {"location"}, frozenset(), "bucket")
        return Endpoint(operation="GetBucketLocation", bucket=bucket)
    if method == "POST" and "delete" in names:
        _only(names - {"delete"}, frozenset(), "bucket")
        return Endpoint(operation="DeleteObjects", bucket=bucket)
    if method == "POST" and not names:
        return Endpoint(operation="PostObject", bucket=bucket)
    configuration = names & BUCKET_CONFIGURATIONS
    if configuration:
        return _configuration_endpoint(method, bucket, names, min(configuration))
    for name, operation in _BUCKET_LISTINGS.items():
        if name in names and method == "GET":
            _only(names - {name}, _LIST_PARAMS, "bucket")
            return Endpoint(operation=operation, bucket=bucket)
    _only(names, _LIST_PARAMS, "bucket")
    list_type = query.get("list-type")
    if list_type not in (None, "2"):
        # Only "2" means anything; anything else would quietly be the other listing (and
        # SigV2 does not sign list-type, so the value must not choose between the two).
        raise InvalidArgument("Invalid list type specified", resource="list-type")
    get = "ListObjectsV2" if list_type == "2" else "ListObjects"
    operations = {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket", "GET": get}
    return _pick(method, operations, bucket=bucket)


def _object_endpoint(
    method: str, bucket: str, key: str, query: MultiMapping[str], headers: Mapping[str, str]
) -> Endpoint:
    names = _names(query)
    if method == "POST" and "uploads" in names:
        _only(names - {"uploads"}, _OBJECT_PARAMS, "object")
        return Endpoint(operation="CreateMultipartUpload", bucket=bucket, key=key)
    for name, read in _OBJECT_READS.items():
        operation = {
            "GET": read,
            "PUT": _OBJECT_WRITES.get(name),
            "DELETE": _OBJECT_DELETES.get(name),
        }.get(method)
        if name in names and operation is not None:
            _only(names - {name}, _OBJECT_PARAMS, "object")
            return Endpoint(operation=operation, bucket=bucket, key=key, subresource=name)
    _only(names, _OBJECT_PARAMS, "object")
    copying = "x-amz-copy-source" in headers
    if "uploadId" in names:
        part = "UploadPartCopy" if copying else "UploadPart"
        operations = {
            "PUT": part,
            "POST": "CompleteMultipartUpload",
            "DELETE": "AbortMultipartUpload",
            "GET": "ListParts",
        }
        endpoint = _pick(method, operations, bucket=bucket, key=key)
        if endpoint.operation.startswith("UploadPart") != ("partNumber" in names):
            raise InvalidRequest("partNumber goes with uploadId on UploadPart, and only there.")
        return endpoint
    put = "CopyObject" if copying else "PutObject"
    operations = {"PUT": put, "GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}
    if "partNumber" in names and method not in ("GET", "HEAD"):
        raise InvalidRequest("partNumber on a write needs an uploadId.", resource="partNumber")
    return _pick(method, operations, bucket=bucket, key=key)


def _configuration_endpoint(method: str, bucket: str, names: set[str], name: str) -> Endpoint:
    _only(names - {name}, frozenset(), "bucket")
    setting = _BUCKET_SETTINGS.get((method, name))
    if setting is not None:
        return Endpoint(operation=setting, bucket=bucket, subresource=name)
    if method != "GET":
        raise NotImplementedByServer(
            f"Setting the bucket {name} configuration is not implemented.", resource=name
        )
    return Endpoint(operation="GetBucketConfiguration", bucket=bucket, subresource=name)


def _only(names: set[str], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(names - allowed)
    if unknown:
        raise NotImplementedByServer(
            f"The {where} sub-resource or parameter '{unknown[0]}' is not implemented.",
            resource=unknown[0],
        )


def _pick(method: str, operations: dict[str, str], *, bucket: str = "", key: str = "") -> Endpoint:
    operation = operations.get(method)
    if operation is None:
        raise MethodNotAllowed()
    return Endpoint(operation=operation, bucket=bucket, key=key)
