"""The one gRPC mapping table, and what a client sees when something unexpected breaks."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import pytest

from lightningstor import errors
from lightningstor.v1 import storage_pb2 as pb
from lightningstor_server.grpc.errors import STATUS_BY_CODE
from tests.grpc.harness import BUCKETS, KEY_ID, SECRET, GrpcEnv, grpc_test, trailers

S = grpc.StatusCode


def core_error_classes() -> list[type[errors.StorageError]]:
    found: list[type[errors.StorageError]] = []
    pending: list[type[errors.StorageError]] = [errors.StorageError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__ == errors.__name__ and "code" in vars(cls):
            found.append(cls)
    return found


def test_every_core_error_code_has_a_status() -> None:
    missing = {cls.code for cls in core_error_classes()} - set(STATUS_BY_CODE)
    assert not missing, f"add these codes to lightningstor_server/grpc/errors.py: {missing}"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("NoSuchBucket", S.NOT_FOUND),
        ("NoSuchKey", S.NOT_FOUND),
        ("BucketAlreadyExists", S.ALREADY_EXISTS),
        ("BucketAlreadyOwnedByYou", S.ALREADY_EXISTS),
        ("BucketNotEmpty", S.FAILED_PRECONDITION),
        ("PreconditionFailed", S.FAILED_PRECONDITION),
        ("NotModified", S.FAILED_PRECONDITION),
        ("ConditionalRequestConflict", S.ABORTED),
        ("OperationAborted", S.ABORTED),
        ("InvalidBucketName", S.INVALID_ARGUMENT),
        ("InvalidArgument", S.INVALID_ARGUMENT),
        ("BadDigest", S.INVALID_ARGUMENT),
        ("InvalidDigest", S.INVALID_ARGUMENT),
        ("XAmzContentSHA256Mismatch", S.INVALID_ARGUMENT),
        ("IncompleteBody", S.INVALID_ARGUMENT),
        ("InvalidRange", S.OUT_OF_RANGE),
        ("InvalidAccessKeyId", S.UNAUTHENTICATED),
        ("SignatureDoesNotMatch", S.UNAUTHENTICATED),
        ("MissingSecurityHeader", S.UNAUTHENTICATED),
        ("AccessDenied", S.PERMISSION_DENIED),
        ("InsufficientStorage", S.RESOURCE_EXHAUSTED),
        ("EntityTooLarge", S.RESOURCE_EXHAUSTED),
        ("NotImplemented", S.UNIMPLEMENTED),
        ("InternalError", S.INTERNAL),
    ],
)
def test_table(code: str, status: grpc.StatusCode) -> None:
    assert STATUS_BY_CODE[code] == status


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
    assert "outcome=OK" in line
    assert f"key_id={KEY_ID}" in line
    assert SECRET not in line
