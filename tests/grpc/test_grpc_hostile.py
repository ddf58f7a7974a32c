"""Hostile and malformed input to the gRPC door: every call ends with the right status, the
server keeps serving, and what was stored before is still there, byte for byte, afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from lightningstor import errors
from lightningstor.model import Owner
from lightningstor.v1 import storage_pb2 as pb
from tests.grpc.harness import OBJECTS, GrpcEnv, MiB, expect_status, grpc_test

BUCKET = "hostile"
KEEP_KEY = "keep/me"
KEEP = bytes(range(256)) * 1024 * 3  # 768 KiB, read back after every abuse


async def store_keeper(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    async with env.client() as client:
        await client.put_object(BUCKET, KEEP_KEY, KEEP)


async def assert_intact(env: GrpcEnv) -> None:
    """The server still answers a signed call, and the object stored first is unchanged."""
    async with env.client() as client:
        assert await client.get_object(BUCKET, KEEP_KEY) == KEEP
    assert env.staged_files() == []


async def settled_staging(env: GrpcEnv) -> None:
    """A cancelled call reaches the client before the server has cleaned up after it."""
    for _ in range(100):
        if not env.staged_files():
            return
        await asyncio.sleep(0.02)
    assert env.staged_files() == []


def _write_spec(key: str) -> pb.WriteObjectRequest:
    return pb.WriteObjectRequest(spec=pb.WriteSpec(bucket=BUCKET, key=key), write_offset=0)


# --- gRPC's own 4 MiB message limit -------------------------------------------------------------
@grpc_test
async def test_unary_message_over_the_limit_is_resource_exhausted(env: GrpcEnv) -> None:
    await store_keeper(env)
    request = pb.HeadObjectRequest(bucket=BUCKET, key="k" * (5 * MiB))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.objects.HeadObject(request, metadata=env.signed(OBJECTS + "HeadObject"))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    await assert_intact(env)


@grpc_test
async def test_streamed_message_over_the_limit_leaves_the_old_object(env: GrpcEnv) -> None:
    await store_keeper(env)

    async def messages() -> AsyncIterator[pb.WriteObjectRequest]:
        yield _write_spec(KEEP_KEY)
        yield pb.WriteObjectRequest(data=b"a" * MiB, write_offset=0)
        yield pb.WriteObjectRequest(data=b"b" * (5 * MiB), write_offset=MiB)

    call = env.objects.WriteObject(messages(), metadata=env.signed(OBJECTS + "WriteObject"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    await settled_staging(env)
    await assert_intact(env)


# --- streams that never finish ------------------------------------------------------------------
@grpc_test
async def test_cancelled_endless_write_stores_nothing(env: GrpcEnv) -> None:
    await store_keeper(env)
    staged = asyncio.Event()

    async def endless() -> AsyncIterator[pb.WriteObjectRequest]:
        yield _write_spec(KEEP_KEY)  # would replace the keeper if it ever finished
        offset = 0
        for _ in range(3):
            yield pb.WriteObjectRequest(data=b"z" * MiB, write_offset=offset)
            offset += MiB
        staged.set()
        await asyncio.Event().wait()  # neither more data nor finish_write: ever

    call = env.objects.WriteObject(endless(), metadata=env.signed(OBJECTS + "WriteObject"))
    await staged.wait()
    for _ in range(100):  # the server is staging the body in <data>/tmp
        if env.staged_files():
            break
        await asyncio.sleep(0.02)
    assert env.staged_files() != []
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await settled_staging(env)
    await assert_intact(env)


@grpc_test
async def test_write_stream_of_only_a_spec_stores_nothing(env: GrpcEnv) -> None:
    await store_keeper(env)

    async def only_spec() -> AsyncIterator[pb.WriteObjectRequest]:
        yield _write_spec("never")

    call = env.objects.WriteObject(only_spec(), metadata=env.signed(OBJECTS + "WriteObject"))
    await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "IncompleteBody")
    with pytest.raises(errors.NoSuchKey):
        await env.store.head_object(BUCKET, "never")
    await assert_intact(env)


# --- bytes that are not the message the method expects ------------------------------------------
GARBAGE = [
    b"\xff" * 64,  # field 31, wire type 7: no such wire type
    b"\x0a\xff\xff\xff\xff\x0f",  # a length-delimited field longer than the message
    b"\x0a\x02\xff\xfe",  # field 1 (bucket, a string) holding invalid UTF-8
    b"\x08",  # a tag with no value
]


@pytest.mark.parametrize("payload", GARBAGE, ids=["wire-type", "overlong", "utf8", "truncated"])
@grpc_test
async def test_garbage_unary_request(env: GrpcEnv, payload: bytes) -> None:
    await store_keeper(env)
    method = OBJECTS + "HeadObject"
    raw = env.channel.unary_unary(
        method,
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    # Parsed inside the door's error mapping (wrapping.py), not by grpc.aio before it, which
    # would answer UNKNOWN with the parser's exception text.
    call = raw(payload, metadata=env.signed(method))
    await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
    await assert_intact(env)


@grpc_test
async def test_garbage_in_a_write_stream(env: GrpcEnv) -> None:
    await store_keeper(env)
    method = OBJECTS + "WriteObject"
    raw = env.channel.stream_unary(
        method,
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    spec = _write_spec(KEEP_KEY).SerializeToString()

    async def messages() -> AsyncIterator[bytes]:
        yield spec
        yield pb.WriteObjectRequest(data=b"x" * 1000, write_offset=0).SerializeToString()
        yield b"\xff" * 64

    call = raw(messages(), metadata=env.signed(method))
    await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
    await settled_staging(env)
    await assert_intact(env)


@grpc_test
async def test_unknown_method_is_unimplemented(env: GrpcEnv) -> None:
    await store_keeper(env)
    method = OBJECTS + "FormatTheDisk"
    raw = env.channel.unary_unary(
        method,
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw(b"", metadata=env.signed(method))
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    await assert_intact(env)


# --- read ranges no client should send ----------------------------------------------------------
INT64_MAX = 2**63 - 1


@pytest.mark.parametrize(
    "fields",
    [
        {"read_offset": -1},
        {"read_offset": -(2**63)},
        {"read_limit": -1},
        {"read_offset": 5, "read_limit": -(2**63)},
        {"suffix_length": -1},
        {"suffix_length": 1, "read_limit": 1},
    ],
    ids=["offset-1", "offset-min", "limit-1", "limit-min", "suffix-1", "suffix-and-limit"],
)
@grpc_test
async def test_malformed_read_is_invalid_argument(env: GrpcEnv, fields: dict[str, Any]) -> None:
    await store_keeper(env)
    request = pb.ReadObjectRequest(bucket=BUCKET, key=KEEP_KEY, **fields)

    async def read_all() -> None:
        call = env.objects.ReadObject(request, metadata=env.signed(OBJECTS + "ReadObject"))
        async for _ in call:
            pass

    await expect_status(read_all(), grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
    await assert_intact(env)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"read_offset": INT64_MAX}, None),
        ({"read_offset": INT64_MAX, "read_limit": INT64_MAX}, None),
        ({"read_offset": 10, "read_limit": INT64_MAX}, KEEP[10:]),
        ({"suffix_length": INT64_MAX}, KEEP),
    ],
    ids=["offset-max", "offset-and-limit-max", "limit-max", "suffix-max"],
)
@grpc_test
async def test_extreme_read_bounds(
    env: GrpcEnv, fields: dict[str, Any], expected: bytes | None
) -> None:
    """The largest int64 values either clamp to the object's end or are OUT_OF_RANGE."""
    await store_keeper(env)
    request = pb.ReadObjectRequest(bucket=BUCKET, key=KEEP_KEY, **fields)

    async def read_all() -> bytes:
        call = env.objects.ReadObject(request, metadata=env.signed(OBJECTS + "ReadObject"))
        return b"".join([reply.data async for reply in call])

    if expected is None:
        await expect_status(read_all(), grpc.StatusCode.OUT_OF_RANGE, "InvalidRange")
    else:
        assert await read_all() == expected
    await assert_intact(env)


# --- keys the keyspace cannot hold --------------------------------------------------------------
@grpc_test
async def test_nul_in_a_key_is_invalid_argument(env: GrpcEnv) -> None:
    await store_keeper(env)

    async def messages() -> AsyncIterator[pb.WriteObjectRequest]:
        yield _write_spec("a\0b")
        yield pb.WriteObjectRequest(data=b"x", write_offset=0)
        yield pb.WriteObjectRequest(write_offset=1, finish_write=True)

    call = env.objects.WriteObject(messages(), metadata=env.signed(OBJECTS + "WriteObject"))
    await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
    await assert_intact(env)
