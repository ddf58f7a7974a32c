"""A full disk answers a clear storage error, loses nothing and recovers without a restart.

The daemon's data directory is a small tmpfs of its own, filled up by a filler file; the
tests mount it, so they run as root (as the test machine and CI do).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lightningstor import errors
from lightningstor.client import Client
from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon, boto3_client

DISK_BYTES = 48 * 1024 * 1024
KEEP = {f"keep/{n}": os.urandom(size) for n, size in enumerate((100, 3000, 300_000, 2_000_000))}


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("these tests mount a tmpfs: run them as root (the test machine and CI do)")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount)], check=True
    )
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def _daemon(disk: Path, min_free_bytes: int) -> Daemon:
    # The data directory is the mount itself; the daemon's log goes beside it, off the full disk.
    return Daemon(disk, extra_env={"LIGHTNINGSTOR_MIN_FREE_BYTES": str(min_free_bytes)})


def _fill(disk: Path, leave_bytes: int) -> Path:
    """Fill the disk up to ``leave_bytes`` free (0: until the file system refuses)."""
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with filler.open("wb") as out:
        try:
            out.write(b"\0" * max(free - leave_bytes, 0))
            while not leave_bytes:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def _code(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as raised:
        call()
    error = raised.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]


def _grpc_put(daemon: Daemon, key: str, data: bytes) -> None:
    async def put() -> None:
        async with Client(
            daemon.grpc_target, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
        ) as ls:
            await ls.put_object("full", key, data)

    asyncio.run(put())


def _store_keepers(s3: Any) -> None:
    s3.create_bucket(Bucket="full")
    for key, data in KEEP.items():
        s3.put_object(Bucket="full", Key=key, Body=data)


def _assert_kept(s3: Any, extra: dict[str, bytes] | None = None) -> None:
    for key, data in {**KEEP, **(extra or {})}.items():
        assert s3.get_object(Bucket="full", Key=key)["Body"].read() == data, key


def _no_internal_errors(daemon: Daemon) -> None:
    log = daemon.log_text()
    assert "failed unexpectedly" not in log and " status=500 " not in log, log


def test_below_the_reserve_new_data_is_refused_and_deletes_still_work(disk: Path) -> None:
    daemon = _daemon(disk, min_free_bytes=16 * 1024 * 1024).start()
    try:
        s3 = boto3_client(daemon)
        _store_keepers(s3)
        s3.put_object(Bucket="full", Key="doomed", Body=b"to be deleted while full")
        filler = _fill(disk, leave_bytes=8 * 1024 * 1024)
        full = ("InsufficientStorage", 507)
        big = os.urandom(1 << 20)
        assert _code(lambda: s3.put_object(Bucket="full", Key="big", Body=big)) == full
        assert _code(lambda: s3.put_object(Bucket="full", Key="small", Body=b"tiny")) == full
        upload = s3.create_multipart_upload(Bucket="full", Key="parts")["UploadId"]
        part = lambda: s3.upload_part(  # noqa: E731
            Bucket="full", Key="parts", UploadId=upload, PartNumber=1, Body=b"x" * 100_000
        )
        assert _code(part) == full
        with pytest.raises(errors.InsufficientStorage):
            _grpc_put(daemon, "grpc", b"over gRPC")
        _assert_kept(s3)
        s3.delete_object(Bucket="full", Key="doomed")  # deletes free space: never refused
        assert _code(lambda: s3.head_object(Bucket="full", Key="doomed")) == ("404", 404)
        filler.unlink()  # space returns: writes work again, no restart
        s3.put_object(Bucket="full", Key="after", Body=b"written once space returned")
        s3.upload_part(
            Bucket="full", Key="parts", UploadId=upload, PartNumber=1, Body=b"x" * 100_000
        )
        _grpc_put(daemon, "grpc", b"over gRPC")
        _assert_kept(s3, {"after": b"written once space returned", "grpc": b"over gRPC"})
        assert list((daemon.data_dir / "tmp").iterdir()) == []
        s3.close()
    finally:
        assert daemon.stop() == 0
    _no_internal_errors(daemon)


def test_a_disk_full_to_the_last_byte_loses_nothing_acknowledged(disk: Path) -> None:
    """No reserve: LevelDB itself meets ENOSPC. Writes get 507 (not 500), reads go on, writes
    resume when space returns, and the store opens again with every acknowledged write (a torn
    log record used to make the next open fail with "Corruption: checksum mismatch")."""
    daemon = _daemon(disk, min_free_bytes=0).start()
    acknowledged: dict[str, bytes] = {}
    try:
        s3 = boto3_client(daemon)
        _store_keepers(s3)
        filler = _fill(disk, leave_bytes=0)
        outcomes = set()
        for n in range(40):
            key, data = f"while-full/{n}", os.urandom(200) * (n + 1)
            try:
                s3.put_object(Bucket="full", Key=key, Body=data)
            except ClientError as error:
                code = error.response["Error"]["Code"]
                outcomes.add((code, error.response["ResponseMetadata"]["HTTPStatusCode"]))
            else:
                acknowledged[key] = data
        assert outcomes == {("InsufficientStorage", 507)}
        _assert_kept(s3, acknowledged)
        filler.unlink()
        for n in range(300):  # enough to fill whole blocks of the metadata log
            key = f"after/{n}"
            acknowledged[key] = key.encode() * 50
            s3.put_object(Bucket="full", Key=key, Body=acknowledged[key])
        s3.close()
    finally:
        assert daemon.stop() == 0
    _no_internal_errors(daemon)
    assert "metadata database reopened after a failed write" in daemon.log_text()
    again = _daemon(disk, min_free_bytes=0).start()
    try:
        s3 = boto3_client(again)
        _assert_kept(s3, acknowledged)
        s3.close()
    finally:
        assert again.stop() == 0
    fsck = subprocess.run(
        [sys.executable, "-m", "lightningstor_server.cli", "fsck", "--data-dir", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
