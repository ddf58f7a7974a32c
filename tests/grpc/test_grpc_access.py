"""One table says what each gRPC method needs (access.py); the interceptor applies it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from lightningstor import errors
from lightningstor.auth.access import AccessSettings
from lightningstor.client import Client, call_metadata
from lightningstor.model import BUCKET_OWNER_ENFORCED, OBJECT_WRITER, BucketAccess, Owner
from lightningstor.objects.gatekeeper import Gatekeeper
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from lightningstor.v1 import admin_pb2
from lightningstor.v1 import admin_pb2_grpc as admin_grpc
from lightningstor.v1 import storage_pb2 as pb
from lightningstor.v1 import storage_pb2_grpc as pb_grpc
from lightningstor_server.grpc.access import NEEDS, enforce
from lightningstor_server.grpc.auth import Caller
from lightningstor_server.grpc.server import SERVICE_NAMES
from tests.grpc.harness import BUCKETS, OBJECTS, SECRET, GrpcEnv, expect_status, grpc_test

READER = "LSREADERKEY000000001"
MULTIPART = "/lightningstor.v1.MultipartService/"
ADMIN = "/lightningstor.v1.AdminService/"


def test_every_method_of_every_service_has_exactly_one_rule() -> None:
    methods = {
        f"/{service.full_name}/{method.name}"
        for descriptor in (pb.DESCRIPTOR, admin_pb2.DESCRIPTOR)
        for service in descriptor.services_by_name.values()
        if service.full_name in SERVICE_NAMES
        for method in service.methods
    }
    assert set(NEEDS) == methods


def caller(**grants: str) -> Caller:
    return Caller(access_key_id=READER, admin=False, grants=grants)


def check(tmp_path: Path, checks: Callable[[Gatekeeper], Awaitable[None]]) -> None:
    """Run ``checks`` against a store holding buckets bkt, src and dst, owned by another key."""

    async def main() -> None:
        offloader = Offloader(workers=2)
        store = ObjectStore.open(tmp_path / "data", offloader=offloader)
        try:
            for name in ("bkt", "src", "dst"):
                await store.create_bucket(name, owner=Owner("someone-else"))
            await checks(Gatekeeper(store, AccessSettings()))
        finally:
            store.close()
            offloader.shutdown()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("method", "message", "needs"),
    [
        (BUCKETS + "GetBucket", pb.GetBucketRequest(name="bkt"), "read"),
        (BUCKETS + "DeleteBucket", pb.DeleteBucketRequest(name="bkt"), "write"),
        (BUCKETS + "SetBucketVersioning", pb.SetBucketVersioningRequest(name="bkt"), "write"),
        (BUCKETS + "SetObjectLockConfiguration", pb.SetObjectLockConfigurationRequest(name="bkt"),
         "write"),
        (OBJECTS + "WriteObject", pb.WriteObjectRequest(spec=pb.WriteSpec(bucket="bkt")), "write"),
        (OBJECTS + "ReadObject", pb.ReadObjectRequest(bucket="bkt", key="k"), "read"),
        (OBJECTS + "HeadObject", pb.HeadObjectRequest(bucket="bkt", key="k"), "read"),
        (OBJECTS + "DeleteObject", pb.DeleteObjectRequest(bucket="bkt"), "write"),
        (OBJECTS + "ListObjects", pb.ListObjectsRequest(bucket="bkt"), "read"),
        (OBJECTS + "ListObjectVersions", pb.ListObjectVersionsRequest(bucket="bkt"), "read"),
        (OBJECTS + "SetObjectRetention", pb.SetObjectRetentionRequest(bucket="bkt"), "write"),
        (OBJECTS + "SetObjectLegalHold", pb.SetObjectLegalHoldRequest(bucket="bkt"), "write"),
        (MULTIPART + "CreateMultipartUpload", pb.CreateMultipartUploadRequest(bucket="bkt"),
         "write"),
        (MULTIPART + "UploadPart", pb.UploadPartRequest(spec=pb.PartSpec(bucket="bkt")), "write"),
        (MULTIPART + "CompleteMultipartUpload", pb.CompleteMultipartUploadRequest(bucket="bkt"),
         "write"),
        (MULTIPART + "AbortMultipartUpload", pb.AbortMultipartUploadRequest(bucket="bkt"), "write"),
        (MULTIPART + "ListParts", pb.ListPartsRequest(bucket="bkt"), "read"),
        (MULTIPART + "ListMultipartUploads", pb.ListMultipartUploadsRequest(bucket="bkt"), "read"),
    ],
)  # fmt: skip
def test_bucket_methods_need_their_access_to_the_named_bucket(
    tmp_path: Path, method: str, message: Any, needs: str
) -> None:
    async def checks(gatekeeper: Gatekeeper) -> None:
        await enforce(method, caller(bkt="readwrite"), message, gatekeeper)
        await enforce(method, caller(bkt=needs), message, gatekeeper)
        other = "write" if needs == "read" else "read"
        for refused in (caller(), caller(other_bucket="readwrite"), caller(bkt=other)):
            with pytest.raises(errors.AccessDenied):
                await enforce(method, refused, message, gatekeeper)

    check(tmp_path, checks)


def test_copy_needs_read_on_the_source_and_write_on_the_target(tmp_path: Path) -> None:
    message = pb.CopyObjectRequest(source_bucket="src", source_key="a", bucket="dst", key="b")
    method = OBJECTS + "CopyObject"

    async def checks(gatekeeper: Gatekeeper) -> None:
        await enforce(method, caller(src="read", dst="write"), message, gatekeeper)
        for refused in (caller(src="write", dst="write"), caller(src="read", dst="read")):
            with pytest.raises(errors.AccessDenied):
                await enforce(method, refused, message, gatekeeper)

    check(tmp_path, checks)


def test_creating_buckets_needs_a_key_and_the_operator_setting(tmp_path: Path) -> None:
    method, message = BUCKETS + "CreateBucket", pb.CreateBucketRequest(name="new")

    async def checks(gatekeeper: Gatekeeper) -> None:
        await enforce(method, caller(), message, gatekeeper)
        closed = Gatekeeper(gatekeeper.store, AccessSettings(keys_create_buckets=False))
        with pytest.raises(errors.AccessDenied):
            await enforce(method, caller(), message, closed)
        await enforce(method, Caller(access_key_id="LSADMIN", admin=True), message, closed)

    check(tmp_path, checks)


def test_admin_methods_need_an_admin_key_whatever_the_grants(tmp_path: Path) -> None:
    admin_methods = [m for m in NEEDS if m.startswith(ADMIN)]
    assert len(admin_methods) == 11

    async def checks(gatekeeper: Gatekeeper) -> None:
        for method in admin_methods:
            admin = Caller(access_key_id="LSADMIN", admin=True)
            await enforce(method, admin, admin_pb2.ListAccessKeysRequest(), gatekeeper)
            with pytest.raises(errors.AccessDenied):
                await enforce(
                    method, caller(bkt="readwrite"), admin_pb2.ListAccessKeysRequest(), gatekeeper
                )

    check(tmp_path, checks)


def test_a_method_without_a_rule_is_refused_even_to_an_admin(tmp_path: Path) -> None:
    async def checks(gatekeeper: Gatekeeper) -> None:
        with pytest.raises(errors.AccessDenied):
            await enforce(
                "/lightningstor.v1.ObjectService/Invented",
                Caller(access_key_id="A", admin=True),
                pb.HeadObjectRequest(),
                gatekeeper,
            )

    check(tmp_path, checks)


async def reader_key(env: GrpcEnv) -> None:
    await env.credentials.create(
        access_key_id=READER,
        secret_access_key=SECRET,
        name="r",
        admin=False,
        grants={"bkt": "read"},
    )
    await env.buckets.CreateBucket(
        pb.CreateBucketRequest(name="bkt"), metadata=env.signed(BUCKETS + "CreateBucket")
    )


@grpc_test
async def test_a_streamed_write_is_refused_from_its_spec_and_stores_nothing(env: GrpcEnv) -> None:
    await reader_key(env)

    async def messages() -> Any:
        yield pb.WriteObjectRequest(spec=pb.WriteSpec(bucket="bkt", key="k", size=3))
        yield pb.WriteObjectRequest(data=b"abc", write_offset=0, finish_write=True)

    method = OBJECTS + "WriteObject"
    call = env.objects.WriteObject(messages(), metadata=call_metadata(READER, SECRET, method))
    await expect_status(call, grpc.StatusCode.PERMISSION_DENIED, "AccessDenied")
    assert (await env.store.list_objects("bkt")).entries == ()
    assert env.staged_files() == []
    # The same key reads what it is granted.
    listed = await env.objects.ListObjects(
        pb.ListObjectsRequest(bucket="bkt"),
        metadata=call_metadata(READER, SECRET, OBJECTS + "ListObjects"),
    )
    assert list(listed.objects) == []


@grpc_test
async def test_a_limited_key_is_refused_the_admin_service(env: GrpcEnv) -> None:
    await reader_key(env)
    admin: Any = admin_grpc.AdminServiceStub(env.channel)  # type: ignore[no-untyped-call]
    method = ADMIN + "ListAccessKeys"
    call = admin.ListAccessKeys(
        admin_pb2.ListAccessKeysRequest(), metadata=call_metadata(READER, SECRET, method)
    )
    await expect_status(call, grpc.StatusCode.PERMISSION_DENIED, "AccessDenied")


@grpc_test
async def test_multipart_reads_with_a_read_grant_and_cannot_start_an_upload(env: GrpcEnv) -> None:
    await reader_key(env)
    stub: Any = pb_grpc.MultipartServiceStub(env.channel)  # type: ignore[no-untyped-call]
    create = MULTIPART + "CreateMultipartUpload"
    call = stub.CreateMultipartUpload(
        pb.CreateMultipartUploadRequest(bucket="bkt", key="k"),
        metadata=call_metadata(READER, SECRET, create),
    )
    await expect_status(call, grpc.StatusCode.PERMISSION_DENIED, "AccessDenied")
    listing = MULTIPART + "ListMultipartUploads"
    uploads = await stub.ListMultipartUploads(
        pb.ListMultipartUploadsRequest(bucket="bkt"),
        metadata=call_metadata(READER, SECRET, listing),
    )
    assert list(uploads.uploads) == []


@grpc_test
async def test_a_read_grant_lists_versions_and_cannot_change_a_lock(env: GrpcEnv) -> None:
    await reader_key(env)
    listing = OBJECTS + "ListObjectVersions"
    versions = await env.objects.ListObjectVersions(
        pb.ListObjectVersionsRequest(bucket="bkt"), metadata=call_metadata(READER, SECRET, listing)
    )
    assert list(versions.versions) == []
    for method, request in (
        ("SetObjectLegalHold", pb.SetObjectLegalHoldRequest(bucket="bkt", key="k")),
        ("SetObjectRetention", pb.SetObjectRetentionRequest(bucket="bkt", key="k")),
    ):
        call = getattr(env.objects, method)(
            request, metadata=call_metadata(READER, SECRET, OBJECTS + method)
        )
        await expect_status(call, grpc.StatusCode.PERMISSION_DENIED, "AccessDenied")
    call = env.buckets.SetBucketVersioning(
        pb.SetBucketVersioningRequest(name="bkt", status=pb.VERSIONING_STATUS_ENABLED),
        metadata=call_metadata(READER, SECRET, BUCKETS + "SetBucketVersioning"),
    )
    await expect_status(call, grpc.StatusCode.PERMISSION_DENIED, "AccessDenied")
    assert (await env.store.head_bucket("bkt")).versioning == ""


@grpc_test
async def test_what_a_key_writes_with_acls_on_is_its_own(env: GrpcEnv) -> None:
    """S3 Object Ownership over gRPC too: in a bucket with ACLs on (ObjectWriter), the writer
    owns its object and the bucket's owner reads it only if granted."""
    await env.credentials.create(
        access_key_id=READER,
        secret_access_key=SECRET,
        name="writer",
        admin=False,
        grants={"shared-acl": "readwrite"},
    )
    owner = Owner("bucket-owner-id", "bucket-owner")
    await env.store.create_bucket(
        "shared-acl", owner=owner, access=BucketAccess(ownership=OBJECT_WRITER)
    )
    async with Client(env.target, access_key_id=READER, secret_access_key=SECRET) as writer:
        await writer.put_object("shared-acl", "mine", b"x")
    head = await env.store.head_object("shared-acl", "mine")
    assert head.owner is not None and head.owner.name == "writer"
    enforced = "enforced-acl"
    await env.store.create_bucket(
        enforced, owner=owner, access=BucketAccess(ownership=BUCKET_OWNER_ENFORCED)
    )
    await env.credentials.update(READER, grants={enforced: "readwrite"})
    async with Client(env.target, access_key_id=READER, secret_access_key=SECRET) as writer:
        await writer.put_object(enforced, "theirs", b"x")
    assert (await env.store.head_object(enforced, "theirs")).owner == owner
