"""Parses method + path + query into a typed S3 endpoint (path-style addressing).

A request naming a sub-resource we do not implement is refused with NotImplemented rather than
being served as the plain operation it resembles: a silent wrong success is the worst answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from multidict import MultiMapping

from lightningstor.errors import MethodNotAllowed, NotImplementedByServer

# Query parameters that modify an operation rather than select a sub-resource.
_LIST_PARAMS = frozenset(
    {
        "prefix",
        "delimiter",
        "marker",
        "max-keys",
        "encoding-type",
        "list-type",
        "continuation-token",
        "start-after",
        "fetch-owner",
        "x-id",
        "allow-unordered",
        "optional-object-attributes",
    }
)
_OBJECT_PARAMS = frozenset(
    {
        "x-id",
        "versionId",
        "response-content-type",
        "response-content-language",
        "response-expires",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
    }
)
_SERVICE_PARAMS = frozenset(
    {"x-id", "max-buckets", "continuation-token", "prefix", "bucket-region"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    operation: str
    bucket: str = ""
    key: str = ""


def route(method: str, path: str, query: MultiMapping[str]) -> Endpoint:
    """``path`` is the request path decoded once (``+`` stays a plus, ``//`` is kept)."""
    bucket, _, key = path.removeprefix("/").partition("/")
    if not bucket:
        _only(query, _SERVICE_PARAMS, "service")
        return _pick(method, {"GET": "ListBuckets"})
    if not key:
        return _bucket_endpoint(method, bucket, query)
    _only(query, _OBJECT_PARAMS, "object")
    operations = {
        "PUT": "PutObject",
        "GET": "GetObject",
        "HEAD": "HeadObject",
        "DELETE": "DeleteObject",
    }
    return _pick(method, operations, bucket=bucket, key=key)


def _bucket_endpoint(method: str, bucket: str, query: MultiMapping[str]) -> Endpoint:
    if method == "GET" and "location" in query:
        return Endpoint(operation="GetBucketLocation", bucket=bucket)
    _only(query, _LIST_PARAMS, "bucket")
    get = "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"
    operations = {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket", "GET": get}
    return _pick(method, operations, bucket=bucket)


def _only(query: MultiMapping[str], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(query) - allowed)
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
