"""The master key is checked at start and can be rotated (issue 20, item 2): a daemon given a
key that does not open its store's secrets refuses to start and says what to do, instead of
reporting READY and answering every signed request with 500; `admin rotate-master-key`
re-seals every secret on a stopped store, and an interrupted rotation is finished by running
it again."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.daemon import Daemon, boto3_client


def rotate(daemon: Daemon, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "lightningstor_server.cli", "admin", "rotate-master-key",
               "--data-dir", str(daemon.data_dir), *extra]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_a_key_that_does_not_open_the_store_refuses_to_start(fresh_daemon: Daemon) -> None:
    fresh_daemon.start()
    boto3_client(fresh_daemon).create_bucket(Bucket="keyed")
    assert fresh_daemon.stop() == 0
    key_file = fresh_daemon.data_dir / "master.key"
    original = key_file.read_bytes()
    key_file.write_bytes(os.urandom(32))  # what following the unit file's comment used to do
    with pytest.raises(RuntimeError, match="daemon exited with 1"):
        fresh_daemon.start()
    log = fresh_daemon.log_text()
    assert f"cannot start: the master key {key_file} does not open the credentials" in log
    assert "Do not generate a new key" in log and "Traceback" not in log
    key_file.write_bytes(original)
    fresh_daemon.start()
    assert [b["Name"] for b in boto3_client(fresh_daemon).list_buckets()["Buckets"]] == ["keyed"]


def test_rotation_reseals_every_secret_and_the_old_key_no_longer_opens(
    fresh_daemon: Daemon,
) -> None:
    fresh_daemon.start()
    boto3_client(fresh_daemon).create_bucket(Bucket="rotated")
    refused = rotate(fresh_daemon)  # the daemon holds the store: nothing changes
    assert refused.returncode == 2 and "is a daemon running?" in refused.stderr
    assert fresh_daemon.stop() == 0
    key_file = fresh_daemon.data_dir / "master.key"
    old = key_file.read_bytes()
    done = rotate(fresh_daemon)
    assert done.returncode == 0, done.stderr
    assert "re-sealed 1 access keys" in done.stdout
    new = key_file.read_bytes()
    assert new != old and len(new) == 32 and key_file.stat().st_mode & 0o777 == 0o600
    assert not key_file.with_name("master.key.new").exists()
    fresh_daemon.start()  # the same credentials sign as before
    assert [b["Name"] for b in boto3_client(fresh_daemon).list_buckets()["Buckets"]] == ["rotated"]
    assert fresh_daemon.stop() == 0
    key_file.write_bytes(old)
    with pytest.raises(RuntimeError, match="daemon exited with 1"):
        fresh_daemon.start()
    assert rotate(fresh_daemon).returncode == 2  # the old key opens nothing to rotate either
    # A rotation interrupted after its commit, before its rename, is finished by a rerun.
    key_file.with_name("master.key.new").write_bytes(new)
    finished = rotate(fresh_daemon)
    assert finished.returncode == 0, finished.stderr
    assert key_file.read_bytes() == new
    fresh_daemon.start()
    assert [b["Name"] for b in boto3_client(fresh_daemon).list_buckets()["Buckets"]] == ["rotated"]
