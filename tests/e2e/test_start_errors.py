"""A daemon that cannot have what it is configured with refuses to start, in one line that
names the setting, and leaves whoever holds it alone (issue 20)."""

from __future__ import annotations

import json
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


def refused_start(daemon: Daemon, data_dir: Path, **env: str) -> str:
    """``serve`` on ``data_dir`` with ``env``: it must refuse, in one line; that line."""
    command = [sys.executable, "-m", "lightningstor_server.cli", "serve", "--data-dir",
               str(data_dir), "--s3-listen", f"127.0.0.1:{free_port()}", "--grpc-listen",
               f"127.0.0.1:{free_port()}", "--metrics-listen", ""]  # fmt: skip
    done = subprocess.run(
        command, env=daemon.env() | env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "cannot start: " in line]
    return line.partition("cannot start: ")[2]


def test_start_errors_say_what_is_wrong_in_one_line(fresh_daemon: Daemon, tmp_path: Path) -> None:
    fresh_daemon.start()
    locked = refused_start(fresh_daemon, fresh_daemon.data_dir)
    assert locked.startswith(
        f"another daemon or offline command is using the store in {fresh_daemon.data_dir}"
    )
    a_file = tmp_path / "a-file"
    a_file.write_text("not a store")
    assert refused_start(fresh_daemon, a_file) == f"data_dir {a_file} is not a directory"
    assert a_file.read_text() == "not a store"
    junk = tmp_path / "junk.pem"
    junk.write_text("not PEM\n")
    done = subprocess.run(
        [sys.executable, "-m", "lightningstor_server.cli", "admin", "cert", "--host", "127.0.0.1",
         "--out", str(tmp_path)], capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert done.returncode == 0
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    bad_cert = refused_start(
        fresh_daemon, tmp_path / "d1", LIGHTNINGSTOR_TLS_CERT_FILE=str(junk),
        LIGHTNINGSTOR_TLS_KEY_FILE=str(key),
    )  # fmt: skip
    assert bad_cert.startswith(f"tls_cert_file {junk}: not a PEM certificate")
    bad_key = refused_start(
        fresh_daemon, tmp_path / "d2", LIGHTNINGSTOR_TLS_CERT_FILE=str(cert),
        LIGHTNINGSTOR_TLS_KEY_FILE=str(junk),
    )  # fmt: skip
    assert bad_key.startswith(f"tls_key_file {junk}: not a PEM private key")
    # The running daemon was never disturbed.
    assert boto3_client(fresh_daemon).list_buckets()["Buckets"] == []


def test_json_is_taken_after_the_subcommand_too(fresh_daemon: Daemon) -> None:
    fresh_daemon.start()
    base = [sys.executable, "-m", "lightningstor_server.cli", "admin", "key", "--grpc",
            fresh_daemon.grpc_target, "--access-key", fresh_daemon.access_key,
            "--secret-key", fresh_daemon.secret_key]  # fmt: skip
    for command in ([*base, "list", "--json"], [*base, "--json", "list"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        listed = json.loads(done.stdout)
        assert fresh_daemon.access_key in json.dumps(listed)
    unknown = subprocess.run(
        [*base, "show", "LSNOSUCHKEY000000000"], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert unknown.returncode != 0
    assert "No access key LSNOSUCHKEY000000000 exists on this server" in unknown.stderr
    # The audit line says how the action ended, not only that it was asked for.
    assert (
        f"action=show-key subject=LSNOSUCHKEY000000000 by={fresh_daemon.access_key} "
        "outcome=InvalidAccessKeyId" in fresh_daemon.log_text()
    )
    made = subprocess.run([*base, "create", "twice-shown"], capture_output=True, text=True,
                          timeout=60, check=True).stdout  # fmt: skip
    assert "(keep it: shown once)" in made
    key_id = made.splitlines()[1].split()[0]  # the first cell under the header
    again = subprocess.run([*base, "secret", key_id], capture_output=True, text=True,
                           timeout=60, check=True).stdout  # fmt: skip
    assert "secret access key: " in again and "shown once" not in again
    granted = subprocess.run([*base, "grant", key_id, "team=read"], capture_output=True,
                             text=True, timeout=60, check=True).stdout  # fmt: skip
    assert "replaced all the key's earlier ones" in granted
