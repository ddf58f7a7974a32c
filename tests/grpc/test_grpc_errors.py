"""The one gRPC mapping table, and what a client sees when something unexpected breaks."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import pytest

from lightningstor import errors
from lightningstor.v1 import storage_pb2 as pb
from lightningstor_server.grpc.errors import status_of
from lightningstor_server.s3 import errors as s3_errors
from lightningstor_server.s3.errors import status_of as http_status_of
from tests.grpc.harness import BUCKETS, KEY_ID, SECRET, GrpcEnv, grpc_test, trailers

S = grpc.StatusCode


def core_error_classes() -> list[type[errors.StorageError]]:
    found: list[type[errors.StorageError]] = []
    pending: list[type[errors.StorageError]] = [errors.StorageError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__ == errors.__name__:
            found.append(cls)
    return found


def instance(cls: type[errors.StorageError]) -> errors.StorageError:
    if cls is errors.InvalidRange:
        return errors.InvalidRange(size=0)
    if cls is errors.NoSuchConfiguration:
        return errors.NoSuchConfiguration("NoSuchTagSet", "The TagSet does not exist")
    if cls is errors.NotModified:
        return errors.NotModified(resource="k", etag="e", mtime_ns=0)
    if cls is errors.IsDeleteMarker:
        return errors.IsDeleteMarker("0000000000000000")
    return cls()


def test_every_error_class_resolves_in_both_tables() -> None:
    """By class: each error gets its family's status or its own; only InternalError (and the
    base class) is INTERNAL / 500."""
    for cls in core_error_classes():
        internal = cls in (errors.InternalError, errors.StorageError) or issubclass(
            cls, errors.InternalError
        )
        assert (status_of(instance(cls)) == S.INTERNAL) == internal, cls
        assert (http_status_of(instance(cls)) == 500) == internal, cls


def test_the_s3_only_errors_carry_their_status_beside_their_code() -> None:
    """The errors only S3 has live in the S3 door, each naming its own HTTP status."""
    moved = [
        c
        for c in vars(s3_errors).values()
        if isinstance(c, type) and c.__module__ == s3_errors.__name__
    ]
    s3_only = [c for c in moved if issubclass(c, s3_errors.S3Error) and c is not s3_errors.S3Error]
    assert len(s3_only) == 12
    for cls in s3_only:
        assert "code" in vars(cls) and "http_status" in vars(cls), cls
        assert http_status_of(cls()) == cls.http_status
        assert not hasattr(errors, cls.__name__), f"{cls.__name__} is in the core too"
    statuses = {cls.code: cls.http_status for cls in s3_only}
    assert statuses["MissingContentLength"] == 411
    assert statuses["MethodNotAllowed"] == 405
    assert statuses["NotImplemented"] == 501
    assert statuses["MalformedXML"] == 400


@pytest.mark.parametrize(
    ("error", "status", "http"),
    [
        (errors.NoSuchBucket(), S.NOT_FOUND, 404),
        (errors.NoSuchKey(), S.NOT_FOUND, 404),
        (errors.NoSuchConfiguration("NoSuchTagSet", "none"), S.NOT_FOUND, 404),
        (errors.BucketAlreadyExists(), S.ALREADY_EXISTS, 409),
        (errors.BucketAlreadyOwnedByYou(), S.ALREADY_EXISTS, 409),
        (errors.BucketNotEmpty(), S.FAILED_PRECONDITION, 409),
        (errors.LastAdminKey(), S.FAILED_PRECONDITION, 409),
        (errors.PreconditionFailed(), S.FAILED_PRECONDITION, 412),
        (errors.NotModified(resource="k", etag="e", mtime_ns=0), S.FAILED_PRECONDITION, 304),
        (errors.ConditionalRequestConflict(), S.ABORTED, 409),
        (errors.OperationAborted(), S.ABORTED, 409),
        (errors.InvalidBucketName(), S.INVALID_ARGUMENT, 400),
        (errors.InvalidArgument(), S.INVALID_ARGUMENT, 400),
        (errors.BadDigest(), S.INVALID_ARGUMENT, 400),
        (errors.ContentSHA256Mismatch(), S.INVALID_ARGUMENT, 400),
        (errors.IncompleteBody(), S.INVALID_ARGUMENT, 400),
        (errors.InvalidRange(size=3), S.OUT_OF_RANGE, 416),
        (errors.InvalidPartNumber(), S.OUT_OF_RANGE, 416),
        (errors.InvalidAccessKeyId(), S.UNAUTHENTICATED, 403),
        (errors.SignatureDoesNotMatch(), S.UNAUTHENTICATED, 403),
        (errors.AuthorizationHeaderMalformed(), S.UNAUTHENTICATED, 400),
        (errors.MissingSecurityHeader(), S.UNAUTHENTICATED, 400),
        (errors.AccessDenied(), S.PERMISSION_DENIED, 403),
        (errors.InsufficientStorage(), S.RESOURCE_EXHAUSTED, 507),
        (errors.EntityTooLarge(), S.RESOURCE_EXHAUSTED, 400),
        (errors.SlowDown(), S.UNAVAILABLE, 503),
        (errors.InternalError(), S.INTERNAL, 500),
    ],
)
def test_tables(error: errors.StorageError, status: grpc.StatusCode, http: int) -> None:
    assert (status_of(error), http_status_of(error)) == (status, http)


@grpc_test
async def test_unexpected_exception_is_internal_without_details(
    env: GrpcEnv, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken() -> list[object]:
        raise RuntimeError("leveldb said: password=hunter2")

    monkeypatch.setattr(env.store, "list_buckets", broken)
    with (
        caplog.at_level(logging.ERROR, logger="lightningstor.grpc"),
        pytest.raises(grpc.aio.AioRpcError) as caught,
    ):
        await env.buckets.ListBuckets(
            pb.ListBucketsRequest(), metadata=env.signed(BUCKETS + "ListBuckets")
        )
    error = caught.value
    details = error.details() or ""
    assert error.code() == S.INTERNAL
    assert details.startswith("InternalError: ")
    assert "hunter2" not in details and "Traceback" not in details
    request_id = trailers(error)["x-ls-request-id"]
    assert request_id in details
    assert trailers(error)["x-ls-error-code"] == "InternalError"
    [record] = [r for r in caplog.records if request_id in r.getMessage()]
    assert record.exc_info is not None  # the traceback goes to the log, with the id to find it
    assert "hunter2" in str(record.exc_info[1])


@grpc_test
async def test_every_refusal_carries_a_request_id(env: GrpcEnv) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.buckets.GetBucket(
            pb.GetBucketRequest(name="nope"), metadata=env.signed(BUCKETS + "GetBucket")
        )
    assert len(trailers(caught.value)["x-ls-request-id"]) == 16


@grpc_test
async def test_every_call_is_logged_under_the_id_its_client_receives(
    env: GrpcEnv, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="lightningstor.grpc"):
        call = env.buckets.ListBuckets(
            pb.ListBucketsRequest(), metadata=env.signed(BUCKETS + "ListBuckets")
        )
        await call
        pairs: Any = await call.trailing_metadata()
    request_id = dict(pairs)["x-ls-request-id"]
    [line] = [r.getMessage() for r in caplog.records if request_id in r.getMessage()]
    assert "method=/lightningstor.v1.BucketService/ListBuckets" in line
    assert "op=ListBuckets status=ok code=-" in line
    assert f"key_id={KEY_ID}" in line
    assert SECRET not in line
