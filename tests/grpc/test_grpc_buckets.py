"""BucketService over a real channel, driven through the generated stubs."""

from __future__ import annotations

import time

import grpc

from lightningstor.client import call_metadata
from lightningstor.model import derived_canonical_id
from lightningstor.v1 import storage_pb2 as pb
from tests.grpc.harness import (
    BUCKETS,
    KEY_ID,
    OBJECTS,
    SECRET,
    GrpcEnv,
    expect_status,
    grpc_test,
)


@grpc_test
async def test_create_get_list_delete(env: GrpcEnv) -> None:
    before = time.time_ns()
    created = await env.buckets.CreateBucket(
        pb.CreateBucketRequest(name="photos"), metadata=env.signed(BUCKETS + "CreateBucket")
    )
    assert created.name == "photos"
    assert created.owner == derived_canonical_id(KEY_ID)  # the verified caller owns what it creates
    assert before <= created.created_unix_nanos <= time.time_ns()

    got = await env.buckets.GetBucket(
        pb.GetBucketRequest(name="photos"), metadata=env.signed(BUCKETS + "GetBucket")
    )
    assert got == created

    await env.buckets.CreateBucket(
        pb.CreateBucketRequest(name="albums"), metadata=env.signed(BUCKETS + "CreateBucket")
    )
    listed = await env.buckets.ListBuckets(
        pb.ListBucketsRequest(), metadata=env.signed(BUCKETS + "ListBuckets")
    )
    assert [b.name for b in listed.buckets] == ["albums", "photos"]

    await env.buckets.DeleteBucket(
        pb.DeleteBucketRequest(name="photos"), metadata=env.signed(BUCKETS + "DeleteBucket")
    )
    listed = await env.buckets.ListBuckets(
        pb.ListBucketsRequest(), metadata=env.signed(BUCKETS + "ListBuckets")
    )
    assert [b.name for b in listed.buckets] == ["albums"]


@grpc_test
async def test_missing_bucket_is_not_found(env: GrpcEnv) -> None:
    for method, request in (
        ("GetBucket", pb.GetBucketRequest(name="nope")),
        ("DeleteBucket", pb.DeleteBucketRequest(name="nope")),
    ):
        call = getattr(env.buckets, method)(request, metadata=env.signed(BUCKETS + method))
        await expect_status(call, grpc.StatusCode.NOT_FOUND, "NoSuchBucket")
    call = env.objects.HeadObject(
        pb.HeadObjectRequest(bucket="nope", key="k"), metadata=env.signed(OBJECTS + "HeadObject")
    )
    await expect_status(call, grpc.StatusCode.NOT_FOUND, "NoSuchBucket")


@grpc_test
async def test_creating_twice_is_already_exists(env: GrpcEnv) -> None:
    request = pb.CreateBucketRequest(name="photos")
    await env.buckets.CreateBucket(request, metadata=env.signed(BUCKETS + "CreateBucket"))
    call = env.buckets.CreateBucket(request, metadata=env.signed(BUCKETS + "CreateBucket"))
    await expect_status(call, grpc.StatusCode.ALREADY_EXISTS, "BucketAlreadyOwnedByYou")


@grpc_test
async def test_invalid_bucket_name(env: GrpcEnv) -> None:
    for name in ("", "UPPER", "a", "bad..dots", "192.168.1.1"):
        call = env.buckets.CreateBucket(
            pb.CreateBucketRequest(name=name), metadata=env.signed(BUCKETS + "CreateBucket")
        )
        await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT, "InvalidBucketName")


@grpc_test
async def test_deleting_a_bucket_with_objects_fails(env: GrpcEnv) -> None:
    async with env.client() as client:
        await client.create_bucket("photos")
        await client.put_object("photos", "cat.jpg", b"meow")
        call = env.buckets.DeleteBucket(
            pb.DeleteBucketRequest(name="photos"), metadata=env.signed(BUCKETS + "DeleteBucket")
        )
        await expect_status(call, grpc.StatusCode.FAILED_PRECONDITION, "BucketNotEmpty")
        assert await client.get_object("photos", "cat.jpg") == b"meow"  # nothing was lost
        assert await client.delete_object("photos", "cat.jpg")
        await client.delete_bucket("photos")
        assert await client.list_buckets() == []


@grpc_test
async def test_another_owners_bucket_already_exists(env: GrpcEnv) -> None:
    await env.credentials.create(
        access_key_id="LSOTHERKEY0000000001",
        secret_access_key=SECRET,
        name="other",
        admin=False,
        grants={"photos": "readwrite"},
    )
    method = BUCKETS + "CreateBucket"
    request = pb.CreateBucketRequest(name="photos")
    await env.buckets.CreateBucket(request, metadata=env.signed(method))
    call = env.buckets.CreateBucket(
        request, metadata=call_metadata("LSOTHERKEY0000000001", SECRET, method)
    )
    await expect_status(call, grpc.StatusCode.ALREADY_EXISTS, "BucketAlreadyExists")
