"""The last active admin key cannot disable or delete itself; a stopped store can always be
given a new admin key offline (``lightningstor admin recover``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightningstor import errors
from lightningstor.client.admin import AdminClient
from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon, boto3_client


def _admin(daemon: Daemon, key_id: str = ACCESS_KEY, secret: str = SECRET_KEY) -> AdminClient:
    return AdminClient(daemon.grpc_target, access_key_id=key_id, secret_access_key=secret)


def test_the_last_admin_cannot_remove_itself(daemon: Daemon) -> None:
    async def scenario() -> None:
        async with _admin(daemon) as root:
            limited = await root.create("limited", grants={"b": "read"})
            with pytest.raises(errors.LastAdminKey):
                await root.set_active(ACCESS_KEY, False)
            with pytest.raises(errors.LastAdminKey):
                await root.delete(ACCESS_KEY)
            # Keys that are not admins come and go as before.
            await root.set_active(limited.key.access_key_id, False)
            await root.delete(limited.key.access_key_id)
            second = await root.create("second admin", admin=True)
            await root.set_active(ACCESS_KEY, False)  # another admin is left: allowed
        other = second.key.access_key_id
        async with _admin(daemon, other, second.secret_access_key) as admin:
            with pytest.raises(errors.LastAdminKey):
                await admin.set_active(other, False)
            await admin.set_active(ACCESS_KEY, True)
            await admin.delete(other)  # the root key is active again: allowed
        async with _admin(daemon) as root:
            keys = await root.list()
            assert [k.access_key_id for k in keys if k.admin and k.active] == [ACCESS_KEY]

    asyncio.run(scenario())
    assert "Buckets" in boto3_client(daemon).list_buckets()


def test_two_admins_disabling_each_other_leave_one(daemon: Daemon) -> None:
    async def scenario() -> None:
        async with _admin(daemon) as root:
            second = await root.create("racer", admin=True)
        keys = {ACCESS_KEY: SECRET_KEY, second.key.access_key_id: second.secret_access_key}
        other = second.key.access_key_id
        async with _admin(daemon) as first, _admin(daemon, other, keys[other]) as then:
            outcomes = await asyncio.gather(
                first.set_active(other, False),
                then.set_active(ACCESS_KEY, False),
                return_exceptions=True,
            )
        # One wins; the other is refused (LastAdminKey, or at authentication if its own key
        # was disabled first).
        won = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(won) == 1, outcomes
        survivor = other if won[0].access_key_id == ACCESS_KEY else ACCESS_KEY
        async with _admin(daemon, survivor, keys[survivor]) as admin:
            active = [k.access_key_id for k in await admin.list() if k.admin and k.active]
            assert active == [survivor]
            if survivor != ACCESS_KEY:
                await admin.set_active(ACCESS_KEY, True)
        async with _admin(daemon) as root:
            await root.set_active(other, True)
            await root.delete(other)

    asyncio.run(scenario())


def _recover(data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTNINGSTOR_", "AWS_"))}
    command = [sys.executable, "-m", "lightningstor_server.cli", "admin", "recover"]
    return subprocess.run(
        [*command, "--data-dir", str(data_dir), *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_offline_recovery_gives_a_stopped_store_a_new_admin(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path / "data").start()
    boto3_client(daemon).create_bucket(Bucket="kept")
    running = _recover(daemon.data_dir)
    assert running.returncode == 2 and "is a daemon running?" in running.stderr
    assert daemon.stop() == 0
    wrong_key = tmp_path / "other.key"
    wrong_key.write_bytes(os.urandom(32))
    refused = _recover(daemon.data_dir, "--master-key-file", str(wrong_key))
    assert refused.returncode == 2 and "does not open" in refused.stderr, refused.stderr
    done = _recover(daemon.data_dir)
    assert done.returncode == 0, done.stderr
    found = dict(line.split("=", 1) for line in done.stdout.splitlines())
    key_id, secret = found["AWS_ACCESS_KEY_ID"], found["AWS_SECRET_ACCESS_KEY"]
    assert secret not in done.stderr
    daemon.start()
    try:

        async def admin_calls() -> list[str]:
            async with _admin(daemon, key_id, secret) as admin:
                return [k.name for k in await admin.list()]

        names = asyncio.run(admin_calls())
        assert "recovered-admin" in names and len(names) == 2  # the wrong key added nothing
        s3 = boto3_client(daemon)
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["kept"]
        s3.close()
    finally:
        assert daemon.stop() == 0
