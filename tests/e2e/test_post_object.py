"""Browser-form uploads: boto3's presigned POST (V2 in us-east-1, V4 elsewhere) used with
curl -F, and every policy rule enforced."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import Daemon
from tests.e2e.test_presigned import client as presigner

CURL = shutil.which("curl")


def post_form(url: str, fields: dict[str, str], file: Path) -> tuple[int, str]:
    assert CURL is not None, "curl is part of the test machine"
    args = [CURL, "-s", "-o", "-", "-w", "\n%{http_code}"]
    for name, value in fields.items():
        args += ["--form-string", f"{name}={value}"]
    args += ["-F", f"file=@{file}"]
    done = subprocess.run([*args, url], capture_output=True, text=True, timeout=30, check=True)
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket="forms")
    return "forms"


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1"])
def test_presigned_post_uploads_with_curl(
    daemon: Daemon, s3: Any, bucket: str, region: str, tmp_path: Path
) -> None:
    upload = tmp_path / "photo.jpg"
    upload.write_bytes(b"\xff\xd8 not really a jpeg")
    form = presigner(daemon, region).generate_presigned_post(
        bucket,
        "uploads/${filename}",
        Fields={"Content-Type": "image/jpeg", "success_action_status": "201"},
        Conditions=[
            ["starts-with", "$key", "uploads/"],
            {"Content-Type": "image/jpeg"},
            {"success_action_status": "201"},
            ["content-length-range", 1, 1024],
        ],
        ExpiresIn=60,
    )
    assert ("x-amz-signature" in form["fields"]) == (region != "us-east-1")
    status, body = post_form(form["url"], form["fields"], upload)
    assert status == 201, body
    assert "<Key>uploads/photo.jpg</Key>" in body
    got = s3.get_object(Bucket=bucket, Key="uploads/photo.jpg")
    assert got["Body"].read() == upload.read_bytes()
    assert got["ContentType"] == "image/jpeg"


def test_policy_rules_are_enforced(daemon: Daemon, s3: Any, bucket: str, tmp_path: Path) -> None:
    small = tmp_path / "small.txt"
    small.write_bytes(b"x" * 10)
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 2000)
    c = presigner(daemon, "eu-central-1")
    form = c.generate_presigned_post(
        bucket, "fixed/key", Conditions=[["content-length-range", 5, 1000]], ExpiresIn=60
    )
    fields = form["fields"]
    cases: list[tuple[dict[str, str], Path, int, str]] = [
        (fields, big, 400, "EntityTooLarge"),
        ({**fields, "key": "elsewhere"}, small, 403, "AccessDenied"),
        ({**fields, "x-amz-meta-extra": "1"}, small, 403, "Extra input fields"),
        ({**fields, "x-amz-signature": "0" * 64}, small, 403, "SignatureDoesNotMatch"),
        ({k: v for k, v in fields.items() if k != "x-amz-signature"}, small, 403, "AccessDenied"),
    ]
    for case_fields, file, status, marker in cases:
        got_status, body = post_form(form["url"], case_fields, file)
        assert (got_status, marker in body) == (status, True), (case_fields, body)
    expired = c.generate_presigned_post(bucket, "late", ExpiresIn=-10)
    status, body = post_form(expired["url"], expired["fields"], small)
    assert (status, "Policy expired" in body) == (403, True)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="fixed/")
    assert "Contents" not in listed
    assert post_form(form["url"], fields, small)[0] == 204
    assert s3.get_object(Bucket=bucket, Key="fixed/key")["Body"].read() == small.read_bytes()
    assert list((daemon.data_dir / "tmp").iterdir()) == []
