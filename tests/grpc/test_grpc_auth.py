"""Every call is authenticated; health checking is not."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lightningstor import errors
from lightningstor.auth.credentials import Credential
from lightningstor.client import call_metadata
from lightningstor.model import Owner, derived_canonical_id
from lightningstor.v1 import storage_pb2 as pb
from lightningstor.wire import sign_call, verify_call
from lightningstor_server.grpc.auth import Caller, ReplayGuard, authenticate, current_caller
from tests.grpc.harness import BUCKETS, KEY_ID, OBJECTS, SECRET, GrpcEnv, expect_status, grpc_test

LIST = BUCKETS + "ListBuckets"


async def list_buckets(env: GrpcEnv, metadata: Any) -> Any:
    return await env.buckets.ListBuckets(pb.ListBucketsRequest(), metadata=metadata)


@grpc_test
async def test_signed_call_passes(env: GrpcEnv) -> None:
    reply = await list_buckets(env, env.signed(LIST))
    assert list(reply.buckets) == []


@grpc_test
async def test_no_token(env: GrpcEnv) -> None:
    call = list_buckets(env, None)
    await expect_status(call, grpc.StatusCode.UNAUTHENTICATED, "MissingSecurityHeader")
    partial = [pair for pair in env.signed(LIST) if pair[0] != "x-ls-signature"]
    call = list_buckets(env, partial)
    await expect_status(call, grpc.StatusCode.UNAUTHENTICATED, "MissingSecurityHeader")


@grpc_test
async def test_bad_signature(env: GrpcEnv) -> None:
    call = list_buckets(env, call_metadata(KEY_ID, "wrong-secret-0123456789", LIST))
    await expect_status(call, grpc.StatusCode.UNAUTHENTICATED, "SignatureDoesNotMatch")
    not_hex = [(k, "zz" if k == "x-ls-signature" else v) for k, v in env.signed(LIST)]
    call = list_buckets(env, not_hex)
    await expect_status(call, grpc.StatusCode.UNAUTHENTICATED, "SignatureDoesNotMatch")


@grpc_test
async def test_token_signed_for_another_method(env: GrpcEnv) -> None:
    """A token binds its method: one captured for a listing cannot delete."""
    call = env.buckets.DeleteBucket(pb.DeleteBucketRequest(name="x"), metadata=env.signed(LIST))
    await expect_status(call, grpc.StatusCode.UNAUTHENTICATED, "SignatureDoesNotMatch")


@grpc_test
async def test_unknown_key(env: GrpcEnv) -> None:
    call = list_buckets(env, call_metadata("LSUNKNOWNKEY00000000", SECRET, LIST))
    await expect_status(call, grpc.StatusCode.UNAUTHENTICATED, "InvalidAccessKeyId")


@grpc_test
@pytest.mark.parametrize("skew", [-301, 301])
async def test_stale_or_future_timestamp(env: GrpcEnv, skew: int) -> None:
    metadata = call_metadata(KEY_ID, SECRET, LIST, timestamp=int(time.time()) + skew)
    call = list_buckets(env, metadata)
    await expect_status(call, grpc.StatusCode.UNAUTHENTICATED, "RequestTimeTooSkewed")


@grpc_test
async def test_malformed_timestamp(env: GrpcEnv) -> None:
    metadata = [(k, "yesterday" if k == "x-ls-timestamp" else v) for k, v in env.signed(LIST)]
    call = list_buckets(env, metadata)
    await expect_status(call, grpc.StatusCode.UNAUTHENTICATED, "AuthorizationHeaderMalformed")


@grpc_test
async def test_streaming_calls_are_authenticated_too(env: GrpcEnv) -> None:
    await env.store.create_bucket("bkt", owner=Owner("test"))

    async def messages() -> Any:
        yield pb.WriteObjectRequest(spec=pb.WriteSpec(bucket="bkt", key="k"), finish_write=True)

    call = env.objects.WriteObject(messages())
    await expect_status(call, grpc.StatusCode.UNAUTHENTICATED, "MissingSecurityHeader")
    with pytest.raises(errors.NoSuchKey):
        await env.store.head_object("bkt", "k")

    await env.store.put_object("bkt", "k", _body(b"secret"))
    read = env.objects.ReadObject(pb.ReadObjectRequest(bucket="bkt", key="k"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in read:
            raise AssertionError("an unauthenticated read received data")
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


@grpc_test
async def test_health_is_open(env: GrpcEnv) -> None:
    stub = health_pb2_grpc.HealthStub(env.channel)
    for service in ("", "lightningstor.v1.BucketService", "lightningstor.v1.ObjectService"):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


@grpc_test
async def test_unknown_method_is_unimplemented(env: GrpcEnv) -> None:
    nope = env.channel.unary_unary(
        OBJECTS + "Nope", request_serializer=bytes, response_deserializer=bytes
    )
    call = nope(b"", metadata=env.signed(OBJECTS + "Nope"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def _body(data: bytes) -> Any:
    yield data


def _credential(*, active: bool) -> Credential:
    return Credential(
        access_key_id=KEY_ID, secret_access_key=SECRET, name="t", admin=False, active=active
    )


def test_disabled_key_is_refused_like_an_unknown_one() -> None:
    async def lookup(key_id: str) -> Credential | None:
        return _credential(active=False)

    metadata = call_metadata(KEY_ID, SECRET, LIST)
    with pytest.raises(errors.InvalidAccessKeyId):
        asyncio.run(
            authenticate(LIST, metadata, lookup=lookup, now=time.time(), replays=ReplayGuard())
        )


def test_authenticate_names_the_caller() -> None:
    async def lookup(key_id: str) -> Credential | None:
        return _credential(active=True) if key_id == KEY_ID else None

    metadata = call_metadata(KEY_ID, SECRET, LIST, timestamp=1_000_000)
    replays = ReplayGuard()
    caller = asyncio.run(
        authenticate(LIST, metadata, lookup=lookup, now=1_000_299, replays=replays)
    )
    assert caller == Caller(
        access_key_id=KEY_ID,
        admin=False,
        canonical_id=derived_canonical_id(KEY_ID),
        name=caller.name,
    )
    assert SECRET not in repr(caller)
    # The same token a second time is a replay, refused even within the window.
    with pytest.raises(errors.AccessDenied):
        asyncio.run(authenticate(LIST, metadata, lookup=lookup, now=1_000_299, replays=replays))


@grpc_test
async def test_a_sniffed_token_cannot_be_replayed(env: GrpcEnv) -> None:
    async with env.client() as ls:
        await ls.create_bucket("replay")
        await ls.put_object("replay", "victim", b"keep me")
    metadata = env.signed(OBJECTS + "DeleteObject")
    request = pb.DeleteObjectRequest(bucket="replay", key="other")
    await env.objects.DeleteObject(request, metadata=metadata)
    victim = pb.DeleteObjectRequest(bucket="replay", key="victim")
    await expect_status(
        env.objects.DeleteObject(victim, metadata=metadata),
        grpc.StatusCode.PERMISSION_DENIED,
        "AccessDenied",
    )
    async with env.client() as ls:
        assert await ls.get_object("replay", "victim") == b"keep me"


def test_no_caller_outside_an_authenticated_call() -> None:
    with pytest.raises(errors.AccessDenied):
        current_caller()


def test_the_proto_documents_a_signing_vector_that_holds() -> None:
    """Other languages implement call signing from the .proto's comment alone: its test
    vector must be what the server verifies."""
    root = Path(__file__).resolve().parents[2]
    proto = (root / "proto/lightningstor/v1/storage.proto").read_text()
    comment = " ".join(
        line.removeprefix("//").strip() for line in proto.splitlines() if line.startswith("//")
    )
    vector = (
        r'secret "(\S+)", method "(\S+)", timestamp "(\d+)", nonce "([0-9a-f]{32})" '
        r'sign as "([0-9a-f]{64})"'
    )
    found = re.search(vector, comment)
    assert found is not None, "the test vector is not in the proto's comment"
    secret, method, timestamp, nonce, signature = found.groups()
    assert verify_call(secret, method, int(timestamp), nonce, signature)
    assert sign_call(secret, method, int(timestamp), nonce) == signature
