"""WriteObject over a real channel: the stream protocol and everything that must store nothing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import zlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import pytest

from lightningstor import errors
from lightningstor.model import Owner
from lightningstor.objects import limits
from lightningstor.v1 import storage_pb2 as pb
from tests.grpc.harness import OBJECTS, GrpcEnv, MiB, expect_status, grpc_test

Message = pb.WriteObjectRequest
BUCKET = "bkt"


def spec(key: str = "obj", **fields: Any) -> Message:
    return Message(spec=pb.WriteSpec(bucket=BUCKET, key=key, **fields), write_offset=0)


def data_messages(payload: bytes, *, chunk: int = MiB, finish: bool = True) -> list[Message]:
    messages = [
        Message(data=payload[i : i + chunk], write_offset=i) for i in range(0, len(payload), chunk)
    ]
    if finish:
        messages.append(Message(write_offset=len(payload), finish_write=True))
    return messages


async def stream(messages: Sequence[Message]) -> AsyncIterator[Message]:
    for message in messages:
        yield message


async def write(env: GrpcEnv, messages: Sequence[Message]) -> pb.WriteObjectResponse:
    reply: pb.WriteObjectResponse = await env.objects.WriteObject(
        stream(messages), metadata=env.signed(OBJECTS + "WriteObject")
    )
    return reply


async def assert_nothing_stored(env: GrpcEnv, key: str = "obj", *, settle: bool = False) -> None:
    """No object, and no staged file left in <data>/tmp.

    A refused write cleans up before its status is sent, so the check is immediate. A call that
    ends by cancellation (the client's, or grpc's own for an oversized message) reaches the
    client first and the server's clean-up a moment later: ``settle`` waits for it.
    """
    with pytest.raises(errors.NoSuchKey):
        await env.store.head_object(BUCKET, key)
    for _ in range(100 if settle else 0):
        if not env.staged_files():
            break
        await asyncio.sleep(0.02)
    assert env.staged_files() == []


@grpc_test
async def test_round_trip_of_a_multi_chunk_object(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    payload = bytes(range(256)) * (5 * MiB // 256) + b"tail"
    crc = base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
    reply = await write(
        env,
        [
            spec(
                key="dir/blob.bin",
                headers=pb.ContentHeaders(content_type="application/x-test", cache_control="no"),
                metadata={"Color": "blue", "owner": "me"},
                checksums={"crc32": crc},
                size=len(payload),
            ),
            *data_messages(payload, chunk=2 * MiB),
        ],
    )
    written = reply.object
    assert (written.bucket, written.key, written.size) == (BUCKET, "dir/blob.bin", len(payload))
    assert written.etag == hashlib.md5(payload).hexdigest()
    assert written.headers.content_type == "application/x-test"
    assert written.headers.cache_control == "no"
    assert dict(written.metadata) == {"color": "blue", "owner": "me"}  # names stored lowercase
    assert written.checksums["crc32"] == crc

    chunks = []
    first = None
    call = env.objects.ReadObject(
        pb.ReadObjectRequest(bucket=BUCKET, key="dir/blob.bin"),
        metadata=env.signed(OBJECTS + "ReadObject"),
    )
    async for reply_part in call:
        if first is None:
            first = reply_part
        assert len(reply_part.data) <= 2 * MiB
        chunks.append(reply_part.data)
    assert b"".join(chunks) == payload
    assert first is not None
    assert first.metadata == written
    assert (first.content_range.start, first.content_range.end) == (0, len(payload) - 1)
    assert first.content_range.complete_length == len(payload)
    assert env.staged_files() == []


@grpc_test
async def test_empty_object_and_default_content_type(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    first = spec()
    first.finish_write = True  # the spec alone may finish the stream
    reply = await write(env, [first])
    assert reply.object.size == 0
    assert reply.object.etag == hashlib.md5(b"").hexdigest()
    assert reply.object.headers.content_type == "binary/octet-stream"


@grpc_test
async def test_wrong_checksum_is_bad_digest(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    wrong = base64.b64encode(zlib.crc32(b"other").to_bytes(4, "big")).decode()
    call = write(env, [spec(checksums={"crc32": wrong}), *data_messages(b"payload")])
    await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "BadDigest")
    await assert_nothing_stored(env)


@grpc_test
async def test_unsupported_checksum_algorithm(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    call = write(env, [spec(checksums={"md5": "xxx"}), *data_messages(b"payload")])
    await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "InvalidRequest")
    await assert_nothing_stored(env)


@grpc_test
@pytest.mark.parametrize("declared", [6, 8])
async def test_wrong_size_is_incomplete_body(env: GrpcEnv, declared: int) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    call = write(env, [spec(size=declared), *data_messages(b"payload")])
    await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "IncompleteBody")
    await assert_nothing_stored(env)


@grpc_test
@pytest.mark.parametrize("offset", [0, 3, 100])
async def test_bad_write_offset(env: GrpcEnv, offset: int) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    messages = [
        spec(),
        Message(data=b"abc", write_offset=0),
        Message(data=b"def", write_offset=offset if offset != 3 else 4),
        Message(write_offset=6, finish_write=True),
    ]
    call = write(env, messages)
    error = await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
    assert "write_offset" in (error.details() or "")
    await assert_nothing_stored(env)


@grpc_test
async def test_spec_with_nonzero_offset(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    first = spec()
    first.write_offset = 5
    call = write(env, [first, *data_messages(b"payload")])
    await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
    await assert_nothing_stored(env)


@grpc_test
async def test_first_message_must_be_the_spec(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    call = write(env, data_messages(b"payload"))
    error = await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
    assert "spec" in (error.details() or "")
    await expect_status(write(env, []), grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
    await assert_nothing_stored(env)


@grpc_test
async def test_second_spec_is_refused(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    second = spec()
    call = write(env, [spec(), Message(data=b"abc", write_offset=0), second])
    await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
    await assert_nothing_stored(env)


@grpc_test
async def test_oversized_chunk(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    call = write(env, [spec(), *data_messages(b"x" * (2 * MiB + 1), chunk=2 * MiB + 1)])
    error = await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
    assert str(2 * MiB) in (error.details() or "")
    await assert_nothing_stored(env)


@grpc_test
async def test_stream_ending_without_finish_stores_nothing(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    payload = b"z" * (3 * MiB)
    call = write(env, [spec(), *data_messages(payload, finish=False)])
    await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "IncompleteBody")
    await assert_nothing_stored(env)


@grpc_test
async def test_client_cancelling_mid_stream_stores_nothing(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    sent = asyncio.Event()

    async def endless() -> AsyncIterator[Message]:
        yield spec()
        yield Message(data=b"a" * MiB, write_offset=0)
        sent.set()
        await asyncio.Event().wait()  # never finishes

    call = env.objects.WriteObject(endless(), metadata=env.signed(OBJECTS + "WriteObject"))
    await sent.wait()
    for _ in range(1000):  # until the server is staging the first chunk
        if env.staged_files():
            break
        await asyncio.sleep(0.01)
    assert env.staged_files()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await assert_nothing_stored(env, settle=True)


@grpc_test
async def test_conditional_writes(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    created = await write(env, [spec(if_none_match="*"), *data_messages(b"one")])
    call = write(env, [spec(if_none_match="*"), *data_messages(b"two")])
    await expect_status(call, grpc.StatusCode.FAILED_PRECONDITION, "PreconditionFailed")
    call = write(env, [spec(if_match="0" * 32), *data_messages(b"two")])
    await expect_status(call, grpc.StatusCode.FAILED_PRECONDITION, "PreconditionFailed")
    call = write(env, [spec(key="absent", if_match="0" * 32), *data_messages(b"two")])
    await expect_status(call, grpc.StatusCode.NOT_FOUND, "NoSuchKey")
    replaced = await write(env, [spec(if_match=created.object.etag), *data_messages(b"two")])
    assert replaced.object.etag == hashlib.md5(b"two").hexdigest()
    assert env.staged_files() == []


@grpc_test
async def test_bad_keys_and_metadata(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    call = write(env, [spec(key="k" * 1025), *data_messages(b"x")])
    await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "KeyTooLongError")
    call = write(env, [spec(key=""), *data_messages(b"x")])
    await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
    call = write(env, [spec(metadata={"bad name": "v"}), *data_messages(b"x")])
    await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
    call = write(env, [spec(metadata={"a": "x\r\nInjected: yes"}), *data_messages(b"x")])
    await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
    call = write(env, [spec(metadata={"A": "1", "a": "2"}), *data_messages(b"x")])
    await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
    headers = pb.ContentHeaders(content_type="text/plain\nX: y")
    call = write(env, [spec(headers=headers), *data_messages(b"x")])
    await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
    call = write(env, [spec(size=-1), *data_messages(b"x")])
    await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")


@grpc_test
async def test_write_to_a_missing_bucket(env: GrpcEnv) -> None:
    call = write(env, [spec(), *data_messages(b"payload")])
    await expect_status(call, grpc.StatusCode.NOT_FOUND, "NoSuchBucket")
    assert env.staged_files() == []


@grpc_test
async def test_message_over_grpc_limit_is_resource_exhausted(env: GrpcEnv) -> None:
    """gRPC's own 4 MiB message limit still stands in front of ours."""
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    call = write(env, [spec(), Message(data=b"x" * (5 * MiB), write_offset=0)])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    await assert_nothing_stored(env, settle=True)


@grpc_test
async def test_a_write_over_the_single_put_limit_is_refused_by_the_store(
    env: GrpcEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No size declared, so only the bytes tell: the store's limit (5 GiB, lowered here)
    stands behind every door."""
    monkeypatch.setattr(limits, "MAX_PUT_BYTES", MiB)
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    call = write(env, [spec(), *data_messages(b"x" * (2 * MiB), chunk=MiB // 2)])
    await expect_status(call, grpc.StatusCode.RESOURCE_EXHAUSTED, "EntityTooLarge")
    await assert_nothing_stored(env)
