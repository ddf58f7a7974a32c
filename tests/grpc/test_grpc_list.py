"""ListObjects over a real channel: prefix, delimiter, paging and page tokens."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import grpc
import pytest

from lightningstor.model import Owner
from lightningstor.v1 import storage_pb2 as pb
from tests.grpc.harness import OBJECTS, GrpcEnv, expect_status, grpc_test

BUCKET = "bkt"
KEYS = ["a/1", "a/2", "a/b/3", "b", "c/1", "c/2", "d", "é/1"]


async def fill(env: GrpcEnv) -> None:
    await env.store.create_bucket(BUCKET, owner=Owner("test"))
    async with env.client() as client:
        for key in KEYS:
            await client.put_object(BUCKET, key, key.encode())


async def list_page(env: GrpcEnv, **fields: Any) -> pb.ListObjectsResponse:
    request = pb.ListObjectsRequest(bucket=BUCKET, **fields)
    reply: pb.ListObjectsResponse = await env.objects.ListObjects(
        request, metadata=env.signed(OBJECTS + "ListObjects")
    )
    return reply


@grpc_test
async def test_everything_in_one_page(env: GrpcEnv) -> None:
    await fill(env)
    page = await list_page(env)
    assert [o.key for o in page.objects] == KEYS  # UTF-8 byte order
    assert page.next_page_token == ""
    first = page.objects[0]
    assert (first.bucket, first.size, first.etag) == (BUCKET, 3, hashlib.md5(b"a/1").hexdigest())
    assert first.modified_unix_nanos > 0


@grpc_test
async def test_prefix_and_delimiter(env: GrpcEnv) -> None:
    await fill(env)
    page = await list_page(env, delimiter="/")
    assert [o.key for o in page.objects] == ["b", "d"]
    assert list(page.common_prefixes) == ["a/", "c/", "é/"]
    page = await list_page(env, prefix="a/", delimiter="/")
    assert [o.key for o in page.objects] == ["a/1", "a/2"]
    assert list(page.common_prefixes) == ["a/b/"]
    page = await list_page(env, prefix="c")
    assert [o.key for o in page.objects] == ["c/1", "c/2"]
    page = await list_page(env, start_after="c/1")
    assert [o.key for o in page.objects] == ["c/2", "d", "é/1"]


@grpc_test
@pytest.mark.parametrize("delimiter", ["", "/"])
async def test_paging_visits_everything_once(env: GrpcEnv, delimiter: str) -> None:
    await fill(env)
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await list_page(env, delimiter=delimiter, page_size=2, page_token=token)
        assert len(page.objects) + len(page.common_prefixes) <= 2
        seen += [o.key for o in page.objects] + list(page.common_prefixes)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    expected = KEYS if not delimiter else ["a/", "b", "c/", "d", "é/"]
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(expected)
    assert pages == -(-len(expected) // 2)


@grpc_test
async def test_page_token_wins_over_start_after(env: GrpcEnv) -> None:
    await fill(env)
    page = await list_page(env, page_size=3)
    following = await list_page(env, page_token=page.next_page_token, start_after="c/2")
    assert [o.key for o in following.objects] == KEYS[3:]


@grpc_test
async def test_forged_page_tokens(env: GrpcEnv) -> None:
    await fill(env)
    for token in (
        "not base64!",
        base64.urlsafe_b64encode(b"\x09a/1").decode(),  # unknown version byte
        base64.urlsafe_b64encode(b"\x01\xff\xfe").decode(),  # not UTF-8
        "é",
    ):
        call = list_page(env, page_token=token)
        await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")


@grpc_test
async def test_page_size_limits(env: GrpcEnv) -> None:
    await fill(env)
    assert len((await list_page(env, page_size=1000)).objects) == len(KEYS)
    for size in (1001, -1):
        call = list_page(env, page_size=size)
        await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")


@grpc_test
async def test_listing_a_missing_bucket(env: GrpcEnv) -> None:
    request = pb.ListObjectsRequest(bucket="nope")
    call = env.objects.ListObjects(request, metadata=env.signed(OBJECTS + "ListObjects"))
    await expect_status(call, grpc.StatusCode.NOT_FOUND, "NoSuchBucket")
