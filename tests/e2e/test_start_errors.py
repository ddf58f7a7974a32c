"""A daemon that cannot have what it is configured with refuses to start, in one line that
names the setting, and leaves whoever holds it alone (issue 20)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from lightningstor.testing import free_port
from tests.daemon import Daemon, boto3_client
from tests.e2e.test_access import admin_cli


def serve(
    daemon: Daemon, data_dir: Path, *, s3: int, grpc: int
) -> subprocess.CompletedProcess[str]:
    """A second daemon's whole run: it must exit by itself, quickly."""
    env = daemon.env() | {"LIGHTNINGSTOR_METRICS_LISTEN": f"127.0.0.1:{free_port()}"}
    listen = ["--s3-listen", f"127.0.0.1:{s3}", "--grpc-listen", f"127.0.0.1:{grpc}"]
    command = [
        sys.executable,
        "-m",
        "lightningstor_server.cli",
        "serve",
        "--data-dir",
        str(data_dir),
    ]
    return subprocess.run(
        [*command, *listen], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_a_second_daemon_cannot_share_a_port(fresh_daemon: Daemon, tmp_path: Path) -> None:
    fresh_daemon.start()
    s3 = boto3_client(fresh_daemon)
    s3.create_bucket(Bucket="first")
    s3.put_object(Bucket="first", Key="k", Body=b"kept")
    # gRPC's default SO_REUSEPORT used to let this one start and take half the connections.
    second = serve(fresh_daemon, tmp_path / "other", s3=free_port(), grpc=fresh_daemon.grpc_port)
    assert second.returncode == 1
    expected = f"cannot start: grpc_listen 127.0.0.1:{fresh_daemon.grpc_port}: cannot bind"
    assert expected in second.stderr
    assert "Traceback" not in second.stderr
    third = serve(fresh_daemon, tmp_path / "third", s3=fresh_daemon.s3_port, grpc=free_port())
    assert third.returncode == 1
    assert f"cannot start: s3_listen 127.0.0.1:{fresh_daemon.s3_port}: " in third.stderr
    assert "Traceback" not in third.stderr
    # The first daemon serves on, over both doors, with what it held.
    assert s3.get_object(Bucket="first", Key="k")["Body"].read() == b"kept"
    listed = admin_cli(
        fresh_daemon, "list", key=fresh_daemon.access_key, secret=fresh_daemon.secret_key
    )
    assert fresh_daemon.access_key in str(listed)


def test_a_taken_metrics_port_stops_the_start_before_serving_is_announced(
    fresh_daemon: Daemon, tmp_path: Path
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = fresh_daemon.env() | {"LIGHTNINGSTOR_METRICS_LISTEN": f"127.0.0.1:{port}"}
        command = [sys.executable, "-m", "lightningstor_server.cli", "serve", "--data-dir",
                   str(tmp_path / "data"), "--s3-listen", f"127.0.0.1:{free_port()}",
                   "--grpc-listen", f"127.0.0.1:{free_port()}"]  # fmt: skip
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode == 1
    assert f"cannot start: metrics_listen 127.0.0.1:{port}: " in done.stderr
    assert "serving" not in done.stderr and "Traceback" not in done.stderr


def test_make_run_takes_all_three_listeners() -> None:
    root = Path(__file__).resolve().parents[2]
    planned = subprocess.run(
        ["make", "-n", "-C", str(root), "run", "S3_LISTEN=127.0.0.1:9100",
         "GRPC_LISTEN=127.0.0.1:50052", "METRICS_LISTEN=127.0.0.1:9102"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    serve = planned[planned.index("lightningstor serve") :]
    for flag in ("--s3-listen 127.0.0.1:9100", "--grpc-listen 127.0.0.1:50052",
                 "--metrics-listen '127.0.0.1:9102'"):  # fmt: skip
        assert flag in serve
