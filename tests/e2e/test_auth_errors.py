"""Every authentication error through raw HTTP and boto3, with S3's codes and fields."""

from __future__ import annotations

import http.client
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon
from tests.signing import sign


def raw(daemon: Daemon, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", daemon.s3_port, timeout=10)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body


def test_clock_skew(daemon: Daemon) -> None:
    old = (datetime.now(UTC) - timedelta(minutes=20)).strftime("%Y%m%dT%H%M%SZ")
    headers = sign("GET", f"{daemon.endpoint}/", headers={"X-Amz-Date": old})
    headers["X-Amz-Date"] = old
    status, body = raw(daemon, "/", headers)
    assert status == 403
    assert b"<Code>RequestTimeTooSkewed</Code>" in body
    assert b"<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>" in body


def test_unknown_key(daemon: Daemon) -> None:
    client: Any = boto3.client(
        "s3",
        endpoint_url=daemon.endpoint,
        aws_access_key_id="LSNOSUCHKEY000000000",
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as raised:
        client.list_buckets()
    assert raised.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    client.close()


@pytest.mark.parametrize(
    ("authorization", "code", "status"),
    [
        ("AWS4-HMAC-SHA256 Credential=broken", "AuthorizationHeaderMalformed", 400),
        (
            f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/us-east-1/s3/aws4_request, "
            "SignedHeaders=host, Signature=" + "0" * 64,
            "AuthorizationHeaderMalformed",
            400,
        ),
        ("Bearer token", "InvalidRequest", 400),
        (f"AWS {ACCESS_KEY}:bm90LWEtc2lnbmF0dXJl", "AccessDenied", 403),
    ],
)
def test_malformed_authorization(
    daemon: Daemon, authorization: str, code: str, status: int
) -> None:
    now = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    headers = {
        "Authorization": authorization,
        "X-Amz-Date": now,
        "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
    }
    got_status, body = raw(daemon, "/", headers)
    assert (got_status, f"<Code>{code}</Code>".encode() in body) == (status, True), body


def test_presign_parameter_errors(daemon: Daemon) -> None:
    status, body = raw(daemon, "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=x", {})
    assert (status, b"<Code>AuthorizationQueryParametersError</Code>" in body) == (400, True)
