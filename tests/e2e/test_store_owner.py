"""Offline commands and the daemon refuse a store that belongs to another user (issue 20,
item 5): run as root on the service's store, fsck --repair used to leave root-owned 0600
files the service could not read, and every GET of a repaired object then failed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightningstor.testing import free_port
from tests.daemon import Daemon, boto3_client

NOBODY = 65534


def owners(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_uid, p.stat().st_mtime_ns) for p in root.rglob("*")
    }


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a store to another user takes root")
def test_another_users_store_is_refused_and_left_as_it_was(fresh_daemon: Daemon) -> None:
    fresh_daemon.start()
    s3 = boto3_client(fresh_daemon)
    s3.create_bucket(Bucket="served")
    s3.put_object(Bucket="served", Key="k", Body=os.urandom(10_000))
    assert fresh_daemon.stop() == 0
    data = fresh_daemon.data_dir
    for path in [data, *data.rglob("*")]:
        os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
    before = owners(data)
    cli = [sys.executable, "-m", "lightningstor_server.cli"]
    for command in (
        ["fsck", "--data-dir", str(data), "--repair"],
        ["stats", "--data-dir", str(data)],
        ["gc", "--data-dir", str(data)],
        ["admin", "recover", "--data-dir", str(data)],
        ["admin", "rotate-master-key", "--data-dir", str(data)],
        ["serve", "--data-dir", str(data), "--s3-listen", f"127.0.0.1:{free_port()}",
         "--grpc-listen", f"127.0.0.1:{free_port()}", "--metrics-listen", ""],
    ):  # fmt: skip
        done = subprocess.run(
            [*cli, *command], env=fresh_daemon.env(), capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode in (1, 2), command
        assert f"{data} belongs to user nobody (uid {NOBODY})" in done.stderr, done.stderr
        assert "sudo -u nobody lightningstor" in done.stderr
        assert "Traceback" not in done.stderr
    assert owners(data) == before  # not a file made, changed or re-owned
