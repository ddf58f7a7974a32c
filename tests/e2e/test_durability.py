"""Restarts and kills of a real daemon lose nothing acknowledged and show nothing partial."""

from __future__ import annotations

import hashlib
import http.client
import os
import signal
import socket
import time

from tests.daemon import Daemon, boto3_client
from tests.raw import wait_for_staged_file
from tests.signing import sign


def test_restart_keeps_every_bucket_and_object(fresh_daemon: Daemon) -> None:
    fresh_daemon.start()
    s3 = boto3_client(fresh_daemon)
    payloads = {f"k{i}/obj": os.urandom(1000 * i + 1) for i in range(5)}
    for name in ("keep-one", "keep-two"):
        s3.create_bucket(Bucket=name)
        for key, body in payloads.items():
            s3.put_object(Bucket=name, Key=key, Body=body, Metadata={"n": key})
    assert fresh_daemon.stop() == 0

    fresh_daemon.start()
    s3 = boto3_client(fresh_daemon)
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == {"keep-one", "keep-two"}
    for name in ("keep-one", "keep-two"):
        for key, body in payloads.items():
            got = s3.get_object(Bucket=name, Key=key)
            assert got["Body"].read() == body
            assert got["Metadata"] == {"n": key}
            assert got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'


def _start_partial_upload(
    daemon: Daemon, bucket: str, key: str, sent: int, total: int
) -> http.client.HTTPConnection:
    path = f"/{bucket}/{key}"
    headers = sign("PUT", f"{daemon.endpoint}{path}", headers={"Content-Length": str(total)})
    conn = http.client.HTTPConnection("127.0.0.1", daemon.s3_port, timeout=30)
    conn.putrequest("PUT", path, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    chunk = os.urandom(1024 * 1024)
    for _ in range(sent // len(chunk)):
        conn.send(chunk)
    return conn


# Larger than inline_max_bytes, so it is a blob file like the cut-off bodies would have been.
ACKED = b"acknowledged before the crash " * 200


def test_sigkill_mid_upload_leaves_no_trace(fresh_daemon: Daemon) -> None:
    fresh_daemon.start()
    s3 = boto3_client(fresh_daemon)
    s3.create_bucket(Bucket="crash")
    s3.put_object(Bucket="crash", Key="victim", Body=ACKED)

    # Overwrite "victim" and upload "newcomer": both are cut off mid-body by SIGKILL.
    conns = [
        _start_partial_upload(fresh_daemon, "crash", "victim", 8 << 20, 64 << 20),
        _start_partial_upload(fresh_daemon, "crash", "newcomer", 8 << 20, 64 << 20),
    ]
    wait_for_staged_file(fresh_daemon, 4 << 20)
    fresh_daemon.kill()
    for conn in conns:
        conn.close()

    fresh_daemon.start()
    s3 = boto3_client(fresh_daemon)
    assert s3.get_object(Bucket="crash", Key="victim")["Body"].read() == ACKED
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="crash").get("Contents", [])]
    assert keys == ["victim"]
    assert list((fresh_daemon.data_dir / "tmp").iterdir()) == []
    # Only the acknowledged blob exists under the blob tree.
    blobs = [p for p in (fresh_daemon.data_dir / "blobs").rglob("*") if p.is_file()]
    assert [p.name for p in blobs] == [hashlib.sha256(ACKED).hexdigest()]


def test_client_disconnect_mid_upload_stores_nothing(fresh_daemon: Daemon) -> None:
    fresh_daemon.start()
    s3 = boto3_client(fresh_daemon)
    s3.create_bucket(Bucket="cut")
    s3.put_object(Bucket="cut", Key="k", Body=b"old")
    conn = _start_partial_upload(fresh_daemon, "cut", "k", 2 << 20, 16 << 20)
    wait_for_staged_file(fresh_daemon, 1 << 20)
    conn.close()
    deadline = time.monotonic() + 10
    while any((fresh_daemon.data_dir / "tmp").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list((fresh_daemon.data_dir / "tmp").iterdir()) == []
    assert s3.get_object(Bucket="cut", Key="k")["Body"].read() == b"old"


def test_sigterm_lets_an_in_flight_upload_finish(fresh_daemon: Daemon) -> None:
    fresh_daemon.start()
    s3 = boto3_client(fresh_daemon)
    s3.create_bucket(Bucket="graceful")
    total = 4 << 20
    conn = _start_partial_upload(fresh_daemon, "graceful", "late", 2 << 20, total)
    wait_for_staged_file(fresh_daemon, 1 << 20)
    assert fresh_daemon.proc is not None
    fresh_daemon.proc.send_signal(signal.SIGTERM)
    # New connections are refused (once the signal is handled) while the in-flight request
    # is allowed to finish.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", fresh_daemon.s3_port)) != 0:
                break
        time.sleep(0.02)
    else:
        raise AssertionError("the listener stayed open after SIGTERM")
    conn.send(b"\0" * (2 << 20))
    response = conn.getresponse()
    assert response.status == 200, response.read()
    conn.close()
    assert fresh_daemon.proc.wait(timeout=30) == 0
    assert "store closed cleanly" in fresh_daemon.log_text()
    fresh_daemon.proc = None

    fresh_daemon.start()
    assert (
        boto3_client(fresh_daemon).head_object(Bucket="graceful", Key="late")["ContentLength"]
        == total
    )


def test_shutdown_takes_one_grace_period_not_two(fresh_daemon: Daemon) -> None:
    """An upload that never finishes holds the shutdown for the grace period, once: aiohttp's
    own shutdown timeout used to run after our drain, doubling it (issue 20, item 7)."""
    grace = 3.0
    fresh_daemon.extra_env["LIGHTNINGSTOR_SHUTDOWN_GRACE_SECONDS"] = str(grace)
    fresh_daemon.start()
    boto3_client(fresh_daemon).create_bucket(Bucket="stuck")
    conn = _start_partial_upload(fresh_daemon, "stuck", "never", 2 << 20, 64 << 20)
    wait_for_staged_file(fresh_daemon, 1 << 20)
    assert fresh_daemon.proc is not None
    started = time.monotonic()
    fresh_daemon.proc.send_signal(signal.SIGTERM)
    assert fresh_daemon.proc.wait(timeout=30) == 0
    took = time.monotonic() - started
    conn.close()
    fresh_daemon.proc = None
    assert grace - 0.5 <= took < 2 * grace - 0.5, f"shutdown took {took:.1f} s"
    assert "grace period over: cutting off 1 S3 requests" in fresh_daemon.log_text()
