"""DeleteBucket with multipart uploads in progress deletes the bucket and its uploads, as AWS
does (aws s3 rb --force and rclone purge after an interrupted copy rely on it), through both
doors; their part blobs are released and the store checks clean afterwards."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lightningstor import errors
from lightningstor.client import Client
from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon, boto3_client

PART = b"p" * (5 * 1024 * 1024)


def _fsck(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lightningstor_server.cli", "fsck", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _error(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_delete_bucket_with_uploads_in_progress(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path / "data", extra_env={"LIGHTNINGSTOR_GC_DELAY_SECONDS": "0"}).start()
    try:
        s3 = boto3_client(daemon)
        s3.create_bucket(Bucket="interrupted")
        upload = s3.create_multipart_upload(Bucket="interrupted", Key="big")["UploadId"]
        s3.upload_part(Bucket="interrupted", Key="big", UploadId=upload, PartNumber=1, Body=PART)
        s3.create_multipart_upload(Bucket="interrupted", Key="never-sent")
        s3.put_object(Bucket="interrupted", Key="object", Body=b"still here")
        assert _error(lambda: s3.delete_bucket(Bucket="interrupted")) == ("BucketNotEmpty", 409)
        assert len(s3.list_multipart_uploads(Bucket="interrupted")["Uploads"]) == 2
        s3.delete_object(Bucket="interrupted", Key="object")
        s3.delete_bucket(Bucket="interrupted")
        assert _error(lambda: s3.head_bucket(Bucket="interrupted")) == ("404", 404)
        late = lambda: s3.upload_part(  # noqa: E731
            Bucket="interrupted", Key="big", UploadId=upload, PartNumber=2, Body=b"late"
        )
        assert _error(late)[0] == "NoSuchBucket"

        async def over_grpc() -> None:
            async with Client(
                daemon.grpc_target, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
            ) as ls:
                await ls.create_bucket("grpc-interrupted")
                s3.create_multipart_upload(Bucket="grpc-interrupted", Key="k")
                await ls.delete_bucket("grpc-interrupted")
                with pytest.raises(errors.NoSuchBucket):
                    await ls.get_bucket("grpc-interrupted")

        asyncio.run(over_grpc())
        s3.create_bucket(Bucket="interrupted")
        assert "Uploads" not in s3.list_multipart_uploads(Bucket="interrupted")
        s3.close()
    finally:
        assert daemon.stop() == 0
    checked = _fsck(daemon.data_dir)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 parts" in checked.stdout
