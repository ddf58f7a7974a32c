"""Per-chunk CRC32C on the data streams: verified on writes, sent and checked on reads."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import pytest
from awscrt import checksums as awscrt_checksums

import lightningstor.client
import lightningstor_server.grpc.objects
from lightningstor import errors
from lightningstor.client import verify_chunk
from lightningstor.model import Owner
from lightningstor.v1 import storage_pb2 as pb
from lightningstor.v1 import storage_pb2_grpc as pb_grpc
from lightningstor.wire import chunk_crc32c
from lightningstor_server.grpc.messages import render_chunk
from tests.grpc.harness import OBJECTS, GrpcEnv, MiB, expect_status, grpc_test

BUCKET = "bkt"
MULTIPART = "/lightningstor.v1.MultipartService/"
PAYLOAD = hashlib.sha256(b"crc").digest() * (5 * MiB // 32) + b"tail"  # 3 chunks of 2 MiB
Framed = pb.WriteObjectRequest | pb.UploadPartRequest


def framed(
    message: type[Framed],
    spec: Any,
    payload: bytes,
    *,
    chunk: int = 2 * MiB,
    corrupt: int | None = None,
) -> list[Any]:
    """Spec, data messages each carrying its CRC32C (message ``corrupt`` a wrong one), finish."""
    messages = [message(spec=spec, write_offset=0)]
    for number, start in enumerate(range(0, len(payload), chunk)):
        data = payload[start : start + chunk]
        crc32c = chunk_crc32c(data) ^ (1 if number == corrupt else 0)
        messages.append(message(data=data, write_offset=start, crc32c=crc32c))
    messages.append(message(write_offset=len(payload), finish_write=True))
    return messages


async def stream(messages: Sequence[Any]) -> AsyncIterator[Any]:
    for message in messages:
        yield message


async def write(env: GrpcEnv, payload: bytes, **options: Any) -> pb.WriteObjectResponse:
    spec = pb.WriteSpec(bucket=BUCKET, key="obj")
    messages = framed(pb.WriteObjectRequest, spec, payload, **options)
    reply: pb.WriteObjectResponse = await env.objects.WriteObject(
        stream(messages), metadata=env.signed(OBJECTS + "WriteObject")
    )
    return reply


async def read_replies(env: GrpcEnv, **fields: Any) -> list[pb.ReadObjectResponse]:
    request = pb.ReadObjectRequest(bucket=BUCKET, key="obj", **fields)
    call = env.objects.ReadObject(request, metadata=env.signed(OBJECTS + "ReadObject"))
    return [reply async for reply in call]


def test_chunk_crc32c_is_castagnoli() -> None:
    assert chunk_crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value (RFC 3720)
    assert chunk_crc32c(b"") == 0


def test_verify_chunk() -> None:
    verify_chunk(b"chunk", chunk_crc32c(b"chunk"), offset=0)
    verify_chunk(b"", 0, offset=7)
    with pytest.raises(errors.BadDigest) as caught:
        verify_chunk(b"chunk", chunk_crc32c(b"chunk") ^ 1, offset=4096)
    assert "offset 4096" in caught.value.message
    assert caught.value.resource == "crc32c"


# --- writes ---------------------------------------------------------------------------------
@grpc_test
async def test_correct_crc32c_on_every_message_is_stored(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    reply = await write(env, PAYLOAD)
    assert reply.object.size == len(PAYLOAD)
    assert reply.object.etag == hashlib.md5(PAYLOAD).hexdigest()
    replies = await read_replies(env)
    assert b"".join(r.data for r in replies) == PAYLOAD
    assert env.staged_files() == []


@grpc_test
async def test_wrong_crc32c_on_the_second_chunk_is_bad_digest(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    previous = await write(env, b"previous version")
    call = write(env, PAYLOAD, corrupt=1)
    error = await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "BadDigest")
    assert f"write_offset {2 * MiB}" in (error.details() or "")
    # The previous version stands untouched, and nothing of the refused write is left staged.
    head = await env.store.head_object(BUCKET, "obj")
    assert head.etag == previous.object.etag
    replies = await read_replies(env)
    assert b"".join(r.data for r in replies) == b"previous version"
    assert env.staged_files() == []


@grpc_test
async def test_wrong_crc32c_on_a_new_key_stores_nothing(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    call = write(env, PAYLOAD, corrupt=0)
    error = await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "BadDigest")
    assert "write_offset 0" in (error.details() or "")
    with pytest.raises(errors.NoSuchKey):
        await env.store.head_object(BUCKET, "obj")
    assert env.staged_files() == []


@grpc_test
async def test_crc32c_on_a_message_without_data_checks_the_empty_string(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    messages = framed(pb.WriteObjectRequest, pb.WriteSpec(bucket=BUCKET, key="obj"), b"abc")
    messages[-1].crc32c = 0  # CRC32C of no bytes: accepted
    call = env.objects.WriteObject(stream(messages), metadata=env.signed(OBJECTS + "WriteObject"))
    assert (await call).object.size == 3
    messages[-1].crc32c = 1
    call = env.objects.WriteObject(stream(messages), metadata=env.signed(OBJECTS + "WriteObject"))
    await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "BadDigest")
    assert env.staged_files() == []


@grpc_test
async def test_wrong_crc32c_in_upload_part_records_no_part(env: GrpcEnv) -> None:
    async with env.client() as client:
        await client.create_bucket(BUCKET)
        upload = await client.create_multipart_upload(BUCKET, "big")
        spec = pb.PartSpec(bucket=BUCKET, key="big", upload_id=upload.upload_id, part_number=1)
        stub: Any = pb_grpc.MultipartServiceStub(env.channel)  # type: ignore[no-untyped-call]
        messages = framed(pb.UploadPartRequest, spec, PAYLOAD, corrupt=2)
        call = stub.UploadPart(stream(messages), metadata=env.signed(MULTIPART + "UploadPart"))
        error = await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "BadDigest")
        assert f"write_offset {4 * MiB}" in (error.details() or "")
        assert await client.list_parts(upload) == []
        assert env.staged_files() == []

        messages = framed(pb.UploadPartRequest, spec, PAYLOAD)
        call = stub.UploadPart(stream(messages), metadata=env.signed(MULTIPART + "UploadPart"))
        part = await call
        assert part.etag == hashlib.md5(PAYLOAD).hexdigest()


async def held_open(messages: Sequence[Any]) -> AsyncIterator[Any]:
    """``messages``, then a stream that stays open without sending more (no half-close)."""
    for message in messages:
        yield message
    await asyncio.Event().wait()


@grpc_test
async def test_refused_write_drains_at_most_the_bound(
    env: GrpcEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that neither finishes nor half-closes still gets its status, after the bound."""
    monkeypatch.setattr(lightningstor_server.grpc.objects, "REFUSED_WRITE_DRAIN_SECONDS", 0.2)
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    messages = framed(pb.WriteObjectRequest, pb.WriteSpec(bucket=BUCKET, key="obj"), PAYLOAD)
    messages[2].crc32c ^= 1
    call = env.objects.WriteObject(
        held_open(messages[:3]), metadata=env.signed(OBJECTS + "WriteObject")
    )
    await expect_status(asyncio.wait_for(call, 5), grpc.StatusCode.INVALID_ARGUMENT, "BadDigest")
    assert env.staged_files() == []


@grpc_test
async def test_refused_finish_is_answered_at_once(env: GrpcEnv) -> None:
    """After finish_write the client sends nothing more: there is nothing to wait for."""
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    messages = framed(pb.WriteObjectRequest, pb.WriteSpec(bucket=BUCKET, key="obj"), b"abc")
    messages[-1].crc32c = 1
    call = env.objects.WriteObject(
        held_open(messages), metadata=env.signed(OBJECTS + "WriteObject")
    )
    await expect_status(asyncio.wait_for(call, 2), grpc.StatusCode.INVALID_ARGUMENT, "BadDigest")
    assert env.staged_files() == []


# --- the client's writes --------------------------------------------------------------------
@grpc_test
async def test_client_sets_crc32c_on_every_data_message(
    env: GrpcEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[tuple[int, int]] = []
    original = lightningstor_server.grpc.objects._verify_chunk

    def recording(message: Framed, data: bytes) -> None:
        verified.append((message.write_offset, len(data)))
        original(message, data)

    monkeypatch.setattr(lightningstor_server.grpc.objects, "_verify_chunk", recording)
    chunks = [(0, 2 * MiB), (2 * MiB, 2 * MiB), (4 * MiB, MiB + 4)]
    async with env.client() as client:
        await client.create_bucket(BUCKET)
        await client.put_object(BUCKET, "obj", PAYLOAD)
        assert verified == chunks
        verified.clear()
        upload = await client.create_multipart_upload(BUCKET, "big")
        await client.upload_part(upload, 1, PAYLOAD)
        assert verified == chunks


@grpc_test
async def test_client_chunk_damaged_in_transit_is_refused(
    env: GrpcEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with env.client() as client:
        await client.create_bucket(BUCKET)
        await client.put_object(BUCKET, "obj", b"previous version")
        # The client's CRC no longer matches what it sends; the server's own is unpatched.
        monkeypatch.setattr(lightningstor.client, "chunk_crc32c", lambda data: 1)
        with pytest.raises(errors.BadDigest):
            await client.put_object(BUCKET, "obj", PAYLOAD)
        upload = await client.create_multipart_upload(BUCKET, "big")
        with pytest.raises(errors.BadDigest):
            await client.upload_part(upload, 1, PAYLOAD)
        monkeypatch.undo()
        assert await client.get_object(BUCKET, "obj") == b"previous version"
        assert await client.list_parts(upload) == []
    assert env.staged_files() == []


# --- reads ----------------------------------------------------------------------------------
@grpc_test
@pytest.mark.parametrize(
    "fields",
    [{}, {"read_offset": MiB - 3, "read_limit": 3 * MiB}, {"suffix_length": 10}],
    ids=["whole", "range", "suffix"],
)
async def test_every_data_message_carries_its_crc32c(env: GrpcEnv, fields: dict[str, int]) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    await write(env, PAYLOAD)
    first, *rest = await read_replies(env, **fields)
    assert first.HasField("metadata")
    assert rest
    for reply in [first, *rest]:
        assert reply.HasField("crc32c") == bool(reply.data)
        if reply.data:
            assert reply.crc32c == awscrt_checksums.crc32c(reply.data)


@grpc_test
async def test_an_empty_object_reads_without_crc32c(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    await write(env, b"")
    replies = await read_replies(env)
    assert len(replies) == 1
    assert not replies[0].HasField("crc32c")


def damage_second_chunk(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the server send its second data message with one bit flipped and the CRC32C of the
    original, as damage in transit would; returns the sizes of the chunks sent so far."""
    sizes: list[int] = []

    def damaging(data: bytes) -> pb.ReadObjectResponse:
        reply = render_chunk(data)
        sizes.append(len(data))
        if len(sizes) == 2:
            reply.data = bytes([data[0] ^ 1]) + data[1:]
        return reply

    monkeypatch.setattr(lightningstor_server.grpc.objects, "render_chunk", damaging)
    return sizes


@grpc_test
async def test_client_iter_object_stops_at_a_damaged_chunk(
    env: GrpcEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = damage_second_chunk(monkeypatch)
    async with env.client() as client:
        await client.create_bucket(BUCKET)
        await client.put_object(BUCKET, "obj", PAYLOAD)
        received = bytearray()
        with pytest.raises(errors.BadDigest) as caught:
            async for chunk in client.iter_object(BUCKET, "obj", offset=10):
                received += chunk
    # Only the chunk before the damaged one reached the caller, and the error says where.
    assert bytes(received) == PAYLOAD[10 : 10 + sizes[0]]
    assert f"offset {10 + sizes[0]}" in caught.value.message


@grpc_test
async def test_client_get_object_refuses_a_damaged_chunk(
    env: GrpcEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    damage_second_chunk(monkeypatch)
    async with env.client() as client:
        await client.create_bucket(BUCKET)
        await client.put_object(BUCKET, "obj", PAYLOAD)
        with pytest.raises(errors.BadDigest):
            await client.get_object(BUCKET, "obj")


@grpc_test
async def test_client_reads_chunks_without_crc32c(
    env: GrpcEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The field is optional: a server that does not send it is read without a check."""
    monkeypatch.setattr(
        lightningstor_server.grpc.objects,
        "render_chunk",
        lambda data: pb.ReadObjectResponse(data=data),
    )
    async with env.client() as client:
        await client.create_bucket(BUCKET)
        await client.put_object(BUCKET, "obj", PAYLOAD)
        assert await client.get_object(BUCKET, "obj") == PAYLOAD
