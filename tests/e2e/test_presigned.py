"""Presigned URLs as boto3 and aws-cli make them (SigV2 in us-east-1, SigV4 elsewhere), used
with plain HTTP clients, until they expire; and SigV2 header authentication."""

from __future__ import annotations

import datetime
import http.client
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.auth
import botocore.crt.auth
import pytest
from botocore.config import Config

from tests.daemon import ACCESS_KEY, Daemon, aws_env_of, boto3_client


def client(daemon: Daemon, region: str, **config: Any) -> Any:
    return boto3_client(daemon, region=region, **config)


def fetch(url: str, method: str = "GET", data: bytes | None = None) -> tuple[int, bytes]:
    """A bare HTTP request (no Content-Type added, unlike urllib), as curl would send it."""
    parsed = urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname or "", parsed.port, timeout=10)
    target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    conn.request(method, target, body=data)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket="presigned")
    s3.put_object(Bucket="presigned", Key="a b+c ü.txt", Body=b"shared by link")
    return "presigned"


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1"])
def test_presigned_get_head_put_delete(daemon: Daemon, bucket: str, region: str) -> None:
    c = client(daemon, region)
    url = c.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "a b+c ü.txt"}, ExpiresIn=60
    )
    assert ("Signature=" in url) and (("X-Amz-Signature" in url) == (region != "us-east-1"))
    assert fetch(url) == (200, b"shared by link")
    head = c.generate_presigned_url(
        "head_object", Params={"Bucket": bucket, "Key": "a b+c ü.txt"}, ExpiresIn=60
    )
    assert fetch(head, "HEAD")[0] == 200
    put = c.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": f"up-{region}"}, ExpiresIn=60
    )
    assert fetch(put, "PUT", b"uploaded by link")[0] == 200
    assert c.get_object(Bucket=bucket, Key=f"up-{region}")["Body"].read() == b"uploaded by link"
    delete = c.generate_presigned_url(
        "delete_object", Params={"Bucket": bucket, "Key": f"up-{region}"}, ExpiresIn=60
    )
    assert fetch(delete, "DELETE")[0] == 204
    c.close()


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1"])
def test_expired_and_tampered_links_fail(
    daemon: Daemon, bucket: str, region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = client(daemon, region)
    # Signed ten minutes ago for one minute: expired now, without waiting for it to be.
    signed_at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=10)
    with monkeypatch.context() as past:
        # botocore signs with awscrt when it is installed, with its own signers otherwise.
        for signer in (botocore.auth, botocore.crt.auth):
            past.setattr(signer, "get_current_datetime", lambda **_: signed_at)
        # SigV2 links (us-east-1) take their Expires from time.time() instead.
        past.setattr(botocore.auth.time, "time", signed_at.timestamp)
        url = c.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "a b+c ü.txt"}, ExpiresIn=60
        )
    status, body = fetch(url)
    assert (status, b"<Code>AccessDenied</Code>" in body, b"Request has expired" in body) == (
        403,
        True,
        True,
    )
    fresh = c.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "a b+c ü.txt"}, ExpiresIn=60
    )
    tampered = fresh.replace("a%20b%2Bc", "a%20b%2Bd")
    status, body = fetch(tampered)
    assert (status, b"<Code>SignatureDoesNotMatch</Code>" in body) == (403, True)
    c.close()


def test_presign_beyond_a_week_is_refused(daemon: Daemon, bucket: str) -> None:
    c = client(daemon, "eu-central-1")
    url = c.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "a b+c ü.txt"}, ExpiresIn=604801
    )
    status, body = fetch(url)
    assert (status, b"<Code>AuthorizationQueryParametersError</Code>" in body) == (400, True)
    c.close()


def test_sigv2_header_auth(daemon: Daemon, bucket: str) -> None:
    c = client(daemon, "us-east-1", signature_version="s3")
    assert c.get_object(Bucket=bucket, Key="a b+c ü.txt")["Body"].read() == b"shared by link"
    c.put_object(Bucket=bucket, Key="v2", Body=b"signed with v2", ContentType="text/plain")
    assert c.head_object(Bucket=bucket, Key="v2")["ContentType"] == "text/plain"
    wrong = boto3.client(
        "s3",
        endpoint_url=daemon.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key="nope" * 5,
        region_name="us-east-1",
        config=Config(signature_version="s3", retries={"max_attempts": 1}),
    )
    with pytest.raises(Exception, match="SignatureDoesNotMatch"):
        wrong.get_object(Bucket=bucket, Key="v2")
    c.close()
    wrong.close()


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1"])
def test_aws_cli_presign_with_curl(daemon: Daemon, bucket: str, region: str) -> None:
    curl = shutil.which("curl")
    assert curl is not None, "curl is part of the test machine"
    aws = str(Path(sys.executable).with_name("aws"))
    env = aws_env_of(daemon) | {"AWS_DEFAULT_REGION": region}
    done = subprocess.run(
        [
            aws,
            "--endpoint-url",
            daemon.endpoint,
            "s3",
            "presign",
            f"s3://{bucket}/a b+c ü.txt",
            "--expires-in",
            "60",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    url = done.stdout.strip()
    fetched = subprocess.run([curl, "-s", "-f", url], capture_output=True, timeout=30, check=False)
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout == b"shared by link"
