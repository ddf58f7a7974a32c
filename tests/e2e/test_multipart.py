"""Multipart uploads through aws-cli and boto3 against a real daemon."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.daemon import Daemon
from tests.e2e.test_awscli import VENV_AWS, run_aws
from tests.signing import sign

MIB = 1024 * 1024


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response: Any = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket="multipart")
    return "multipart"


def md5_of_md5s(data: bytes, part: int) -> str:
    digests = [hashlib.md5(data[i : i + part]).digest() for i in range(0, len(data), part)]
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def test_aws_cli_cp_multipart_up_and_down(daemon: Daemon, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    data = os.urandom(20 * MIB + 123)
    src.write_bytes(data)
    run_aws(VENV_AWS, daemon, "s3", "mb", "s3://cli-multipart")
    run_aws(VENV_AWS, daemon, "s3", "cp", str(src), "s3://cli-multipart/big.bin")
    head = json.loads(
        run_aws(
            VENV_AWS,
            daemon,
            "s3api",
            "head-object",
            "--bucket",
            "cli-multipart",
            "--key",
            "big.bin",
        )
    )
    assert head["ETag"] == f'"{md5_of_md5s(data, 8 * MIB)}"'
    assert head["ETag"].endswith('-3"')
    back = tmp_path / "back.bin"
    run_aws(VENV_AWS, daemon, "s3", "cp", "s3://cli-multipart/big.bin", str(back))
    assert back.read_bytes() == data


def _upload(
    s3: Any, bucket: str, key: str, parts: list[bytes], **create: Any
) -> tuple[str, list[dict[str, Any]]]:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    listed = []
    for number, body in enumerate(parts, start=1):
        reply = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        entry = {"PartNumber": number, "ETag": reply["ETag"]}
        if "ChecksumCRC32" in reply:
            entry["ChecksumCRC32"] = reply["ChecksumCRC32"]
        listed.append(entry)
    return upload_id, listed


def test_boto3_multipart_with_checksums_parts_and_metadata(s3: Any, bucket: str) -> None:
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB), b"tail"]
    upload_id, listed = _upload(
        s3,
        bucket,
        "mp/obj",
        parts,
        ContentType="video/mp4",
        Metadata={"m": "1"},
        ChecksumAlgorithm="CRC32",
    )
    page = s3.list_parts(Bucket=bucket, Key="mp/obj", UploadId=upload_id, MaxParts=2)
    assert [p["PartNumber"] for p in page["Parts"]] == [1, 2] and page["IsTruncated"]
    rest = s3.list_parts(
        Bucket=bucket,
        Key="mp/obj",
        UploadId=upload_id,
        PartNumberMarker=page["NextPartNumberMarker"],
    )
    assert [p["PartNumber"] for p in rest["Parts"]] == [3]
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("mp/obj", upload_id)]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp/obj", UploadId=upload_id, MultipartUpload={"Parts": listed}
    )
    data = b"".join(parts)
    assert done["ETag"] == f'"{md5_of_md5s(data, 5 * MIB)}"'
    assert done["ChecksumCRC32"].endswith("-3")
    got = s3.get_object(Bucket=bucket, Key="mp/obj", ChecksumMode="ENABLED")
    assert got["Body"].read() == data  # a composite checksum is not validated by botocore
    assert (got["ContentType"], got["Metadata"]) == ("video/mp4", {"m": "1"})
    part2 = s3.get_object(Bucket=bucket, Key="mp/obj", PartNumber=2)
    assert part2["Body"].read() == parts[1]
    assert part2["PartsCount"] == 3
    assert part2["ContentRange"] == f"bytes {5 * MIB}-{10 * MIB - 1}/{len(data)}"
    across = s3.get_object(Bucket=bucket, Key="mp/obj", Range=f"bytes={5 * MIB - 2}-{5 * MIB + 1}")
    assert across["Body"].read() == data[5 * MIB - 2 : 5 * MIB + 2]
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda listed: [listed[0], {"PartNumber": 9, "ETag": listed[1]["ETag"]}], "InvalidPart"),
        (
            lambda listed: [
                listed[0],
                {"PartNumber": 2, "ETag": '"00000000000000000000000000000000"'},
            ],
            "InvalidPart",
        ),
        (lambda listed: [listed[1], listed[0]], "InvalidPartOrder"),
        (lambda listed: [listed[1], listed[2]], "EntityTooSmall"),
    ],
)
def test_completion_errors_keep_the_upload(s3: Any, bucket: str, mutate: Any, code: str) -> None:
    upload_id, listed = _upload(s3, bucket, "mp/bad", [os.urandom(5 * MIB), b"small", b"last"])
    with pytest.raises(ClientError) as raised:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="mp/bad",
            UploadId=upload_id,
            MultipartUpload={"Parts": mutate(listed)},
        )
    assert error_of(raised) == (code, 400)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="mp/bad")
    s3.abort_multipart_upload(Bucket=bucket, Key="mp/bad", UploadId=upload_id)
    with pytest.raises(ClientError) as gone:
        s3.list_parts(Bucket=bucket, Key="mp/bad", UploadId=upload_id)
    assert error_of(gone) == ("NoSuchUpload", 404)


def test_abort_during_a_part_upload(daemon: Daemon, s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp/abort")["UploadId"]
    path = f"/{bucket}/mp/abort?partNumber=1&uploadId={upload_id}"
    headers = sign("PUT", daemon.endpoint + path, headers={"Content-Length": str(6 * MIB)})
    conn = http.client.HTTPConnection("127.0.0.1", daemon.s3_port, timeout=30)
    conn.putrequest("PUT", path, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    conn.send(b"x" * (3 * MIB))
    s3.abort_multipart_upload(Bucket=bucket, Key="mp/abort", UploadId=upload_id)
    conn.send(b"x" * (3 * MIB))
    response = conn.getresponse()
    reply = response.read()
    conn.close()
    assert response.status == 404
    assert b"<Code>NoSuchUpload</Code>" in reply
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket, Prefix="mp/abort")
    assert list((daemon.data_dir / "tmp").iterdir()) == []


def test_upload_part_copy_with_range(s3: Any, bucket: str) -> None:
    source = os.urandom(6 * MIB)
    s3.put_object(Bucket=bucket, Key="mp/source", Body=source)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp/copied")["UploadId"]
    first = s3.upload_part_copy(
        Bucket=bucket,
        Key="mp/copied",
        UploadId=upload_id,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "mp/source"},
        CopySourceRange=f"bytes=0-{5 * MIB - 1}",
    )
    second = s3.upload_part_copy(
        Bucket=bucket,
        Key="mp/copied",
        UploadId=upload_id,
        PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "mp/source"},
    )
    parts = [
        {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
        {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]},
    ]
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp/copied", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert (
        s3.get_object(Bucket=bucket, Key="mp/copied")["Body"].read() == source[: 5 * MIB] + source
    )


def test_bad_upload_ids_and_part_numbers(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as unknown:
        s3.upload_part(Bucket=bucket, Key="k", UploadId="nope", PartNumber=1, Body=b"x")
    assert error_of(unknown) == ("NoSuchUpload", 404)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    with pytest.raises(ClientError) as too_high:
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=10001, Body=b"x")
    assert error_of(too_high) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as other_key:
        s3.upload_part(Bucket=bucket, Key="other", UploadId=upload_id, PartNumber=1, Body=b"x")
    assert error_of(other_key) == ("NoSuchUpload", 404)
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id)
