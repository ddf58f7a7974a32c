"""POST forms that are not well-formed, sent as raw bytes: each is a 400 with S3's code,
logged as a client error, and nothing stored changes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon
from tests.raw import exchange, form_body, post_form
from tests.signing import sign

BUCKET = "forms-bad"
KEEP = b"the object every malformed form leaves alone"


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="keep", Body=KEEP)
    return BUCKET


@pytest.fixture(autouse=True)
def intact(daemon: Daemon, s3: Any, bucket: str) -> Iterator[None]:
    already = len(daemon.log_text())
    yield
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == KEEP
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert listed == ["keep"]
    logged = daemon.log_text()[already:]
    assert "failed unexpectedly" not in logged and "Traceback" not in logged, logged
    assert " status=500 " not in logged, logged


def signed_fields(conditions: Any) -> list[tuple[str, str | bytes]]:
    """The fields of a form whose (SigV2) policy has ``conditions``, correctly signed."""
    policy = base64.b64encode(
        json.dumps({"expiration": "2099-01-01T00:00:00Z", "conditions": conditions}).encode()
    )
    signature = base64.b64encode(hmac.new(SECRET_KEY.encode(), policy, hashlib.sha1).digest())
    return [
        ("key", "posted/${filename}"),
        ("AWSAccessKeyId", ACCESS_KEY),
        ("policy", policy),
        ("signature", signature),
    ]


GOOD = [{"bucket": BUCKET}, ["starts-with", "$key", "posted/"]]


def raw_post(daemon: Daemon, content_type: str, body: bytes) -> tuple[int, str | None]:
    head = (
        f"POST /{BUCKET} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    reply = exchange(daemon, head.encode() + body)
    assert reply is not None
    return reply.status, reply.code


def test_a_well_formed_form_lands(daemon: Daemon, s3: Any) -> None:
    reply = post_form(daemon, BUCKET, form_body([*signed_fields(GOOD), ("file", b"fine")]))
    assert reply is not None and reply.status == 204
    assert s3.get_object(Bucket=BUCKET, Key="posted/upload.bin")["Body"].read() == b"fine"
    s3.delete_object(Bucket=BUCKET, Key="posted/upload.bin")


FIELDS = form_body([*signed_fields(GOOD), ("file", b"data")])
HEADER_END = FIELDS.index(b"\r\n\r\n") + 4


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", FIELDS),  # no boundary
        ("multipart/form-data; boundary=other", FIELDS),  # the boundary never appears
        ("multipart/form-data; boundary=" + "b" * 71, FIELDS),  # longer than RFC 2046 allows
        (
            "multipart/form-data; boundary=lsform",
            b"--lsform\r\nContent-Disposition form-data; name=key\r\n\r\nx\r\n--lsform--\r\n",
        ),  # a part header without a colon
        (
            "multipart/form-data; boundary=lsform",
            b'--lsform\r\nContent-Dispo\0sition: form-data; name="key"\r\n\r\nx\r\n--lsform--\r\n',
        ),  # a NUL in a part header
        (
            "multipart/form-data; boundary=lsform",
            b"--lsform\r\nX-Long: " + b"a" * 10240 + b"\r\n\r\nx\r\n--lsform--\r\n",
        ),  # a 10 KiB part header line
        ("multipart/form-data; boundary=lsform", FIELDS[:HEADER_END]),  # cut after a header
        ("multipart/form-data; boundary=lsform", FIELDS[:-30]),  # the file never ends
    ],
    ids=[
        "no-boundary",
        "boundary-never-appears",
        "boundary-too-long",
        "header-without-colon",
        "nul-in-header",
        "10k-header-line",
        "cut-after-header",
        "file-never-ends",
    ],
)
def test_malformed_multipart_is_malformed_post_request(
    daemon: Daemon, content_type: str, body: bytes
) -> None:
    assert raw_post(daemon, content_type, body) == (400, "MalformedPOSTRequest")


def test_nul_in_the_filename_is_refused(daemon: Daemon) -> None:
    body = form_body([*signed_fields(GOOD), ("file", b"data")]).replace(
        b'filename="upload.bin"', b'filename="up\0load.bin"'
    )
    status, code = raw_post(daemon, "multipart/form-data; boundary=lsform", body)
    assert (status, code) in ((400, "MalformedPOSTRequest"), (400, "InvalidArgument"))


@pytest.mark.parametrize(
    "conditions",
    [
        [*GOOD, ["content-length-range", "lots", 100]],
        [*GOOD, ["content-length-range", None, 100]],
        [*GOOD, ["content-length-range", 0]],
        [*GOOD, ["content-length-range", -1, 10]],
        [*GOOD, ["content-length-range", 10, 1]],
        [*GOOD, ["eq", "$key", ["not", "a", "string"]]],
        [*GOOD, "a condition that is a string"],
        {"bucket": BUCKET},  # conditions not a list
        "conditions as a string",
    ],
    ids=[
        "range-not-numeric",
        "range-null",
        "range-one-bound",
        "range-negative",
        "range-reversed",
        "value-not-a-string",
        "condition-a-string",
        "conditions-an-object",
        "conditions-a-string",
    ],
)
def test_policies_that_are_not_policies(daemon: Daemon, conditions: Any) -> None:
    body = form_body([*signed_fields(conditions), ("file", b"data")])
    assert raw_post(daemon, "multipart/form-data; boundary=lsform", body) == (
        400,
        "InvalidPolicyDocument",
    )


def test_header_signed_post_to_a_bucket_without_a_query(daemon: Daemon) -> None:
    body = FIELDS
    headers = {"Content-Type": "multipart/form-data; boundary=lsform"}
    fields = sign("POST", f"{daemon.endpoint}/{BUCKET}", headers=headers)
    head = f"POST /{BUCKET} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    head += f"Host: 127.0.0.1:{daemon.s3_port}\r\nContent-Length: {len(body)}\r\n"
    reply = exchange(daemon, head.encode() + b"Connection: close\r\n\r\n" + body)
    assert reply is not None and (reply.status, reply.code) == (400, "InvalidRequest")
