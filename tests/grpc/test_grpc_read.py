"""ReadObject, HeadObject and DeleteObject over a real channel, driven through the stubs."""

from __future__ import annotations

import hashlib
from typing import Any

import grpc
import pytest

from lightningstor.model import Owner
from lightningstor.v1 import storage_pb2 as pb
from tests.grpc.harness import OBJECTS, GrpcEnv, MiB, expect_status, grpc_test, trailers

BUCKET = "bkt"
PAYLOAD = bytes(range(256)) * 4 * 1024 * 3  # 3 MiB: crosses the core's 1 MiB read chunks


async def put(env: GrpcEnv, key: str = "obj", payload: bytes = PAYLOAD) -> str:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    async with env.client() as client:
        written = await client.put_object(BUCKET, key, payload, content_type="text/x-test")
    return written.etag


async def read(env: GrpcEnv, **fields: Any) -> tuple[pb.ReadObjectResponse, bytes]:
    """The first message of a read, and every byte of the read."""
    request = pb.ReadObjectRequest(bucket=BUCKET, key="obj", **fields)
    call = env.objects.ReadObject(request, metadata=env.signed(OBJECTS + "ReadObject"))
    replies = [reply async for reply in call]
    assert replies[0].HasField("metadata")
    assert all(not r.HasField("metadata") for r in replies[1:])
    assert all(len(r.data) <= 2 * MiB for r in replies)
    return replies[0], b"".join(r.data for r in replies)


@grpc_test
async def test_whole_object(env: GrpcEnv) -> None:
    etag = await put(env)
    first, data = await read(env)
    assert data == PAYLOAD
    assert first.metadata.etag == etag == hashlib.md5(PAYLOAD).hexdigest()
    assert first.metadata.headers.content_type == "text/x-test"
    content_range = first.content_range
    assert (content_range.start, content_range.end) == (0, len(PAYLOAD) - 1)
    assert content_range.complete_length == len(PAYLOAD)


@grpc_test
@pytest.mark.parametrize(
    ("offset", "limit", "start", "end"),
    [
        (0, 10, 0, 9),
        (5, 0, 5, len(PAYLOAD) - 1),  # limit 0: to the end
        (MiB - 3, 7, MiB - 3, MiB + 3),  # across a chunk boundary
        (len(PAYLOAD) - 4, 100, len(PAYLOAD) - 4, len(PAYLOAD) - 1),  # clipped at the end
    ],
)
async def test_offset_and_limit(
    env: GrpcEnv, offset: int, limit: int, start: int, end: int
) -> None:
    await put(env)
    first, data = await read(env, read_offset=offset, read_limit=limit)
    assert data == PAYLOAD[start : end + 1]
    content_range = first.content_range
    assert (content_range.start, content_range.end) == (start, end)
    assert content_range.complete_length == len(PAYLOAD)


@grpc_test
@pytest.mark.parametrize("suffix", [1, 1000, len(PAYLOAD) + 5])
async def test_suffix(env: GrpcEnv, suffix: int) -> None:
    await put(env)
    first, data = await read(env, suffix_length=suffix)
    assert data == PAYLOAD[-suffix:]
    assert first.content_range.end == len(PAYLOAD) - 1


@grpc_test
async def test_empty_object(env: GrpcEnv) -> None:
    await put(env, payload=b"")
    first, data = await read(env)
    assert data == b""
    content_range = first.content_range
    assert (content_range.start, content_range.end, content_range.complete_length) == (0, -1, 0)


@grpc_test
async def test_range_past_the_end_is_out_of_range(env: GrpcEnv) -> None:
    await put(env)
    for fields in (
        {"read_offset": len(PAYLOAD)},
        {"read_offset": len(PAYLOAD) + 1, "read_limit": 1},
    ):
        error = await expect_status(
            read(env, **fields), grpc.StatusCode.OUT_OF_RANGE, "InvalidRange"
        )
        assert trailers(error)["x-ls-object-size"] == str(len(PAYLOAD))


@grpc_test
async def test_malformed_ranges(env: GrpcEnv) -> None:
    await put(env)
    for fields in (
        {"read_offset": -1},
        {"read_limit": -1},
        {"suffix_length": -1},
        {"suffix_length": 5, "read_offset": 1},
    ):
        await expect_status(
            read(env, **fields), grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument"
        )


@grpc_test
async def test_read_preconditions(env: GrpcEnv) -> None:
    etag = await put(env)
    _, data = await read(env, if_match=etag)
    assert data == PAYLOAD
    _, data = await read(env, if_none_match="0" * 32)
    assert data == PAYLOAD
    call = read(env, if_match="0" * 32)
    await expect_status(call, grpc.StatusCode.FAILED_PRECONDITION, "PreconditionFailed")
    call = read(env, if_none_match=etag)
    await expect_status(call, grpc.StatusCode.FAILED_PRECONDITION, "NotModified")


@grpc_test
async def test_missing_key(env: GrpcEnv) -> None:
    await put(env)
    request = pb.ReadObjectRequest(bucket=BUCKET, key="absent")
    call = env.objects.ReadObject(request, metadata=env.signed(OBJECTS + "ReadObject"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert trailers(caught.value)["x-ls-error-code"] == "NoSuchKey"
    call = env.objects.HeadObject(
        pb.HeadObjectRequest(bucket=BUCKET, key="absent"),
        metadata=env.signed(OBJECTS + "HeadObject"),
    )
    await expect_status(call, grpc.StatusCode.NOT_FOUND, "NoSuchKey")


@grpc_test
async def test_head_and_delete(env: GrpcEnv) -> None:
    etag = await put(env)
    head = await env.objects.HeadObject(
        pb.HeadObjectRequest(bucket=BUCKET, key="obj"), metadata=env.signed(OBJECTS + "HeadObject")
    )
    assert (head.bucket, head.key, head.size, head.etag) == (BUCKET, "obj", len(PAYLOAD), etag)
    assert head.modified_unix_nanos > 0
    for existed in (True, False):
        reply = await env.objects.DeleteObject(
            pb.DeleteObjectRequest(bucket=BUCKET, key="obj"),
            metadata=env.signed(OBJECTS + "DeleteObject"),
        )
        assert reply.existed is existed
    call = env.objects.DeleteObject(
        pb.DeleteObjectRequest(bucket="nope", key="obj"),
        metadata=env.signed(OBJECTS + "DeleteObject"),
    )
    await expect_status(call, grpc.StatusCode.NOT_FOUND, "NoSuchBucket")
