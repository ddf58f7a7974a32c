"""One table says what each gRPC method needs (access.py); the interceptor applies it."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from lightningstor import errors
from lightningstor.client import call_metadata
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


@pytest.mark.parametrize(
    ("method", "message", "needs"),
    [
        (BUCKETS + "CreateBucket", pb.CreateBucketRequest(name="b"), "write"),
        (BUCKETS + "GetBucket", pb.GetBucketRequest(name="b"), "read"),
        (BUCKETS + "DeleteBucket", pb.DeleteBucketRequest(name="b"), "write"),
        (BUCKETS + "SetBucketVersioning", pb.SetBucketVersioningRequest(name="b"), "write"),
        (BUCKETS + "SetObjectLockConfiguration", pb.SetObjectLockConfigurationRequest(name="b"),
         "write"),
        (OBJECTS + "WriteObject", pb.WriteObjectRequest(spec=pb.WriteSpec(bucket="b")), "write"),
        (OBJECTS + "ReadObject", pb.ReadObjectRequest(bucket="b"), "read"),
        (OBJECTS + "HeadObject", pb.HeadObjectRequest(bucket="b"), "read"),
        (OBJECTS + "DeleteObject", pb.DeleteObjectRequest(bucket="b"), "write"),
        (OBJECTS + "ListObjects", pb.ListObjectsRequest(bucket="b"), "read"),
        (OBJECTS + "ListObjectVersions", pb.ListObjectVersionsRequest(bucket="b"), "read"),
        (OBJECTS + "SetObjectRetention", pb.SetObjectRetentionRequest(bucket="b"), "write"),
        (OBJECTS + "SetObjectLegalHold", pb.SetObjectLegalHoldRequest(bucket="b"), "write"),
        (MULTIPART + "CreateMultipartUpload", pb.CreateMultipartUploadRequest(bucket="b"), "write"),
        (MULTIPART + "UploadPart", pb.UploadPartRequest(spec=pb.PartSpec(bucket="b")), "write"),
        (MULTIPART + "CompleteMultipartUpload", pb.CompleteMultipartUploadRequest(bucket="b"),
         "write"),
        (MULTIPART + "AbortMultipartUpload", pb.AbortMultipartUploadRequest(bucket="b"), "write"),
        (MULTIPART + "ListParts", pb.ListPartsRequest(bucket="b"), "read"),
        (MULTIPART + "ListMultipartUploads", pb.ListMultipartUploadsRequest(bucket="b"), "read"),
    ],
)  # fmt: skip
def test_bucket_methods_need_their_access_to_the_named_bucket(
    method: str, message: Any, needs: str
) -> None:
    enforce(method, caller(b="readwrite"), message)
    enforce(method, caller(b=needs), message)
    other = "write" if needs == "read" else "read"
    for refused in (caller(), caller(other_bucket="readwrite"), caller(b=other)):
        with pytest.raises(errors.AccessDenied):
            enforce(method, refused, message)


def test_copy_needs_read_on_the_source_and_write_on_the_target() -> None:
    message = pb.CopyObjectRequest(source_bucket="src", bucket="dst")
    method = OBJECTS + "CopyObject"
    enforce(method, caller(src="read", dst="write"), message)
    for refused in (caller(src="write", dst="write"), caller(src="read", dst="read")):
        with pytest.raises(errors.AccessDenied):
            enforce(method, refused, message)


def test_admin_methods_need_an_admin_key_whatever_the_grants() -> None:
    admin_methods = [m for m in NEEDS if m.startswith(ADMIN)]
    assert len(admin_methods) == 7
    for method in admin_methods:
        enforce(
            method, Caller(access_key_id="LSADMIN", admin=True), admin_pb2.ListAccessKeysRequest()
        )
        with pytest.raises(errors.AccessDenied):
            enforce(method, caller(b="readwrite"), admin_pb2.ListAccessKeysRequest())


def test_a_method_without_a_rule_is_refused_even_to_an_admin() -> None:
    with pytest.raises(errors.AccessDenied):
        enforce(
            "/lightningstor.v1.ObjectService/Invented",
            Caller(access_key_id="A", admin=True),
            pb.HeadObjectRequest(),
        )


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
