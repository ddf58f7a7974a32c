"""Versioning and object lock through the S3 door of a real daemon: boto3 for the exact errors
of every bad input (and that stored data is intact after each), aws-cli for the round trip a
backup operator types."""

from __future__ import annotations

import asyncio
import datetime
import json
import subprocess
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lightningstor.client.admin import AdminClient
from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon, aws_env_of
from tests.e2e.test_access import s3_as
from tests.e2e.test_awscli import VENV_AWS, run_aws

UNKNOWN = "0" * 32


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response: Any = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def versioned(s3: Any, name: str) -> str:
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def listed(s3: Any, bucket: str) -> list[tuple[str, str, bool]]:
    """(key, version id, is a delete marker): versions, then delete markers, each kind in
    the order ListObjectVersions gives it (boto3 parses the two kinds apart)."""
    reply = s3.list_object_versions(Bucket=bucket)
    return [(v["Key"], v["VersionId"], False) for v in reply.get("Versions", [])] + [
        (m["Key"], m["VersionId"], True) for m in reply.get("DeleteMarkers", [])
    ]


def test_versioning_states_and_their_refusals(s3: Any) -> None:
    s3.create_bucket(Bucket="states")
    assert "Status" not in s3.get_bucket_versioning(Bucket="states")
    for bad in ("Off", "enabled", ""):
        with pytest.raises(ClientError) as refused:
            s3.put_bucket_versioning(Bucket="states", VersioningConfiguration={"Status": bad})
        assert error_of(refused) == ("MalformedXML", 400)
    assert "Status" not in s3.get_bucket_versioning(Bucket="states")
    s3.put_bucket_versioning(Bucket="states", VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket="states")["Status"] == "Suspended"
    s3.put_bucket_versioning(Bucket="states", VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket="states")["Status"] == "Enabled"
    with pytest.raises(ClientError) as absent:
        s3.put_bucket_versioning(
            Bucket="no-such-bkt", VersioningConfiguration={"Status": "Enabled"}
        )
    assert error_of(absent) == ("NoSuchBucket", 404)


def test_bad_version_ids_get_s3s_errors_and_lose_nothing(s3: Any) -> None:
    bucket = versioned(s3, "badids")
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"safe")
    version = put["VersionId"]
    for call in (s3.get_object, s3.head_object, s3.delete_object):
        with pytest.raises(ClientError) as malformed:
            call(Bucket=bucket, Key="k", VersionId="not-a-version-id")
        assert error_of(malformed)[1] == 400
    with pytest.raises(ClientError) as malformed_get:
        s3.get_object(Bucket=bucket, Key="k", VersionId="not-a-version-id")
    assert error_of(malformed_get) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as unknown:
        s3.get_object(Bucket=bucket, Key="k", VersionId=UNKNOWN)
    assert error_of(unknown) == ("NoSuchVersion", 404)
    with pytest.raises(ClientError) as unknown_head:
        s3.head_object(Bucket=bucket, Key="k", VersionId=UNKNOWN)
    assert error_of(unknown_head)[1] == 404
    # Deleting a version that never was succeeds and changes nothing (as S3 answers it).
    gone = s3.delete_object(Bucket=bucket, Key="k", VersionId=UNKNOWN)
    assert gone["VersionId"] == UNKNOWN
    with pytest.raises(ClientError) as marker_without_key:
        s3.list_object_versions(Bucket=bucket, VersionIdMarker=version)
    assert error_of(marker_without_key) == ("InvalidArgument", 400)
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=version)["Body"].read() == b"safe"
    assert listed(s3, bucket) == [("k", version, False)]


def test_delete_markers_hide_answer_405_and_undelete(s3: Any) -> None:
    bucket = versioned(s3, "markers")
    kept = s3.put_object(Bucket=bucket, Key="k", Body=b"kept")["VersionId"]
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    with pytest.raises(ClientError) as hidden:
        s3.get_object(Bucket=bucket, Key="k")
    assert error_of(hidden) == ("NoSuchKey", 404)
    headers = hidden.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert (headers["x-amz-delete-marker"], headers["x-amz-version-id"]) == ("true", marker)
    with pytest.raises(ClientError) as on_marker:
        s3.get_object(Bucket=bucket, Key="k", VersionId=marker)
    assert error_of(on_marker) == ("MethodNotAllowed", 405)
    with pytest.raises(ClientError) as copy_marker:
        s3.copy_object(
            Bucket=bucket,
            Key="copy",
            CopySource={"Bucket": bucket, "Key": "k", "VersionId": marker},
        )
    assert error_of(copy_marker) == ("InvalidRequest", 400)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="part")["UploadId"]
    with pytest.raises(ClientError) as part_of_marker:
        s3.upload_part_copy(
            Bucket=bucket,
            Key="part",
            UploadId=upload,
            PartNumber=1,
            CopySource={"Bucket": bucket, "Key": "k", "VersionId": marker},
        )
    assert error_of(part_of_marker) == ("InvalidRequest", 400)
    s3.abort_multipart_upload(Bucket=bucket, Key="part", UploadId=upload)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    assert listed(s3, bucket) == [("k", kept, False), ("k", marker, True)]
    undone = s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    assert (undone["DeleteMarker"], undone["VersionId"]) == (True, marker)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"kept"


def test_versions_through_copy_multipart_and_delete_objects(s3: Any) -> None:
    bucket = versioned(s3, "through")
    old = s3.put_object(Bucket=bucket, Key="src", Body=b"old")["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"new")
    copied = s3.copy_object(
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src", "VersionId": old}
    )
    assert copied["CopySourceVersionId"] == old and copied["VersionId"] not in (old, "null")
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"old"
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part = s3.upload_part_copy(
        Bucket=bucket,
        Key="mp",
        UploadId=upload,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src", "VersionId": old},
    )
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]},
    )
    assert done["VersionId"] not in ("", "null")
    assert s3.get_object(Bucket=bucket, Key="mp", VersionId=done["VersionId"])["Body"].read() == (
        b"old"
    )
    reply = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "src", "VersionId": old}, {"Key": "dst"}]},
    )
    deleted = {(d["Key"], d.get("DeleteMarker", False)) for d in reply["Deleted"]}
    assert deleted == {("src", False), ("dst", True)}
    assert [v for k, v, _ in listed(s3, bucket) if k == "src"] != [old]
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == b"new"


def test_conditional_reads_test_the_current_version(s3: Any) -> None:
    bucket = versioned(s3, "conds")
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    s3.put_object(Bucket=bucket, Key="k", Body=b"2")
    with pytest.raises(ClientError) as stale:
        s3.get_object(Bucket=bucket, Key="k", IfMatch=first["ETag"])
    assert error_of(stale) == ("PreconditionFailed", 412)
    body = s3.get_object(
        Bucket=bucket, Key="k", VersionId=first["VersionId"], IfMatch=first["ETag"]
    )
    assert body["Body"].read() == b"1"


def test_object_lock_configuration_and_its_refusals(s3: Any) -> None:
    s3.create_bucket(Bucket="lockcfg", ObjectLockEnabledForBucket=True)
    assert s3.get_bucket_versioning(Bucket="lockcfg")["Status"] == "Enabled"
    config = s3.get_object_lock_configuration(Bucket="lockcfg")["ObjectLockConfiguration"]
    assert config == {"ObjectLockEnabled": "Enabled"}
    with pytest.raises(ClientError) as suspend:
        s3.put_bucket_versioning(Bucket="lockcfg", VersioningConfiguration={"Status": "Suspended"})
    assert error_of(suspend) == ("InvalidBucketState", 409)
    rule = {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}
    s3.put_object_lock_configuration(
        Bucket="lockcfg",
        ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": rule},
    )
    stored = s3.get_object_lock_configuration(Bucket="lockcfg")["ObjectLockConfiguration"]
    assert stored["Rule"] == rule
    for bad in (
        {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 0}},
        {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1, "Years": 1}},
    ):
        with pytest.raises(ClientError) as refused:
            s3.put_object_lock_configuration(
                Bucket="lockcfg",
                ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": bad},
            )
        assert error_of(refused)[1] == 400
    stored = s3.get_object_lock_configuration(Bucket="lockcfg")["ObjectLockConfiguration"]
    assert stored["Rule"] == rule
    s3.create_bucket(Bucket="nolock")
    with pytest.raises(ClientError) as no_lock:
        s3.get_object_lock_configuration(Bucket="nolock")
    assert error_of(no_lock) == ("ObjectLockConfigurationNotFoundError", 404)
    with pytest.raises(ClientError) as unlocked_put:
        s3.put_object(
            Bucket="nolock",
            Key="k",
            Body=b"x",
            ObjectLockMode="GOVERNANCE",
            ObjectLockRetainUntilDate=datetime.datetime.now(datetime.UTC)
            + datetime.timedelta(days=1),
        )
    assert error_of(unlocked_put) == ("InvalidRequest", 400)
    assert "Contents" not in s3.list_objects_v2(Bucket="nolock")


def test_retention_headers_and_requests(s3: Any) -> None:
    s3.create_bucket(Bucket="retain", ObjectLockEnabledForBucket=True)
    until = datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(days=1)
    put = s3.put_object(
        Bucket="retain",
        Key="k",
        Body=b"held",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=until,
        ObjectLockLegalHoldStatus="ON",
    )
    version = put["VersionId"]
    head = s3.head_object(Bucket="retain", Key="k")
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == ("GOVERNANCE", until)
    assert head["ObjectLockLegalHoldStatus"] == "ON"
    retention = s3.get_object_retention(Bucket="retain", Key="k", VersionId=version)
    assert retention["Retention"] == {"Mode": "GOVERNANCE", "RetainUntilDate": until}
    with pytest.raises(ClientError) as past:
        s3.put_object(
            Bucket="retain",
            Key="k2",
            Body=b"x",
            ObjectLockMode="GOVERNANCE",
            ObjectLockRetainUntilDate=until - datetime.timedelta(days=2),
        )
    assert error_of(past) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as mode_only:
        s3.put_object(Bucket="retain", Key="k2", Body=b"x", ObjectLockMode="GOVERNANCE")
    assert error_of(mode_only) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as held:
        s3.delete_object(
            Bucket="retain", Key="k", VersionId=version, BypassGovernanceRetention=True
        )
    assert error_of(held) == ("AccessDenied", 403)
    s3.put_object_legal_hold(Bucket="retain", Key="k", LegalHold={"Status": "OFF"})
    assert s3.get_object_legal_hold(Bucket="retain", Key="k")["LegalHold"] == {"Status": "OFF"}
    with pytest.raises(ClientError) as governed:
        s3.delete_object(Bucket="retain", Key="k", VersionId=version)
    assert error_of(governed) == ("AccessDenied", 403)
    assert s3.get_object(Bucket="retain", Key="k", VersionId=version)["Body"].read() == b"held"
    s3.delete_object(Bucket="retain", Key="k", VersionId=version, BypassGovernanceRetention=True)
    assert "Versions" not in s3.list_object_versions(Bucket="retain")


def test_bypass_is_honoured_only_for_a_key_allowed_to_bypass(daemon: Daemon, s3: Any) -> None:
    s3.create_bucket(Bucket="bypass", ObjectLockEnabledForBucket=True)
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    version = s3.put_object(
        Bucket="bypass",
        Key="k",
        Body=b"governed",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=until,
    )["VersionId"]

    async def limited_key() -> tuple[str, str]:
        async with AdminClient(
            daemon.grpc_target, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
        ) as admin:
            made = await admin.create("bypasser", grants={"bypass": "readwrite"})
            return made.key.access_key_id, made.secret_access_key

    limited = s3_as(daemon, *asyncio.run(limited_key()))
    with pytest.raises(ClientError) as refused:
        limited.delete_object(
            Bucket="bypass", Key="k", VersionId=version, BypassGovernanceRetention=True
        )
    assert error_of(refused) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as shortened:
        limited.put_object_retention(
            Bucket="bypass",
            Key="k",
            VersionId=version,
            Retention={
                "Mode": "GOVERNANCE",
                "RetainUntilDate": until - datetime.timedelta(hours=1),
            },
            BypassGovernanceRetention=True,
        )
    assert error_of(shortened) == ("AccessDenied", 403)
    assert s3.get_object(Bucket="bypass", Key="k", VersionId=version)["Body"].read() == b"governed"
    limited.close()


def cli_json(daemon: Daemon, *args: str) -> Any:
    out = run_aws(VENV_AWS, daemon, "s3api", *args)
    return json.loads(out) if out.strip() else {}


def cli_error(daemon: Daemon, *args: str) -> str:
    done = subprocess.run(
        [VENV_AWS, "--endpoint-url", daemon.endpoint, "s3api", *args],
        env=aws_env_of(daemon),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0, done.stdout
    return done.stderr


def test_awscli_round_trip(daemon: Daemon) -> None:
    """Enable versioning, overwrite three times, list, read an old version, delete (a marker),
    undelete; then COMPLIANCE refuses even the admin key and GOVERNANCE yields to its bypass."""
    b = "cli-versions"
    cli_json(daemon, "create-bucket", "--bucket", b)
    cli_json(
        daemon,
        "put-bucket-versioning",
        "--bucket",
        b,
        "--versioning-configuration",
        "Status=Enabled",
    )
    assert cli_json(daemon, "get-bucket-versioning", "--bucket", b)["Status"] == "Enabled"
    ids = []
    for n in range(3):
        body = daemon.data_dir.parent / f"body{n}"
        body.write_bytes(b"revision %d" % n)
        put = cli_json(daemon, "put-object", "--bucket", b, "--key", "doc", "--body", str(body))
        ids.append(put["VersionId"])
    versions = cli_json(daemon, "list-object-versions", "--bucket", b)
    assert [v["VersionId"] for v in versions["Versions"]] == ids[::-1]
    assert [v["IsLatest"] for v in versions["Versions"]] == [True, False, False]
    out = daemon.data_dir.parent / "old"
    cli_json(daemon, "get-object", "--bucket", b, "--key", "doc", "--version-id", ids[0], str(out))
    assert out.read_bytes() == b"revision 0"
    marker = cli_json(daemon, "delete-object", "--bucket", b, "--key", "doc")
    assert marker["DeleteMarker"] is True
    assert "Not Found" in cli_error(daemon, "head-object", "--bucket", b, "--key", "doc")
    cli_json(
        daemon, "delete-object", "--bucket", b, "--key", "doc", "--version-id", marker["VersionId"]
    )
    assert cli_json(daemon, "head-object", "--bucket", b, "--key", "doc")["VersionId"] == ids[2]

    locked = "cli-locked"
    cli_json(daemon, "create-bucket", "--bucket", locked, "--object-lock-enabled-for-bucket")
    until = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    versions_by_mode = {}
    for mode in ("COMPLIANCE", "GOVERNANCE"):
        put = cli_json(
            daemon,
            "put-object",
            "--bucket",
            locked,
            "--key",
            mode.lower(),
            "--object-lock-mode",
            mode,
            "--object-lock-retain-until-date",
            until,
        )
        versions_by_mode[mode] = put["VersionId"]
    compliance = ("--bucket", locked, "--key", "compliance")
    refused = cli_error(
        daemon,
        "delete-object",
        *compliance,
        "--version-id",
        versions_by_mode["COMPLIANCE"],
        "--bypass-governance-retention",
    )
    assert "AccessDenied" in refused
    governance = ("--bucket", locked, "--key", "governance")
    assert "AccessDenied" in cli_error(
        daemon, "delete-object", *governance, "--version-id", versions_by_mode["GOVERNANCE"]
    )
    cli_json(
        daemon,
        "delete-object",
        *governance,
        "--version-id",
        versions_by_mode["GOVERNANCE"],
        "--bypass-governance-retention",
    )
    left = cli_json(daemon, "list-object-versions", "--bucket", locked)
    assert [(v["Key"], v["VersionId"]) for v in left["Versions"]] == [
        ("compliance", versions_by_mode["COMPLIANCE"])
    ]
