"""Object lock over gRPC: buckets created with it, default retention, a version's retention and
legal hold on write, copy and multipart, SetObjectRetention and SetObjectLegalHold, and what a
lock refuses (a COMPLIANCE version even to an admin bypassing, GOVERNANCE only to an admin
bypassing, never to a limited key asking to), with the versions intact afterwards."""

from __future__ import annotations

import time
from typing import Any

import grpc
import pytest

from lightningstor.v1 import storage_pb2 as pb
from tests.grpc.harness import GrpcEnv, MiB, expect_status, grpc_test
from tests.grpc.versioning_calls import Calls, writer_key

S = grpc.StatusCode
DAY_NS = 86_400 * 10**9
GOVERNANCE, COMPLIANCE = pb.RETENTION_MODE_GOVERNANCE, pb.RETENTION_MODE_COMPLIANCE


def retention(mode: pb.RetentionMode, *, days: float = 1) -> pb.ObjectRetention:
    return pb.ObjectRetention(
        mode=mode, retain_until_unix_nanos=time.time_ns() + int(days * DAY_NS)
    )


async def locked(env: GrpcEnv, name: str = "locked") -> Calls:
    calls = Calls(env)
    created = await calls.bucket(
        "CreateBucket", pb.CreateBucketRequest(name=name, object_lock_enabled=True)
    )
    assert created.versioning == pb.VERSIONING_STATUS_ENABLED
    assert created.HasField("object_lock")
    assert not created.object_lock.HasField("default_retention")
    return calls


async def plain(env: GrpcEnv) -> Calls:
    calls = Calls(env)
    await calls.bucket("CreateBucket", pb.CreateBucketRequest(name="plain"))
    return calls


def delete(bucket: str, version_id: str, *, bypass: bool = False) -> pb.DeleteObjectRequest:
    return pb.DeleteObjectRequest(
        bucket=bucket, key="k", version_id=version_id, bypass_governance_retention=bypass
    )


# --- bucket configuration --------------------------------------------------------------------
@grpc_test
async def test_versioning_of_a_locked_bucket_cannot_be_suspended(env: GrpcEnv) -> None:
    calls = await locked(env)
    call = calls.bucket(
        "SetBucketVersioning",
        pb.SetBucketVersioningRequest(name="locked", status=pb.VERSIONING_STATUS_SUSPENDED),
    )
    await expect_status(call, S.FAILED_PRECONDITION, "InvalidBucketState")
    got = await calls.bucket("GetBucket", pb.GetBucketRequest(name="locked"))
    assert got.versioning == pb.VERSIONING_STATUS_ENABLED and got.HasField("object_lock")


@grpc_test
async def test_object_lock_needs_versioning_then_stays(env: GrpcEnv) -> None:
    calls = await plain(env)
    request = pb.SetObjectLockConfigurationRequest(name="plain")
    call = calls.bucket("SetObjectLockConfiguration", request)
    await expect_status(call, S.FAILED_PRECONDITION, "InvalidBucketState")
    assert (await env.store.head_bucket("plain")).object_lock is None
    await calls.bucket(
        "SetBucketVersioning",
        pb.SetBucketVersioningRequest(name="plain", status=pb.VERSIONING_STATUS_ENABLED),
    )
    default = pb.DefaultRetention(mode=COMPLIANCE, years=2)
    request = pb.SetObjectLockConfigurationRequest(name="plain", default_retention=default)
    bucket = await calls.bucket("SetObjectLockConfiguration", request)
    assert bucket.object_lock.default_retention == default
    assert await calls.bucket("GetBucket", pb.GetBucketRequest(name="plain")) == bucket
    # Taken off again: the lock stays, without a default.
    cleared = await calls.bucket(
        "SetObjectLockConfiguration", pb.SetObjectLockConfigurationRequest(name="plain")
    )
    assert cleared.HasField("object_lock") and not cleared.object_lock.HasField("default_retention")
    call = calls.bucket(
        "SetObjectLockConfiguration", pb.SetObjectLockConfigurationRequest(name="nope")
    )
    await expect_status(call, S.NOT_FOUND, "NoSuchBucket")


@grpc_test
@pytest.mark.parametrize(
    "default",
    [
        pb.DefaultRetention(mode=GOVERNANCE),
        pb.DefaultRetention(mode=GOVERNANCE, days=1, years=1),
        pb.DefaultRetention(mode=GOVERNANCE, days=-1),
        pb.DefaultRetention(mode=GOVERNANCE, years=-1),
        pb.DefaultRetention(mode=GOVERNANCE, days=36501),
        pb.DefaultRetention(mode=COMPLIANCE, years=101),
        pb.DefaultRetention(mode=COMPLIANCE, years=2**31 - 1),
        pb.DefaultRetention(days=1),
        pb.DefaultRetention(mode=9, days=1),  # type: ignore[arg-type]
    ],
)
async def test_a_bad_default_retention_is_invalid(
    env: GrpcEnv, default: pb.DefaultRetention
) -> None:
    calls = await locked(env)
    kept = pb.DefaultRetention(mode=GOVERNANCE, days=3)
    await calls.bucket(
        "SetObjectLockConfiguration",
        pb.SetObjectLockConfigurationRequest(name="locked", default_retention=kept),
    )
    request = pb.SetObjectLockConfigurationRequest(name="locked", default_retention=default)
    call = calls.bucket("SetObjectLockConfiguration", request)
    await expect_status(call, S.INVALID_ARGUMENT, "InvalidArgument")
    got = await calls.bucket("GetBucket", pb.GetBucketRequest(name="locked"))
    assert got.object_lock.default_retention == kept


@grpc_test
async def test_the_default_retention_locks_new_versions(env: GrpcEnv) -> None:
    calls = await locked(env)
    await calls.bucket(
        "SetObjectLockConfiguration",
        pb.SetObjectLockConfigurationRequest(
            name="locked", default_retention=pb.DefaultRetention(mode=GOVERNANCE, days=2)
        ),
    )
    before = time.time_ns()
    written = await calls.put("locked", "k", b"x")
    assert written.retention.mode == GOVERNANCE
    until = written.retention.retain_until_unix_nanos
    assert before + 2 * DAY_NS <= until <= time.time_ns() + 2 * DAY_NS
    # Asked for, a retention of its own wins over the default.
    own = retention(COMPLIANCE, days=5)
    asked = await calls.put("locked", "k2", b"y", retention=own)
    assert asked.retention == own


# --- locks on write --------------------------------------------------------------------------
@grpc_test
async def test_a_write_locks_its_version_and_head_reports_it(env: GrpcEnv) -> None:
    calls = await locked(env)
    asked = retention(GOVERNANCE)
    written = await calls.put("locked", "k", b"held", retention=asked, legal_hold=True)
    assert (written.retention, written.legal_hold) == (asked, True)
    head = await calls.object(
        "HeadObject",
        pb.HeadObjectRequest(bucket="locked", key="k", version_id=written.version_id),
    )
    assert (head.retention, head.legal_hold) == (asked, True)
    stored = await env.store.head_object("locked", "k")
    assert (
        stored.retention is not None and stored.retention.until_ns == asked.retain_until_unix_nanos
    )
    # Asking for no hold is asking too: it is recorded as off.
    unheld = await calls.put("locked", "k2", b"x", legal_hold=False)
    assert not unheld.legal_hold and not unheld.HasField("retention")


@grpc_test
@pytest.mark.parametrize(
    ("asked", "code"),
    [
        ({"retention": pb.ObjectRetention(mode=GOVERNANCE)}, "InvalidArgument"),
        ({"retention": retention(GOVERNANCE, days=-1)}, "InvalidArgument"),
        ({"retention": retention(pb.RETENTION_MODE_UNSPECIFIED)}, "InvalidArgument"),
        ({"retention": pb.ObjectRetention(retain_until_unix_nanos=time.time_ns() + DAY_NS)},
         "InvalidArgument"),
    ],
)  # fmt: skip
async def test_a_bad_lock_on_write_stores_nothing(
    env: GrpcEnv, asked: dict[str, pb.ObjectRetention], code: str
) -> None:
    calls = await locked(env)
    first = await calls.put("locked", "k", b"first")
    await expect_status(calls.write("locked", "k", b"second", **asked), S.INVALID_ARGUMENT, code)
    assert await calls.versions("locked") == [("k", first.version_id, True, False)]
    assert await calls.read("locked", "k") == b"first"
    assert env.staged_files() == []


@grpc_test
@pytest.mark.parametrize("asked", [{"retention": retention(GOVERNANCE)}, {"legal_hold": False}])
async def test_a_lock_asked_of_a_bucket_without_object_lock_is_invalid_request(
    env: GrpcEnv, asked: dict[str, Any]
) -> None:
    calls = await plain(env)
    await expect_status(
        calls.write("plain", "k", b"x", **asked), S.INVALID_ARGUMENT, "InvalidRequest"
    )
    call = calls.multipart(
        "CreateMultipartUpload", pb.CreateMultipartUploadRequest(bucket="plain", key="k", **asked)
    )
    await expect_status(call, S.INVALID_ARGUMENT, "InvalidRequest")
    assert (await env.store.list_objects("plain")).entries == ()
    assert (await env.store.uploads.list_uploads("plain"))[0] == []


@grpc_test
async def test_copy_and_multipart_lock_the_versions_they_make(env: GrpcEnv) -> None:
    calls = await locked(env)
    source = await calls.put(
        "locked", "src", b"s", retention=retention(COMPLIANCE), legal_hold=True
    )
    # The source's lock is not copied...
    plain_copy = await calls.object(
        "CopyObject",
        pb.CopyObjectRequest(source_bucket="locked", source_key="src", bucket="locked", key="c1"),
    )
    assert not plain_copy.HasField("retention") and not plain_copy.legal_hold
    # ...the copy's own is applied.
    asked = retention(GOVERNANCE, days=3)
    copied = await calls.object(
        "CopyObject",
        pb.CopyObjectRequest(
            source_bucket="locked",
            source_key="src",
            source_version_id=source.version_id,
            bucket="locked",
            key="c2",
            retention=asked,
            legal_hold=True,
        ),
    )
    assert (copied.retention, copied.legal_hold) == (asked, True)

    upload = await calls.multipart(
        "CreateMultipartUpload",
        pb.CreateMultipartUploadRequest(bucket="locked", key="big", retention=asked),
    )

    async def part() -> object:
        spec = pb.PartSpec(bucket="locked", key="big", upload_id=upload.upload_id, part_number=1)
        yield pb.UploadPartRequest(spec=spec)
        yield pb.UploadPartRequest(data=b"p" * MiB, write_offset=0)
        yield pb.UploadPartRequest(write_offset=MiB, finish_write=True)

    uploaded = await calls.multipart("UploadPart", part())
    done = await calls.multipart(
        "CompleteMultipartUpload",
        pb.CompleteMultipartUploadRequest(
            bucket="locked",
            key="big",
            upload_id=upload.upload_id,
            parts=[pb.CompletedPart(part_number=1, etag=uploaded.etag)],
        ),
    )
    assert done.retention == asked and not done.legal_hold
    assert len(done.version_id) == 32
    head = await calls.object("HeadObject", pb.HeadObjectRequest(bucket="locked", key="big"))
    assert (head.version_id, head.retention) == (done.version_id, asked)


# --- what a lock refuses ---------------------------------------------------------------------
@grpc_test
async def test_compliance_is_refused_even_to_an_admin_bypassing(env: GrpcEnv) -> None:
    calls = await locked(env)
    asked = retention(COMPLIANCE)
    written = await calls.put("locked", "k", b"kept", retention=asked)
    for bypass in (False, True):
        call = calls.object("DeleteObject", delete("locked", written.version_id, bypass=bypass))
        await expect_status(call, S.PERMISSION_DENIED, "AccessDenied")
        for changed in (None, retention(COMPLIANCE, days=0.5), retention(GOVERNANCE, days=9)):
            request = pb.SetObjectRetentionRequest(
                bucket="locked",
                key="k",
                version_id=written.version_id,
                retention=changed,
                bypass_governance_retention=bypass,
            )
            call = calls.object("SetObjectRetention", request)
            await expect_status(call, S.PERMISSION_DENIED, "AccessDenied")
    assert await calls.read("locked", "k", written.version_id) == b"kept"
    assert (
        await calls.object("HeadObject", pb.HeadObjectRequest(bucket="locked", key="k"))
    ).retention == asked
    # Extending it is allowed.
    longer = retention(COMPLIANCE, days=3)
    extended = await calls.object(
        "SetObjectRetention",
        pb.SetObjectRetentionRequest(bucket="locked", key="k", retention=longer),
    )
    assert extended.retention == longer and extended.version_id == written.version_id
    # A delete without a version id only adds a delete marker: the locked version stays.
    marked = await calls.object("DeleteObject", pb.DeleteObjectRequest(bucket="locked", key="k"))
    assert marked.delete_marker
    assert await calls.read("locked", "k", written.version_id) == b"kept"


@grpc_test
async def test_governance_gives_way_to_an_admin_bypassing_only(env: GrpcEnv) -> None:
    calls = await locked(env)
    writer = await writer_key(env)
    asked = retention(GOVERNANCE)
    written = await calls.put("locked", "k", b"governed", retention=asked)
    version = written.version_id
    refused = [
        calls.object("DeleteObject", delete("locked", version)),
        # A limited key asking to bypass is refused as if it had not asked.
        writer.object("DeleteObject", delete("locked", version, bypass=True)),
        writer.object(
            "SetObjectRetention",
            pb.SetObjectRetentionRequest(
                bucket="locked", key="k", version_id=version, bypass_governance_retention=True
            ),
        ),
        calls.object(
            "SetObjectRetention",
            pb.SetObjectRetentionRequest(
                bucket="locked", key="k", retention=retention(GOVERNANCE, days=0.5)
            ),
        ),
    ]
    for call in refused:
        await expect_status(call, S.PERMISSION_DENIED, "AccessDenied")
    head = await calls.object("HeadObject", pb.HeadObjectRequest(bucket="locked", key="k"))
    assert head.retention == asked
    assert await calls.read("locked", "k", version) == b"governed"
    # The limited key may extend it: no bypass needed for that.
    longer = retention(GOVERNANCE, days=2)
    extended = await writer.object(
        "SetObjectRetention",
        pb.SetObjectRetentionRequest(
            bucket="locked", key="k", version_id=version, retention=longer
        ),
    )
    assert extended.retention == longer
    # An admin bypassing may shorten it, and delete the version.
    shorter = retention(GOVERNANCE, days=0.5)
    shortened = await calls.object(
        "SetObjectRetention",
        pb.SetObjectRetentionRequest(
            bucket="locked", key="k", retention=shorter, bypass_governance_retention=True
        ),
    )
    assert shortened.retention == shorter
    gone = await calls.object("DeleteObject", delete("locked", version, bypass=True))
    assert (gone.existed, gone.version_id) == (True, version)
    assert await calls.versions("locked") == []


@grpc_test
async def test_a_legal_hold_holds_until_lifted(env: GrpcEnv) -> None:
    calls = await locked(env)
    written = await calls.put("locked", "k", b"held")
    held = await calls.object(
        "SetObjectLegalHold",
        pb.SetObjectLegalHoldRequest(
            bucket="locked", key="k", version_id=written.version_id, legal_hold=True
        ),
    )
    assert held.legal_hold and held.version_id == written.version_id
    for bypass in (False, True):
        call = calls.object("DeleteObject", delete("locked", written.version_id, bypass=bypass))
        await expect_status(call, S.PERMISSION_DENIED, "AccessDenied")
    assert await calls.read("locked", "k", written.version_id) == b"held"
    lifted = await calls.object(
        "SetObjectLegalHold", pb.SetObjectLegalHoldRequest(bucket="locked", key="k")
    )
    assert not lifted.legal_hold
    await calls.object("DeleteObject", delete("locked", written.version_id))
    assert await calls.versions("locked") == []


@grpc_test
async def test_retention_and_hold_requests_that_cannot_apply(env: GrpcEnv) -> None:
    calls = await locked(env)
    written = await calls.put("locked", "k", b"data")
    marker = await calls.object("DeleteObject", pb.DeleteObjectRequest(bucket="locked", key="k"))
    await calls.put("locked", "k", b"newer")  # the marker is now noncurrent
    await calls.put("locked", "gone", b"x")
    await calls.object("DeleteObject", pb.DeleteObjectRequest(bucket="locked", key="gone"))
    plain_calls = await plain(env)
    await plain_calls.put("plain", "k", b"p")

    def both(bucket: str, version_id: str = "", key: str = "k") -> list[Any]:
        return [
            calls.object(
                "SetObjectRetention",
                pb.SetObjectRetentionRequest(
                    bucket=bucket, key=key, version_id=version_id, retention=retention(GOVERNANCE)
                ),
            ),
            calls.object(
                "SetObjectLegalHold",
                pb.SetObjectLegalHoldRequest(
                    bucket=bucket, key=key, version_id=version_id, legal_hold=True
                ),
            ),
        ]

    cases: list[tuple[list[Any], grpc.StatusCode, str]] = [
        (both("plain"), S.INVALID_ARGUMENT, "InvalidRequest"),
        (both("locked", "bad-id"), S.INVALID_ARGUMENT, "InvalidArgument"),
        (both("locked", "0123456789abcdef0123456789abcdef"), S.NOT_FOUND, "NoSuchVersion"),
        (both("locked", key="gone"), S.NOT_FOUND, "NoSuchKey"),  # its current one is a marker
        (both("locked", marker.version_id), S.FAILED_PRECONDITION, "MethodNotAllowed"),
        (both("locked", key="absent"), S.NOT_FOUND, "NoSuchKey"),
        (both("nope"), S.NOT_FOUND, "NoSuchBucket"),
    ]
    for calls_of_case, status, code in cases:
        for call in calls_of_case:
            await expect_status(call, status, code)
    # A retention with no mode, or no date, is refused.
    for bad in (pb.ObjectRetention(mode=GOVERNANCE), pb.ObjectRetention(retain_until_unix_nanos=1)):
        call = calls.object(
            "SetObjectRetention",
            pb.SetObjectRetentionRequest(
                bucket="locked", key="k", version_id=written.version_id, retention=bad
            ),
        )
        await expect_status(call, S.INVALID_ARGUMENT, "InvalidArgument")
    head = await calls.object(
        "HeadObject",
        pb.HeadObjectRequest(bucket="locked", key="k", version_id=written.version_id),
    )
    assert not head.HasField("retention") and not head.legal_hold


@grpc_test
async def test_the_longest_default_retentions_are_accepted(env: GrpcEnv) -> None:
    calls = await locked(env)
    for default in (
        pb.DefaultRetention(mode=GOVERNANCE, days=pb.MAX_RETENTION_DAYS),
        pb.DefaultRetention(mode=COMPLIANCE, years=pb.MAX_RETENTION_YEARS),
    ):
        bucket = await calls.bucket(
            "SetObjectLockConfiguration",
            pb.SetObjectLockConfigurationRequest(name="locked", default_retention=default),
        )
        assert bucket.object_lock.default_retention == default
    written = await calls.put("locked", "k", b"x")
    assert written.retention.mode == COMPLIANCE
    assert written.retention.retain_until_unix_nanos > time.time_ns() + 99 * 365 * DAY_NS
