"""The router's typed endpoint: the operation, what it needs, its parameters parsed once."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from multidict import MultiDict, MultiDictProxy

from lightningstor import errors
from lightningstor_server.s3.params import Params
from lightningstor_server.s3.router import Endpoint, route


def endpoint_of(method: str, target: str, headers: dict[str, str] | None = None) -> Endpoint:
    path, _, query = target.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    return route(method, path, MultiDictProxy(MultiDict(pairs)), headers or {})


@pytest.mark.parametrize(
    ("method", "target", "operation", "action"),
    [
        ("GET", "/", "ListBuckets", "s3:ListAllMyBuckets"),
        ("PUT", "/b", "CreateBucket", "s3:CreateBucket"),
        ("DELETE", "/b", "DeleteBucket", "s3:DeleteBucket"),
        ("HEAD", "/b", "HeadBucket", "s3:ListBucket"),
        ("GET", "/b?location", "GetBucketLocation", "s3:GetBucketLocation"),
        ("GET", "/b?list-type=2", "ListObjectsV2", "s3:ListBucket"),
        ("GET", "/b?versions", "ListObjectVersions", "s3:ListBucketVersions"),
        ("GET", "/b?uploads", "ListMultipartUploads", "s3:ListBucketMultipartUploads"),
        ("GET", "/b?versioning", "GetBucketVersioning", "s3:GetBucketVersioning"),
        ("GET", "/b?acl", "GetBucketAcl", "s3:GetBucketAcl"),
        ("PUT", "/b?policy", "PutBucketPolicy", "s3:PutBucketPolicy"),
        ("DELETE", "/b?policy", "DeleteBucketPolicy", "s3:DeleteBucketPolicy"),
        ("GET", "/b?policyStatus", "GetBucketPolicyStatus", "s3:GetBucketPolicyStatus"),
        ("DELETE", "/b?publicAccessBlock", "DeletePublicAccessBlock",
         "s3:PutBucketPublicAccessBlock"),
        ("PUT", "/b?ownershipControls", "PutBucketOwnershipControls",
         "s3:PutBucketOwnershipControls"),
        ("GET", "/b?cors", "GetBucketConfiguration", "s3:GetBucketCORS"),
        ("POST", "/b?delete", "DeleteObjects", "s3:DeleteObject"),
        ("GET", "/b/k", "GetObject", "s3:GetObject"),
        ("GET", "/b/k?versionId=null", "GetObject", "s3:GetObjectVersion"),
        ("HEAD", "/b/k", "HeadObject", "s3:GetObject"),
        ("PUT", "/b/k", "PutObject", "s3:PutObject"),
        ("PUT", "/b/k?acl", "PutObjectAcl", "s3:PutObjectAcl"),
        ("DELETE", "/b/k", "DeleteObject", "s3:DeleteObject"),
        ("DELETE", "/b/k?versionId=null", "DeleteObject", "s3:DeleteObjectVersion"),
        ("GET", "/b/k?tagging", "GetObjectTagging", "s3:GetObjectTagging"),
        ("GET", "/b/k?attributes", "GetObjectAttributes", "s3:GetObjectAttributes"),
        ("POST", "/b/k?uploads", "CreateMultipartUpload", "s3:PutObject"),
        ("GET", "/b/k?uploadId=u", "ListParts", "s3:ListMultipartUploadParts"),
        ("POST", "/b/k?uploadId=u", "CompleteMultipartUpload", "s3:PutObject"),
        ("DELETE", "/b/k?uploadId=u", "AbortMultipartUpload", "s3:AbortMultipartUpload"),
    ],
)  # fmt: skip
def test_each_endpoint_names_the_action_it_needs(
    method: str, target: str, operation: str, action: str
) -> None:
    endpoint = endpoint_of(method, target)
    assert (endpoint.operation, endpoint.action) == (operation, action)


def test_parameters_are_parsed_into_the_endpoint() -> None:
    part = endpoint_of("PUT", "/b/k?partNumber=7&uploadId=u-1")
    assert part.params == Params(part_number=7, upload_id="u-1")
    copy = endpoint_of(
        "PUT", "/b/k?partNumber=2&uploadId=u", {"x-amz-copy-source": "/src/a%2Bb%20c"}
    )
    assert copy.params.copy_source == ("src", "a+b c")
    listing = endpoint_of("GET", "/b/k?uploadId=u&max-parts=5&part-number-marker=3")
    assert listing.params == Params(upload_id="u", max_parts=5, part_number_marker=3)
    assert endpoint_of("GET", "/b?max-keys=20000").params.max_keys == 1000
    assert endpoint_of("GET", "/").params.max_buckets == 10_000


@pytest.mark.parametrize(
    ("method", "target", "headers", "resource"),
    [
        ("PUT", "/b/k?partNumber=0&uploadId=u", {}, "partNumber"),
        ("PUT", "/b/k?partNumber=%C2%B2&uploadId=u", {}, "partNumber"),
        ("GET", "/b/k?partNumber=10001", {}, "partNumber"),
        ("GET", "/b?max-keys=" + "9" * 5000, {}, "max-keys"),
        ("GET", "/?max-buckets=10001", {}, "max-buckets"),
        ("PUT", "/b/k", {"x-amz-copy-source": "no-key"}, "x-amz-copy-source"),
        ("PUT", "/b/k", {"x-amz-copy-source": "b/k?versionId=v1"}, "x-amz-copy-source"),
    ],
)
def test_bad_parameters_are_refused_by_the_router(
    method: str, target: str, headers: dict[str, str], resource: str
) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        endpoint_of(method, target, headers)
    assert caught.value.resource == resource
