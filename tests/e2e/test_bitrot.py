"""Bit rot on a real daemon: one flipped bit in a stored blob, and neither door serves it,
the log names the blob, the daemon keeps serving everything else, and fsck finds it."""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ResponseStreamingError

from lightningstor import errors
from lightningstor.client import Client
from lightningstor_server.cli import main
from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon, boto3_client

MiB = 1024 * 1024
BODY = random.Random(1).randbytes(3 * MiB + 17)
SHA = hashlib.sha256(BODY).hexdigest()
DAMAGE_AT = MiB + 4321  # in the second 1 MiB block


def blob_path(data_dir: Path, sha: str) -> Path:
    return data_dir / "blobs" / sha[:2] / sha[2:4] / sha


def flip(path: Path, offset: int) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x04]))


def plain_client(daemon: Daemon) -> Any:
    """A client that neither sends nor checks flexible checksums of its own, so what it sees
    is what the daemon did (its whole-object CRC check would catch the damage too)."""
    return boto3_client(
        daemon,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def get_body(s3: Any, key: str, **kwargs: Any) -> bytes:
    data: bytes = s3.get_object(Bucket="rot", Key=key, **kwargs)["Body"].read()
    return data


async def grpc_read(daemon: Daemon, key: str) -> bytes:
    async with Client(
        daemon.grpc_target, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
    ) as ls:
        return b"".join([chunk async for chunk in ls.iter_object("rot", key)])


def test_a_flipped_bit_is_never_served(
    fresh_daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon = fresh_daemon.start()
    s3 = plain_client(daemon)
    s3.create_bucket(Bucket="rot")
    s3.put_object(Bucket="rot", Key="victim", Body=BODY)
    s3.put_object(Bucket="rot", Key="bystander", Body=b"still fine")
    flip(blob_path(daemon.data_dir, SHA), DAMAGE_AT)

    # S3: the status went out before the damage was found, so the connection is cut and the
    # client sees a short body, never the damaged bytes.
    with pytest.raises(ResponseStreamingError) as cut:
        get_body(s3, "victim")
    # Only the intact first block went out.
    assert f"IncompleteRead({MiB} bytes read, {len(BODY) - MiB} more expected)" in str(cut.value)
    # A range inside an intact block is still served; one touching the damaged block is not.
    # A range that small is read whole before its status goes out: the damage is a plain 500.
    assert get_body(s3, "victim", Range="bytes=0-99") == BODY[:100]
    with pytest.raises(ClientError) as refused:
        get_body(s3, "victim", Range=f"bytes={2 * MiB - 10}-{2 * MiB + 10}")
    assert refused.value.response["Error"]["Code"] == "InternalError"
    with pytest.raises(ResponseStreamingError):
        get_body(s3, "victim", Range=f"bytes={MiB}-{3 * MiB}")
    # gRPC: the stream ends with an error status.
    with pytest.raises(errors.InternalError):
        asyncio.run(grpc_read(daemon, "victim"))
    # Everything else is served as before, and writes go on.
    assert get_body(s3, "bystander") == b"still fine"
    s3.put_object(Bucket="rot", Key="after", Body=b"written after")
    assert asyncio.run(grpc_read(daemon, "after")) == b"written after"
    # The refused reads are counted, as the server's failures they are.
    url = f"http://127.0.0.1:{daemon.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        metrics = reply.read().decode()
    refused_reads = re.findall(
        r'^lightningstor_requests_total\{code="InternalError",operation="GetObject",'
        r'protocol="s3",status="server_error"\} (\S+)$',
        metrics,
        re.MULTILINE,
    )
    assert refused_reads and float(refused_reads[0]) >= 3, metrics
    assert re.search(r"^lightningstor_corrupt_reads_total [1-9]", metrics, re.MULTILINE)
    assert daemon.stop() == 0
    log = daemon.log_text()
    assert f"corrupt blob {SHA} at offset {MiB}: block 1 fails its CRC32C" in log
    # Every damaged read is logged: the whole GET, the small range and the client's one retry
    # of its 500, the larger range, and gRPC.
    assert log.count(f"corrupt blob {SHA}") == 5
    # The refused reads have access lines of their own, with the bytes that did go out.
    cut_lines = [
        line for line in log.splitlines() if "op=GetObject status=200 code=InternalError" in line
    ]
    assert any(f"bytes_sent={MiB} " in line for line in cut_lines), log

    capsys.readouterr()
    assert main(["fsck", "--data-dir", str(daemon.data_dir), "--verify-content"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        f"blob {SHA}: content does not hash to its name (block 1 at offset {MiB} fails its "
        "CRC32C); used by object rot/victim"
    )
    assert out.splitlines()[-1].endswith(": 1 problems")

    # With verification turned off the damaged bytes would go out: what it prevents.
    daemon.extra_env["LIGHTNINGSTOR_VERIFY_READS"] = "false"
    daemon.start()
    served = get_body(plain_client(daemon), "victim")
    assert len(served) == len(BODY) and served != BODY
    assert daemon.stop() == 0
