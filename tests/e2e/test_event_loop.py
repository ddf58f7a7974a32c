"""Both event loops serve both doors: uvloop (the default) and asyncio's own
(``event_loop = "asyncio"``)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from lightningstor.client import Client
from tests.daemon import Daemon, boto3_client


@pytest.mark.parametrize("setting", [None, "asyncio", "uvloop"])
def test_both_doors_on_each_loop(fresh_daemon: Daemon, setting: str | None) -> None:
    if setting is not None:
        fresh_daemon.extra_env["LIGHTNINGSTOR_EVENT_LOOP"] = setting
    fresh_daemon.start()
    assert f"{setting or 'uvloop'} loop" in fresh_daemon.log_text()
    s3 = boto3_client(fresh_daemon)
    s3.create_bucket(Bucket="loop")
    small, large = b"inline bytes", hashlib.sha256(b"seed").digest() * 100_000  # 3.2 MB
    s3.put_object(Bucket="loop", Key="small", Body=small)
    s3.put_object(Bucket="loop", Key="large", Body=large)
    assert s3.get_object(Bucket="loop", Key="small")["Body"].read() == small
    assert s3.get_object(Bucket="loop", Key="large")["Body"].read() == large

    async def over_grpc() -> bytes:
        async with Client(
            fresh_daemon.grpc_target,
            access_key_id=fresh_daemon.access_key,
            secret_access_key=fresh_daemon.secret_key,
        ) as client:
            await client.put_object("loop", "via-grpc", large)
            return await client.get_object("loop", "via-grpc")

    assert asyncio.run(over_grpc()) == large
