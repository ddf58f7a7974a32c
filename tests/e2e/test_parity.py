"""What one door writes, the other reads identically: bytes, ETag, size, headers, metadata."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lightningstor import errors
from lightningstor.client import Client
from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon


def grpc_client(daemon: Daemon) -> Client:
    return Client(daemon.grpc_target, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)


@pytest.fixture(scope="module")
def parity_bucket(s3: Any) -> str:
    s3.create_bucket(Bucket="parity")
    return "parity"


def test_grpc_write_reads_identically_over_s3(daemon: Daemon, s3: Any, parity_bucket: str) -> None:
    body = os.urandom(5 * 1024 * 1024 + 11)

    async def write() -> Any:
        async with grpc_client(daemon) as ls:
            return await ls.put_object(
                parity_bucket,
                "from-grpc/obj",
                body,
                content_type="text/csv",
                metadata={"origin": "grpc"},
            )

    written = asyncio.run(write())
    got = s3.get_object(Bucket=parity_bucket, Key="from-grpc/obj")
    assert got["Body"].read() == body
    assert got["ETag"] == f'"{written.etag}"' == f'"{hashlib.md5(body).hexdigest()}"'
    assert got["ContentLength"] == written.size == len(body)
    assert got["ContentType"] == "text/csv"
    assert got["Metadata"] == {"origin": "grpc"}
    assert got["LastModified"] == datetime.fromtimestamp(written.modified_unix_nanos // 10**9, UTC)
    listed = s3.list_objects_v2(Bucket=parity_bucket, Prefix="from-grpc/")["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed] == [
        ("from-grpc/obj", len(body), got["ETag"])
    ]


def test_s3_write_reads_identically_over_grpc(daemon: Daemon, s3: Any, parity_bucket: str) -> None:
    body = os.urandom(3 * 1024 * 1024 + 5)
    put = s3.put_object(
        Bucket=parity_bucket,
        Key="from-s3/obj",
        Body=body,
        ContentType="image/png",
        Metadata={"origin": "s3"},
    )
    head = s3.head_object(Bucket=parity_bucket, Key="from-s3/obj")

    async def read() -> tuple[Any, bytes, list[str]]:
        async with grpc_client(daemon) as ls:
            meta = await ls.head_object(parity_bucket, "from-s3/obj")
            data = await ls.get_object(parity_bucket, "from-s3/obj")
            listed = [o async for o in ls.list_objects(parity_bucket, prefix="from-s3/")]
            keys = [o if isinstance(o, str) else o.key for o in listed]
            return meta, data, keys

    meta, data, keys = asyncio.run(read())
    assert data == body
    assert f'"{meta.etag}"' == put["ETag"]
    assert meta.size == len(body)
    assert meta.headers.content_type == "image/png"
    assert dict(meta.metadata) == {"origin": "s3"}
    assert datetime.fromtimestamp(meta.modified_unix_nanos // 10**9, UTC) == head["LastModified"]
    assert meta.checksums["crc32"] == put["ChecksumCRC32"]
    assert keys == ["from-s3/obj"]


def test_errors_agree(daemon: Daemon, s3: Any, parity_bucket: str) -> None:
    async def missing() -> None:
        async with grpc_client(daemon) as ls:
            await ls.head_object(parity_bucket, "absent")

    with pytest.raises(errors.NoSuchKey):
        asyncio.run(missing())
    with pytest.raises(ClientError) as raised:
        s3.get_object(Bucket=parity_bucket, Key="absent")
    assert raised.value.response["Error"]["Code"] == "NoSuchKey"


def test_delete_through_one_door_is_seen_by_the_other(
    daemon: Daemon, s3: Any, parity_bucket: str
) -> None:
    s3.put_object(Bucket=parity_bucket, Key="doomed", Body=b"x")

    async def delete() -> bool:
        async with grpc_client(daemon) as ls:
            return await ls.delete_object(parity_bucket, "doomed")

    assert asyncio.run(delete()) is True
    with pytest.raises(ClientError):
        s3.head_object(Bucket=parity_bucket, Key="doomed")


def test_copy_through_grpc_reads_over_s3(daemon: Daemon, s3: Any, parity_bucket: str) -> None:
    body = b"copied over grpc"
    s3.put_object(
        Bucket=parity_bucket, Key="copy/src", Body=body, ContentType="text/a", Metadata={"m": "1"}
    )

    async def copy() -> tuple[Any, Any]:
        async with grpc_client(daemon) as ls:
            kept = await ls.copy_object((parity_bucket, "copy/src"), (parity_bucket, "copy/kept"))
            replaced = await ls.copy_object(
                (parity_bucket, "copy/src"),
                (parity_bucket, "copy/replaced"),
                content_type="text/b",
                metadata={},
            )
            return kept, replaced

    kept, replaced = asyncio.run(copy())
    got = s3.get_object(Bucket=parity_bucket, Key="copy/kept")
    assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == (body, "text/a", {"m": "1"})
    assert f'"{kept.etag}"' == got["ETag"]
    again = s3.head_object(Bucket=parity_bucket, Key="copy/replaced")
    assert (again["ContentType"], again["Metadata"]) == ("text/b", {})
    assert replaced.etag == kept.etag

    async def self_copy() -> None:
        async with grpc_client(daemon) as ls:
            await ls.copy_object((parity_bucket, "copy/src"), (parity_bucket, "copy/src"))

    with pytest.raises(errors.InvalidRequest):
        asyncio.run(self_copy())


def test_multipart_through_grpc_reads_over_s3_and_back(
    daemon: Daemon, s3: Any, parity_bucket: str
) -> None:
    mib = 1024 * 1024

    async def parts() -> AsyncIterator[bytes]:
        yield b"a" * (5 * mib)
        yield b"b" * 7

    async def upload() -> Any:
        async with grpc_client(daemon) as ls:
            return await ls.put_large_object(
                parity_bucket, "mpu/grpc", parts(), content_type="x/grpc"
            )

    made = asyncio.run(upload())
    head = s3.head_object(Bucket=parity_bucket, Key="mpu/grpc", PartNumber=2)
    assert head["ETag"] == f'"{made.etag}"'
    assert head["PartsCount"] == 2
    assert head["ContentLength"] == 7
    # And an S3 multipart upload reads identically over gRPC.
    upload_id = s3.create_multipart_upload(Bucket=parity_bucket, Key="mpu/s3")["UploadId"]
    etags = [
        s3.upload_part(
            Bucket=parity_bucket, Key="mpu/s3", UploadId=upload_id, PartNumber=n, Body=body
        )["ETag"]
        for n, body in ((1, b"c" * (5 * mib)), (2, b"d"))
    ]
    done = s3.complete_multipart_upload(
        Bucket=parity_bucket,
        Key="mpu/s3",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)]
        },
    )

    async def read() -> tuple[Any, bytes]:
        async with grpc_client(daemon) as ls:
            return await ls.head_object(parity_bucket, "mpu/s3"), await ls.get_object(
                parity_bucket, "mpu/s3"
            )

    meta, data = asyncio.run(read())
    assert f'"{meta.etag}"' == done["ETag"]
    assert data == b"c" * (5 * mib) + b"d"
