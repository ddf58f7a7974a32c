"""Bucket versioning over gRPC: version ids on every object, reads, copies and deletes of one
version, delete markers, ListObjectVersions, and every bad input's exact status with the stored
versions intact afterwards."""

from __future__ import annotations

import re

import grpc
import pytest

from lightningstor.v1 import storage_pb2 as pb
from tests.grpc.harness import GrpcEnv, expect_status, grpc_test, trailers
from tests.grpc.versioning_calls import Calls

S = grpc.StatusCode
HEX32 = re.compile(r"[0-9a-f]{32}")
BAD_VERSION_IDS = ["nope", "0" * 31, "A" * 32, "NULL", "0" * 32 + "0"]
UNKNOWN_VERSION = "0123456789abcdef0123456789abcdef"


async def versioned(env: GrpcEnv, name: str = "vers") -> Calls:
    calls = Calls(env)
    await calls.bucket("CreateBucket", pb.CreateBucketRequest(name=name))
    enabled = await calls.bucket(
        "SetBucketVersioning",
        pb.SetBucketVersioningRequest(name=name, status=pb.VERSIONING_STATUS_ENABLED),
    )
    assert enabled.versioning == pb.VERSIONING_STATUS_ENABLED
    return calls


# --- buckets ---------------------------------------------------------------------------------
@grpc_test
async def test_versioning_status_through_its_states(env: GrpcEnv) -> None:
    calls = Calls(env)
    created = await calls.bucket("CreateBucket", pb.CreateBucketRequest(name="vers"))
    assert created.versioning == pb.VERSIONING_STATUS_UNSPECIFIED
    assert not created.HasField("object_lock")
    for status in (pb.VERSIONING_STATUS_ENABLED, pb.VERSIONING_STATUS_SUSPENDED):
        changed = await calls.bucket(
            "SetBucketVersioning", pb.SetBucketVersioningRequest(name="vers", status=status)
        )
        assert changed.versioning == status
        got = await calls.bucket("GetBucket", pb.GetBucketRequest(name="vers"))
        assert got == changed
        listed = await calls.bucket("ListBuckets", pb.ListBucketsRequest())
        assert list(listed.buckets) == [changed]
    assert (await env.store.head_bucket("vers")).versioning == "Suspended"


@grpc_test
@pytest.mark.parametrize("status", [pb.VERSIONING_STATUS_UNSPECIFIED, 7, -1])
async def test_a_versioning_status_that_is_not_one_is_invalid(env: GrpcEnv, status: int) -> None:
    calls = await versioned(env)
    # Proto3 enums are open: a number the enum does not name arrives as itself.
    request = pb.SetBucketVersioningRequest(name="vers")
    request.status = status  # type: ignore[assignment]
    call = calls.bucket("SetBucketVersioning", request)
    await expect_status(call, S.INVALID_ARGUMENT, "InvalidArgument")
    assert (await env.store.head_bucket("vers")).versioning == "Enabled"


@grpc_test
async def test_versioning_of_a_missing_bucket_is_not_found(env: GrpcEnv) -> None:
    call = Calls(env).bucket(
        "SetBucketVersioning",
        pb.SetBucketVersioningRequest(name="nope", status=pb.VERSIONING_STATUS_ENABLED),
    )
    await expect_status(call, S.NOT_FOUND, "NoSuchBucket")


# --- versions of a key -----------------------------------------------------------------------
@grpc_test
async def test_every_write_is_a_version_and_each_reads_back(env: GrpcEnv) -> None:
    calls = await versioned(env)
    first = await calls.put("vers", "k", b"one")
    second = await calls.put("vers", "k", b"two!")
    assert HEX32.fullmatch(first.version_id) and HEX32.fullmatch(second.version_id)
    assert first.version_id != second.version_id
    assert not first.delete_marker and not first.HasField("retention") and not first.legal_hold

    assert await calls.read("vers", "k") == b"two!"
    assert await calls.read("vers", "k", first.version_id) == b"one"
    head = await calls.object(
        "HeadObject", pb.HeadObjectRequest(bucket="vers", key="k", version_id=first.version_id)
    )
    assert (head.version_id, head.size, head.etag) == (first.version_id, 3, first.etag)
    current = await calls.object("HeadObject", pb.HeadObjectRequest(bucket="vers", key="k"))
    assert current.version_id == second.version_id
    # The first message of a read names the version it serves.
    stream = calls.object(
        "ReadObject", pb.ReadObjectRequest(bucket="vers", key="k", version_id=first.version_id)
    )
    messages = [m async for m in stream]
    assert messages[0].metadata.version_id == first.version_id


@grpc_test
async def test_an_unversioned_bucket_writes_the_null_version(env: GrpcEnv) -> None:
    calls = Calls(env)
    await calls.bucket("CreateBucket", pb.CreateBucketRequest(name="plain"))
    written = await calls.put("plain", "k", b"x")
    assert written.version_id == "null"
    assert await calls.read("plain", "k", "null") == b"x"
    deleted = await calls.object("DeleteObject", pb.DeleteObjectRequest(bucket="plain", key="k"))
    assert (deleted.existed, deleted.version_id, deleted.delete_marker) == (True, "", False)
    assert await calls.versions("plain") == []


@grpc_test
async def test_suspended_versioning_replaces_the_null_version_and_keeps_the_others(
    env: GrpcEnv,
) -> None:
    calls = await versioned(env)
    kept = await calls.put("vers", "k", b"kept")
    await calls.bucket(
        "SetBucketVersioning",
        pb.SetBucketVersioningRequest(name="vers", status=pb.VERSIONING_STATUS_SUSPENDED),
    )
    assert (await calls.put("vers", "k", b"n1")).version_id == "null"
    assert (await calls.put("vers", "k", b"n2")).version_id == "null"
    assert await calls.versions("vers") == [
        ("k", "null", True, False),
        ("k", kept.version_id, False, False),
    ]
    assert await calls.read("vers", "k", "null") == b"n2"
    assert await calls.read("vers", "k", kept.version_id) == b"kept"


@grpc_test
async def test_delete_markers_hide_the_key_and_deleting_one_undeletes(env: GrpcEnv) -> None:
    calls = await versioned(env)
    written = await calls.put("vers", "k", b"data")
    deleted = await calls.object("DeleteObject", pb.DeleteObjectRequest(bucket="vers", key="k"))
    assert deleted.delete_marker and deleted.existed
    marker = deleted.version_id
    assert HEX32.fullmatch(marker) and marker != written.version_id

    # The current version is the marker: a plain read is NoSuchKey naming it.
    call = calls.object("HeadObject", pb.HeadObjectRequest(bucket="vers", key="k"))
    error = await expect_status(call, S.NOT_FOUND, "NoSuchKey")
    assert trailers(error)["x-ls-delete-marker"] == marker
    # A read of the marker's version is refused as S3 refuses it (405 there).
    for method, request in (
        ("HeadObject", pb.HeadObjectRequest(bucket="vers", key="k", version_id=marker)),
        ("ReadObject", pb.ReadObjectRequest(bucket="vers", key="k", version_id=marker)),
    ):
        call = calls.object(method, request)
        if method == "ReadObject":
            call = _drain(call)
        error = await expect_status(call, S.FAILED_PRECONDITION, "MethodNotAllowed")
        assert trailers(error)["x-ls-delete-marker"] == marker
    assert await calls.versions("vers") == [
        ("k", marker, True, True),
        ("k", written.version_id, False, False),
    ]
    # Copying from the marker by id is refused; the listing is unchanged.
    call = calls.object(
        "CopyObject",
        pb.CopyObjectRequest(
            source_bucket="vers", source_key="k", bucket="vers", key="c", source_version_id=marker
        ),
    )
    await expect_status(call, S.INVALID_ARGUMENT, "InvalidRequest")

    undeleted = await calls.object(
        "DeleteObject", pb.DeleteObjectRequest(bucket="vers", key="k", version_id=marker)
    )
    assert (undeleted.existed, undeleted.version_id, undeleted.delete_marker) == (
        True,
        marker,
        True,
    )
    assert await calls.read("vers", "k") == b"data"
    assert await calls.versions("vers") == [("k", written.version_id, True, False)]


async def _drain(call: object) -> None:
    async for _message in call:  # type: ignore[attr-defined]
        pass


@grpc_test
async def test_deleting_one_version_for_good(env: GrpcEnv) -> None:
    calls = await versioned(env)
    old = await calls.put("vers", "k", b"old")
    new = await calls.put("vers", "k", b"new")
    gone = await calls.object(
        "DeleteObject", pb.DeleteObjectRequest(bucket="vers", key="k", version_id=old.version_id)
    )
    assert (gone.existed, gone.version_id, gone.delete_marker) == (True, old.version_id, False)
    # Already gone: S3 answers such a delete with success too.
    again = await calls.object(
        "DeleteObject", pb.DeleteObjectRequest(bucket="vers", key="k", version_id=old.version_id)
    )
    assert (again.existed, again.version_id) == (False, old.version_id)
    assert await calls.versions("vers") == [("k", new.version_id, True, False)]
    # Deleting the current version makes the newest other one current (here: none is left).
    await calls.object(
        "DeleteObject", pb.DeleteObjectRequest(bucket="vers", key="k", version_id=new.version_id)
    )
    assert await calls.versions("vers") == []
    assert (await env.store.list_objects("vers")).entries == ()


@grpc_test
async def test_copy_from_an_old_version(env: GrpcEnv) -> None:
    calls = await versioned(env)
    old = await calls.put("vers", "k", b"old bytes")
    await calls.put("vers", "k", b"new bytes")
    copied = await calls.object(
        "CopyObject",
        pb.CopyObjectRequest(
            source_bucket="vers",
            source_key="k",
            bucket="vers",
            key="copy",
            source_version_id=old.version_id,
        ),
    )
    assert HEX32.fullmatch(copied.version_id) and copied.etag == old.etag
    assert await calls.read("vers", "copy") == b"old bytes"
    # A copy of a version onto its own key restores it as a new version, no replace needed.
    restored = await calls.object(
        "CopyObject",
        pb.CopyObjectRequest(
            source_bucket="vers",
            source_key="k",
            bucket="vers",
            key="k",
            source_version_id=old.version_id,
        ),
    )
    assert await calls.read("vers", "k") == b"old bytes"
    assert next(v[1] for v in await calls.versions("vers", prefix="k")) == restored.version_id


# --- bad version ids -------------------------------------------------------------------------
def _requests_naming(version_id: str) -> list[tuple[str, object]]:
    return [
        ("HeadObject", pb.HeadObjectRequest(bucket="vers", key="k", version_id=version_id)),
        ("ReadObject", pb.ReadObjectRequest(bucket="vers", key="k", version_id=version_id)),
        ("DeleteObject", pb.DeleteObjectRequest(bucket="vers", key="k", version_id=version_id)),
        (
            "CopyObject",
            pb.CopyObjectRequest(
                source_bucket="vers",
                source_key="k",
                bucket="vers",
                key="c",
                source_version_id=version_id,
            ),
        ),
        (
            "ListObjectVersions",
            pb.ListObjectVersionsRequest(
                bucket="vers", key_marker="k", version_id_marker=version_id
            ),
        ),
    ]


@grpc_test
@pytest.mark.parametrize("version_id", BAD_VERSION_IDS)
async def test_a_malformed_version_id_is_invalid_argument(env: GrpcEnv, version_id: str) -> None:
    calls = await versioned(env)
    written = await calls.put("vers", "k", b"data")
    for method, request in _requests_naming(version_id):
        call = calls.object(method, request)
        if method == "ReadObject":
            call = _drain(call)
        await expect_status(call, S.INVALID_ARGUMENT, "InvalidArgument")
    assert await calls.read("vers", "k") == b"data"
    assert await calls.versions("vers") == [("k", written.version_id, True, False)]


@grpc_test
async def test_an_unknown_version_is_no_such_version(env: GrpcEnv) -> None:
    calls = await versioned(env)
    written = await calls.put("vers", "k", b"data")
    for method, request in _requests_naming(UNKNOWN_VERSION)[:2]:
        call = calls.object(method, request)
        if method == "ReadObject":
            call = _drain(call)
        await expect_status(call, S.NOT_FOUND, "NoSuchVersion")
    copy = calls.object("CopyObject", _requests_naming(UNKNOWN_VERSION)[3][1])
    await expect_status(copy, S.NOT_FOUND, "NoSuchVersion")
    assert await calls.versions("vers") == [("k", written.version_id, True, False)]


# --- ListObjectVersions ----------------------------------------------------------------------
async def _history(calls: Calls) -> list[tuple[str, str, bool, bool]]:
    """a: two versions; a/b: one, then a delete marker; b: one; c/d: one."""
    a1 = await calls.put("vers", "a", b"1")
    a2 = await calls.put("vers", "a", b"22")
    ab = await calls.put("vers", "a/b", b"3")
    marker = await calls.object("DeleteObject", pb.DeleteObjectRequest(bucket="vers", key="a/b"))
    b = await calls.put("vers", "b", b"4")
    cd = await calls.put("vers", "c/d", b"5")
    return [
        ("a", a2.version_id, True, False),
        ("a", a1.version_id, False, False),
        ("a/b", marker.version_id, True, True),
        ("a/b", ab.version_id, False, False),
        ("b", b.version_id, True, False),
        ("c/d", cd.version_id, True, False),
    ]


@grpc_test
async def test_versions_list_in_key_order_newest_first_and_page_alike(env: GrpcEnv) -> None:
    calls = await versioned(env)
    expected = await _history(calls)
    page = await calls.object("ListObjectVersions", pb.ListObjectVersionsRequest(bucket="vers"))
    assert [(v.key, v.version_id, v.is_latest, v.delete_marker) for v in page.versions] == expected
    assert page.next_page_token == ""
    first = page.versions[1]
    assert (first.bucket, first.size, first.etag) == (
        "vers",
        1,
        (await env.store.head_object("vers", "a", version_id=first.version_id)).etag,
    )
    assert page.versions[2].size == 0 and page.versions[2].etag == ""

    for size in (1, 2, 4):
        seen: list[tuple[str, str, bool, bool]] = []
        request = pb.ListObjectVersionsRequest(bucket="vers", page_size=size)
        while True:
            page = await calls.object("ListObjectVersions", request)
            assert len(page.versions) <= size
            seen += [(v.key, v.version_id, v.is_latest, v.delete_marker) for v in page.versions]
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
        assert seen == expected


@grpc_test
async def test_version_listing_markers_prefix_and_delimiter(env: GrpcEnv) -> None:
    calls = await versioned(env)
    expected = await _history(calls)
    assert await calls.versions("vers", key_marker="a") == expected[2:]
    assert (
        await calls.versions("vers", key_marker="a", version_id_marker=expected[0][1])
        == (expected[1:])
    )
    assert await calls.versions("vers", prefix="a/") == expected[2:4]
    page = await calls.object(
        "ListObjectVersions", pb.ListObjectVersionsRequest(bucket="vers", delimiter="/")
    )
    assert [(v.key, v.version_id) for v in page.versions] == [
        (e[0], e[1]) for e in expected if "/" not in e[0]
    ]
    assert list(page.common_prefixes) == ["a/", "c/"]


@grpc_test
async def test_bad_version_listing_requests(env: GrpcEnv) -> None:
    calls = await versioned(env)
    expected = await _history(calls)
    objects_page = await calls.object(
        "ListObjects", pb.ListObjectsRequest(bucket="vers", page_size=1)
    )
    versions_page = await calls.object(
        "ListObjectVersions", pb.ListObjectVersionsRequest(bucket="vers", page_size=1)
    )
    token = versions_page.next_page_token
    for request in (
        # A version id marker needs a key marker.
        pb.ListObjectVersionsRequest(bucket="vers", version_id_marker=expected[0][1]),
        pb.ListObjectVersionsRequest(bucket="vers", page_size=1001),
        pb.ListObjectVersionsRequest(bucket="vers", page_size=-1),
        pb.ListObjectVersionsRequest(bucket="vers", page_token="not-a-token"),
        pb.ListObjectVersionsRequest(bucket="vers", page_token=token[:-2] + "AA"),
        # A ListObjects token is not a version listing's position.
        pb.ListObjectVersionsRequest(bucket="vers", page_token=objects_page.next_page_token),
    ):
        call = calls.object("ListObjectVersions", request)
        await expect_status(call, S.INVALID_ARGUMENT, "InvalidArgument")
    call = calls.object("ListObjectVersions", pb.ListObjectVersionsRequest(bucket="nope"))
    await expect_status(call, S.NOT_FOUND, "NoSuchBucket")
    assert await calls.versions("vers") == expected
