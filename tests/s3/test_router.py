"""The router's typed endpoint: the operation, what it needs, its parameters parsed once."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from multidict import MultiDict, MultiDictProxy

from lightningstor import errors
from lightningstor.auth.access import Access
from lightningstor_server.s3.params import Params
from lightningstor_server.s3.router import Endpoint, route

R, W = Access.READ, Access.WRITE


def endpoint_of(method: str, target: str, headers: dict[str, str] | None = None) -> Endpoint:
    path, _, query = target.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    return route(method, path, MultiDictProxy(MultiDict(pairs)), headers or {})


@pytest.mark.parametrize(
    ("method", "target", "operation", "access"),
    [
        ("GET", "/", "ListBuckets", None),
        ("PUT", "/b", "CreateBucket", W),
        ("DELETE", "/b", "DeleteBucket", W),
        ("HEAD", "/b", "HeadBucket", R),
        ("GET", "/b?location", "GetBucketLocation", R),
        ("GET", "/b?list-type=2", "ListObjectsV2", R),
        ("GET", "/b?uploads", "ListMultipartUploads", R),
        ("GET", "/b?versioning", "GetBucketVersioning", R),
        ("POST", "/b?delete", "DeleteObjects", W),
        ("GET", "/b/k", "GetObject", R),
        ("HEAD", "/b/k", "HeadObject", R),
        ("PUT", "/b/k", "PutObject", W),
        ("DELETE", "/b/k", "DeleteObject", W),
        ("GET", "/b/k?tagging", "GetObjectTagging", R),
        ("GET", "/b/k?attributes", "GetObjectAttributes", R),
        ("POST", "/b/k?uploads", "CreateMultipartUpload", W),
        ("GET", "/b/k?uploadId=u", "ListParts", R),
        ("POST", "/b/k?uploadId=u", "CompleteMultipartUpload", W),
        ("DELETE", "/b/k?uploadId=u", "AbortMultipartUpload", W),
    ],
)
def test_each_endpoint_names_the_access_it_needs(
    method: str, target: str, operation: str, access: Access | None
) -> None:
    endpoint = endpoint_of(method, target)
    assert (endpoint.operation, endpoint.access) == (operation, access)


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
