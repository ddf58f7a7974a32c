"""The first-cut S3 surface through boto3 against a real daemon: exact codes, stored data intact."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import zlib
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.daemon import Daemon, boto3_client
from tests.signing import sign


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response: Any = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket="basics")
    return "basics"


def test_object_round_trip_with_headers_and_metadata(s3: Any, bucket: str) -> None:
    body = os.urandom(200_000)
    put = s3.put_object(
        Bucket=bucket,
        Key="docs/report.pdf",
        Body=body,
        ContentType="application/pdf",
        ContentDisposition='attachment; filename="r.pdf"',
        CacheControl="max-age=60",
        Metadata={"Author": "Ada", "team": "storage"},
    )
    etag = f'"{hashlib.md5(body).hexdigest()}"'
    assert put["ETag"] == etag
    got = s3.get_object(Bucket=bucket, Key="docs/report.pdf")
    assert got["Body"].read() == body
    assert got["ETag"] == etag
    assert got["ContentType"] == "application/pdf"
    assert got["ContentDisposition"] == 'attachment; filename="r.pdf"'
    assert got["CacheControl"] == "max-age=60"
    assert got["Metadata"] == {"author": "Ada", "team": "storage"}
    assert got["ResponseMetadata"]["HTTPHeaders"]["accept-ranges"] == "bytes"
    head = s3.head_object(Bucket=bucket, Key="docs/report.pdf")
    assert head["ContentLength"] == len(body)
    assert head["LastModified"] == got["LastModified"]


def test_default_content_type(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="untyped", Body=b"x")
    assert s3.head_object(Bucket=bucket, Key="untyped")["ContentType"] == "binary/octet-stream"


def test_default_crc32_is_verified_stored_and_returned(s3: Any, bucket: str) -> None:
    body = b"checksummed by boto3 by default"
    put = s3.put_object(Bucket=bucket, Key="crc", Body=body)
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    assert put["ChecksumCRC32"] == crc
    got = s3.get_object(Bucket=bucket, Key="crc", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == crc
    ranged = s3.get_object(Bucket=bucket, Key="crc", ChecksumMode="ENABLED", Range="bytes=0-3")
    assert "ChecksumCRC32" not in ranged  # never a whole-object checksum on a 206
    assert ranged["Body"].read() == body[:4]


@pytest.mark.parametrize(
    ("header", "value", "code"),
    [
        ("x-amz-checksum-crc32", "AAAAAA==", "BadDigest"),
        ("Content-MD5", base64.b64encode(b"\0" * 16).decode(), "BadDigest"),
        ("Content-MD5", "not-base64!", "InvalidDigest"),
    ],
)
def test_wrong_digest_keeps_old_object(
    daemon: Daemon, s3: Any, bucket: str, header: str, value: str, code: str
) -> None:
    s3.put_object(Bucket=bucket, Key="guarded", Body=b"original")
    body = b"replacement"
    path = f"/{bucket}/guarded"
    headers = sign(
        "PUT",
        daemon.endpoint + path,
        headers={header: value, "Content-Length": str(len(body))},
        payload_hash=hashlib.sha256(body).hexdigest(),
    )
    status, reply = _raw(daemon, "PUT", path, headers, body)
    assert status == 400
    assert f"<Code>{code}</Code>".encode() in reply
    assert s3.get_object(Bucket=bucket, Key="guarded")["Body"].read() == b"original"


def test_payload_hash_mismatch_is_rejected(daemon: Daemon, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="hashed", Body=b"original")
    path = f"/{bucket}/hashed"
    body = b"tampered in flight"
    headers = sign(
        "PUT",
        daemon.endpoint + path,
        headers={"Content-Length": str(len(body))},
        payload_hash=hashlib.sha256(b"what was signed").hexdigest(),
    )
    status, reply = _raw(daemon, "PUT", path, headers, body)
    assert status == 400
    assert b"<Code>XAmzContentSHA256Mismatch</Code>" in reply
    assert s3.get_object(Bucket=bucket, Key="hashed")["Body"].read() == b"original"


def test_bad_signature_with_expect_continue_is_refused_before_the_body(
    daemon: Daemon, s3: Any, bucket: str
) -> None:
    path = f"/{bucket}/never"
    headers = sign(
        "PUT", daemon.endpoint + path, headers={"Content-Length": "10485760"}, secret="wrong" * 8
    )
    conn = http.client.HTTPConnection("127.0.0.1", daemon.s3_port, timeout=10)
    conn.putrequest("PUT", path, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.putheader("Expect", "100-continue")
    conn.endheaders()  # no body sent: the server must answer without waiting for it
    response = conn.getresponse()
    assert response.status == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in response.read()
    conn.close()
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=bucket, Key="never")
    assert error_of(missing) == ("404", 404)


def _raw(
    daemon: Daemon, method: str, path: str, headers: dict[str, str], body: bytes
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", daemon.s3_port, timeout=10)
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    reply = response.read()
    assert response.getheader("x-amz-request-id")
    conn.close()
    return response.status, reply


@pytest.mark.parametrize(
    ("range_header", "status", "expected"),
    [
        ("bytes=0-9", 206, slice(0, 10)),
        ("bytes=90-", 206, slice(90, 100)),
        ("bytes=-5", 206, slice(95, 100)),
        ("bytes=50-1000", 206, slice(50, 100)),
        ("bytes=5-1", 200, slice(0, 100)),  # invalid syntax is ignored, as S3 does
    ],
)
def test_ranges(s3: Any, bucket: str, range_header: str, status: int, expected: slice) -> None:
    body = bytes(range(100))
    s3.put_object(Bucket=bucket, Key="hundred", Body=body)
    got = s3.get_object(Bucket=bucket, Key="hundred", Range=range_header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == status
    assert got["Body"].read() == body[expected]
    if status == 206:
        start, stop = expected.start, expected.stop - 1
        assert got["ContentRange"] == f"bytes {start}-{stop}/100"


def test_unsatisfiable_range(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="ten", Body=b"0123456789")
    with pytest.raises(ClientError) as raised:
        s3.get_object(Bucket=bucket, Key="ten", Range="bytes=10-")
    assert error_of(raised) == ("InvalidRange", 416)
    assert raised.value.response["ResponseMetadata"]["HTTPHeaders"]["content-range"] == "bytes */10"


def test_conditional_get(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="cond", Body=b"v1")
    assert s3.get_object(Bucket=bucket, Key="cond", IfMatch=put["ETag"])["Body"].read() == b"v1"
    with pytest.raises(ClientError) as failed:
        s3.get_object(Bucket=bucket, Key="cond", IfMatch='"0000"')
    assert error_of(failed) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as not_modified:
        s3.get_object(Bucket=bucket, Key="cond", IfNoneMatch=put["ETag"])
    assert error_of(not_modified) == ("304", 304)


def test_conditional_put_create_only(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="lock", Body=b"mine", IfNoneMatch="*")
    with pytest.raises(ClientError) as taken:
        s3.put_object(Bucket=bucket, Key="lock", Body=b"yours", IfNoneMatch="*")
    assert error_of(taken) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="lock")["Body"].read() == b"mine"


ODD_KEYS = ["a b+c/ü~!*()'", "/lead", "a//b", "x/../y", "100%", "trailing/", "q?x=1&y", "<&>\"'"]


def test_odd_keys_round_trip_and_list(s3: Any, bucket: str) -> None:
    s3.create_bucket(Bucket="odd-keys")
    for key in ODD_KEYS:
        s3.put_object(Bucket="odd-keys", Key=key, Body=key.encode())
    for key in ODD_KEYS:
        assert s3.get_object(Bucket="odd-keys", Key=key)["Body"].read() == key.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket="odd-keys")["Contents"]]
    assert listed == sorted(ODD_KEYS, key=lambda k: k.encode())
    listed_v1 = [o["Key"] for o in s3.list_objects(Bucket="odd-keys")["Contents"]]
    assert listed_v1 == listed
    for key in ODD_KEYS:
        s3.delete_object(Bucket="odd-keys", Key=key)
    s3.delete_bucket(Bucket="odd-keys")


def test_listing_delimiter_prefix_and_paging(s3: Any) -> None:
    s3.create_bucket(Bucket="listing")
    keys = [f"dir{d}/file{f}" for d in range(3) for f in range(4)] + ["top1", "top2"]
    for key in keys:
        s3.put_object(Bucket="listing", Key=key, Body=b"")
    page = s3.list_objects_v2(Bucket="listing", Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["dir0/", "dir1/", "dir2/"]
    assert [o["Key"] for o in page["Contents"]] == ["top1", "top2"]
    assert page["KeyCount"] == 5
    inner = s3.list_objects_v2(Bucket="listing", Prefix="dir1/", Delimiter="/")
    assert [o["Key"] for o in inner["Contents"]] == [f"dir1/file{f}" for f in range(4)]

    seen: list[str] = []
    kwargs: dict[str, Any] = {"Bucket": "listing", "MaxKeys": 2, "Delimiter": "/"}
    while True:
        page = s3.list_objects_v2(**kwargs)
        assert page["KeyCount"] <= 2
        seen += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        seen += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
    assert sorted(seen) == ["dir0/", "dir1/", "dir2/", "top1", "top2"]

    v1 = [
        o["Key"]
        for p in s3.get_paginator("list_objects").paginate(
            Bucket="listing", PaginationConfig={"PageSize": 5}
        )
        for o in p["Contents"]
    ]
    assert v1 == sorted(keys)
    after = s3.list_objects_v2(Bucket="listing", StartAfter="dir2/file3")
    assert [o["Key"] for o in after["Contents"]] == ["top1", "top2"]
    with pytest.raises(ClientError) as forged:
        s3.list_objects_v2(Bucket="listing", ContinuationToken="not-a-token")
    assert error_of(forged) == ("InvalidArgument", 400)


def test_bucket_errors(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as invalid:
        s3.create_bucket(Bucket="Not_Valid")
    assert error_of(invalid) == ("InvalidBucketName", 400)
    with pytest.raises(ClientError) as missing:
        s3.list_objects_v2(Bucket="no-such-bucket")
    assert error_of(missing) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as missing_key:
        s3.get_object(Bucket=bucket, Key="no/such/key")
    assert error_of(missing_key) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as not_empty:
        s3.delete_bucket(Bucket=bucket)
    assert error_of(not_empty) == ("BucketNotEmpty", 409)
    with pytest.raises(ClientError) as head_missing:
        s3.head_bucket(Bucket="no-such-bucket")
    assert error_of(head_missing) == ("404", 404)
    assert (
        s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"]
        == "us-east-1"
    )
    # Re-creating your own bucket in us-east-1 succeeds, as on AWS.
    s3.create_bucket(Bucket=bucket)


def test_delete_missing_key_is_204(s3: Any, bucket: str) -> None:
    reply = s3.delete_object(Bucket=bucket, Key="never-existed")
    assert reply["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_unsupported_subresource_is_not_implemented(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as raised:
        s3.restore_object(Bucket=bucket, Key="untyped", RestoreRequest={"Days": 1})
    assert error_of(raised) == ("NotImplemented", 501)


def test_when_required_checksum_config(daemon: Daemon, bucket: str) -> None:
    quiet = boto3_client(
        daemon,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    quiet.put_object(Bucket=bucket, Key="quiet", Body=b"no checksum sent")
    assert quiet.get_object(Bucket=bucket, Key="quiet")["Body"].read() == b"no checksum sent"


def test_large_streamed_object(s3: Any, bucket: str) -> None:
    body = os.urandom(7 * 1024 * 1024 + 3)
    s3.put_object(Bucket=bucket, Key="big", Body=body)
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == body
    tail = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={len(body) - 10}-")
    assert tail["Body"].read() == body[-10:]


def test_metadata_too_large(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as raised:
        s3.put_object(Bucket=bucket, Key="fat-meta", Body=b"x", Metadata={"a": "x" * 2100})
    assert error_of(raised) == ("MetadataTooLarge", 400)
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=bucket, Key="fat-meta")
    assert error_of(missing) == ("404", 404)


def _expect_refusal(
    daemon: Daemon, method: str, path: str, headers: dict[str, str]
) -> tuple[int, bytes]:
    """Send headers with Expect: 100-continue and no body; the answer must come anyway."""
    signed = sign(method, daemon.endpoint + path, headers=headers)
    conn = http.client.HTTPConnection("127.0.0.1", daemon.s3_port, timeout=10)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for name, value in signed.items():
        conn.putheader(name, value)
    conn.putheader("Expect", "100-continue")
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body


def test_too_large_and_missing_bucket_are_refused_before_the_body(
    daemon: Daemon, s3: Any, bucket: str
) -> None:
    status, body = _expect_refusal(
        daemon, "PUT", f"/{bucket}/huge", {"Content-Length": str(6 * 1024**3)}
    )
    assert (status, b"<Code>EntityTooLarge</Code>" in body) == (400, True)
    status, body = _expect_refusal(daemon, "PUT", "/no-such-bucket-x/k", {"Content-Length": "10"})
    assert (status, b"<Code>NoSuchBucket</Code>" in body) == (404, True)


def test_method_not_allowed(daemon: Daemon, bucket: str) -> None:
    status, body = _raw(
        daemon, "PATCH", f"/{bucket}/k", sign("PATCH", f"{daemon.endpoint}/{bucket}/k"), b""
    )
    assert (status, b"<Code>MethodNotAllowed</Code>" in body) == (405, True)
