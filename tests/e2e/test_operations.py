"""The daemon as systemd and Prometheus see it: notify protocol, watchdog, metrics, probes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import threading
import urllib.request
from pathlib import Path

from lightningstor.client import Client
from lightningstor.offload import Offloader
from lightningstor_server.notify import Notifier
from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon, boto3_client


def _listen(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(30)
    return sock


def _messages(sock: socket.socket, until: str) -> list[str]:
    seen: list[str] = []
    while not any(until in m for m in seen):
        seen.append(sock.recv(4096).decode())
    return seen


def test_notify_ready_watchdog_and_stopping(tmp_path: Path) -> None:
    sock = _listen(tmp_path / "notify.sock")
    daemon = Daemon(
        tmp_path / "data",
        extra_env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "200000"},
    )
    daemon.start()
    ready = _messages(sock, "READY=1")
    # READY=1 comes only once both doors serve: both answer right now.
    for port in (daemon.s3_port, daemon.grpc_port):
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    assert any("STATUS=serving" in m for m in ready)
    assert any("WATCHDOG=1" in m for m in _messages(sock, "WATCHDOG=1"))
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGTERM)
    (stopping,) = [m for m in _messages(sock, "STOPPING=1") if "STOPPING=1" in m]
    # systemd is told how long the drain may take (the test daemon's grace: 5 s, plus 10).
    assert "EXTEND_TIMEOUT_USEC=15000000" in stopping.split("\n")
    assert daemon.proc.wait(timeout=30) == 0
    daemon.proc = None
    sock.close()


def test_the_watchdog_is_pinged_only_while_the_pool_answers(tmp_path: Path) -> None:
    sock = _listen(tmp_path / "notify.sock")
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "100000"})
    health = [True, False, False, True]

    async def healthy() -> bool:
        return health.pop(0) if health else True

    async def main() -> None:
        task = asyncio.create_task(notifier.watchdog(healthy))
        await asyncio.sleep(0.4)  # 8 rounds of 50 ms: fewer than a datagram queue holds
        task.cancel()
        await task

    asyncio.run(main())
    sock.settimeout(0.5)
    pings = 0
    with contextlib.suppress(TimeoutError):
        while True:
            pings += sock.recv(4096) == b"WATCHDOG=1"
    # About 20 rounds of 10 ms, two of them while the pool did not answer.
    assert pings >= 5 and not health
    sock.close()


def test_a_wedged_pool_does_not_answer() -> None:
    async def main() -> tuple[bool, bool]:
        offloader = Offloader(workers=1)
        blocker = threading.Event()
        busy = asyncio.get_running_loop().run_in_executor(None, lambda: None)
        await busy
        stuck = offloader.run(blocker.wait, 5)
        task = asyncio.ensure_future(stuck)
        await asyncio.sleep(0.05)
        wedged = await offloader.answers(within_seconds=0.2)
        blocker.set()
        await task
        alive = await offloader.answers(within_seconds=1)
        offloader.shutdown()
        return wedged, alive

    assert asyncio.run(main()) == (False, True)


def test_notifier_without_systemd_does_nothing() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    notifier.ready("x")  # no socket: no error
    assert notifier.watchdog_seconds is None


def _get(daemon: Daemon, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{daemon.metrics_port}{path}", timeout=10) as r:
        return r.status, r.read().decode()


def test_metrics_and_probes(daemon: Daemon) -> None:
    s3 = boto3_client(daemon)
    s3.create_bucket(Bucket="metered")
    s3.put_object(Bucket="metered", Key="k", Body=b"x" * 1000)
    with contextlib.suppress(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="metered", Key="missing")

    async def grpc_calls() -> None:
        async with Client(
            daemon.grpc_target, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
        ) as ls:
            await ls.head_object("metered", "k")

    asyncio.run(grpc_calls())
    s3.close()
    assert _get(daemon, "/health") == (200, "ok\n")
    assert _get(daemon, "/ready") == (200, "ready\n")
    status, text = _get(daemon, "/metrics")
    assert status == 200
    # status means the same on both doors; the error code has its own label.
    for protocol, operation in (("s3", "PutObject"), ("grpc", "HeadObject")):
        labels = f'code="",operation="{operation}",protocol="{protocol}",status="ok"'
        assert f"lightningstor_requests_total{{{labels}}}" in text
    missing = 'code="NoSuchKey",operation="GetObject",protocol="s3",status="client_error"'
    assert f"lightningstor_requests_total{{{missing}}}" in text
    for name in (
        "lightningstor_corrupt_reads_total",
        "lightningstor_gc_runs_total",
        "lightningstor_scrub_passes_total",
        "lightningstor_lifecycle_passes_total",
        "process_resident_memory_bytes",
        "lightningstor_build_info{",
    ):
        assert name in text, name
    assert "lightningstor_request_seconds_bucket" in text
    assert "lightningstor_objects " in text and "lightningstor_disk_free_bytes " in text
    received = [
        line for line in text.splitlines() if line.startswith("lightningstor_bytes_received_total{")
    ]
    assert any('protocol="s3"' in line and float(line.split()[-1]) >= 1000 for line in received)


def test_json_logs(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path / "data", extra_env={"LIGHTNINGSTOR_LOG_FORMAT": "json"}).start()
    boto3_client(daemon).list_buckets()
    daemon.stop()
    entries = [json.loads(line) for line in daemon.log_text().splitlines() if line.strip()]
    assert any("op=ListBuckets" in e["message"] and e["level"] == "info" for e in entries)


def test_malformed_requests_do_not_flood_the_log_with_tracebacks(daemon: Daemon) -> None:
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", daemon.s3_port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n")
            assert b" 400 Bad Request" in sock.recv(100)
    boto3_client(daemon).list_buckets()  # still serving
    log = daemon.log_text()
    assert "refused a malformed request" in log
    assert "Traceback" not in log
