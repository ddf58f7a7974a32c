"""MultipartService over a real channel: the client helpers, raw stubs and every error code."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from lightningstor import errors
from lightningstor.ops.fsck import check_store
from lightningstor.v1 import storage_pb2 as pb
from lightningstor.v1 import storage_pb2_grpc as pb_grpc
from tests.grpc.harness import GrpcEnv, MiB, expect_status, grpc_test

MULTIPART = "/lightningstor.v1.MultipartService/"


async def _parts(*sizes: int) -> AsyncIterator[bytes]:
    for n, size in enumerate(sizes, start=1):
        yield bytes([n]) * size


@grpc_test
async def test_put_large_object_through_the_client(env: GrpcEnv) -> None:
    async with env.client() as ls:
        await ls.create_bucket("grpc-mpu")
        obj = await ls.put_large_object(
            "grpc-mpu", "big", _parts(5 * MiB, 5 * MiB, 3), content_type="x/y"
        )
        data = bytes([1]) * 5 * MiB + bytes([2]) * 5 * MiB + bytes([3]) * 3
        assert await ls.get_object("grpc-mpu", "big") == data
        md5s = b"".join(hashlib.md5(data[i : i + 5 * MiB]).digest() for i in (0, 5 * MiB, 10 * MiB))
        assert obj.etag == f"{hashlib.md5(md5s).hexdigest()}-3"
        assert obj.headers.content_type == "x/y"
        tail = await ls.get_object("grpc-mpu", "big", offset=5 * MiB - 1, limit=3)
        assert tail == bytes([1, 2, 2])
    assert check_store(env.store.kv, env.store.blobs).problems == []


@grpc_test
async def test_failed_large_upload_is_aborted(env: GrpcEnv) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(5 * MiB)
        raise RuntimeError("source failed")

    async with env.client() as ls:
        await ls.create_bucket("grpc-mpu")
        with pytest.raises(RuntimeError):
            await ls.put_large_object("grpc-mpu", "big", broken())
        uploads = pb_grpc.MultipartServiceStub(env.channel)  # type: ignore[no-untyped-call]
        listing = await uploads.ListMultipartUploads(
            pb.ListMultipartUploadsRequest(bucket="grpc-mpu"),
            metadata=env.signed(MULTIPART + "ListMultipartUploads"),
        )
        assert list(listing.uploads) == []
    await env.store.collect_garbage(now_ns=2**62)
    assert check_store(env.store.kv, env.store.blobs).problems == []


@grpc_test
async def test_errors(env: GrpcEnv) -> None:
    stub = pb_grpc.MultipartServiceStub(env.channel)  # type: ignore[no-untyped-call]
    async with env.client() as ls:
        await ls.create_bucket("grpc-mpu")
        upload = await ls.create_multipart_upload("grpc-mpu", "k")
        small = await ls.upload_part(upload, 1, b"small")
        last = await ls.upload_part(upload, 2, b"last")
        listed = await ls.list_parts(upload)
        assert [(p.part_number, p.size) for p in listed] == [(1, 5), (2, 4)]

        def complete(*parts: pb.CompletedPart) -> Any:
            request = pb.CompleteMultipartUploadRequest(
                bucket="grpc-mpu", key="k", upload_id=upload.upload_id, parts=parts
            )
            return stub.CompleteMultipartUpload(
                request, metadata=env.signed(MULTIPART + "CompleteMultipartUpload")
            )

        first = pb.CompletedPart(part_number=1, etag=small.etag)
        second = pb.CompletedPart(part_number=2, etag=last.etag)
        await expect_status(
            complete(first, second), grpc.StatusCode.INVALID_ARGUMENT, "EntityTooSmall"
        )
        await expect_status(
            complete(second, first), grpc.StatusCode.INVALID_ARGUMENT, "InvalidPartOrder"
        )
        wrong = pb.CompletedPart(part_number=2, etag="0" * 32)
        await expect_status(complete(wrong), grpc.StatusCode.INVALID_ARGUMENT, "InvalidPart")
        await ls.abort_multipart_upload(upload)
        await expect_status(complete(second), grpc.StatusCode.NOT_FOUND, "NoSuchUpload")
        with pytest.raises(errors.NoSuchUpload):
            await ls.upload_part(upload, 3, b"late")
        with pytest.raises(errors.NoSuchBucket):
            await ls.create_multipart_upload("no-such-bucket", "k")
    assert env.staged_files() == []
