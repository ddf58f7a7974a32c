"""Sources that keep failing authentication are slowed down, and logged, through both doors."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from lightningstor import errors
from lightningstor.client import Client
from lightningstor_server.ratelimit import FailedAuthLimiter
from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon, boto3_client


def test_limiter_window() -> None:
    now = [0.0]
    limiter = FailedAuthLimiter(failures=3, window_seconds=10, clock=lambda: now[0])
    for _ in range(3):
        limiter.check("10.0.0.1")
        limiter.failed("10.0.0.1")
    with pytest.raises(errors.SlowDown):
        limiter.check("10.0.0.1")
    limiter.check("10.0.0.2")  # other sources are unaffected
    now[0] = 10.5
    limiter.check("10.0.0.1")  # the window moved on


def test_guessing_is_slowed_down_and_logged(tmp_path: Path) -> None:
    daemon = Daemon(
        tmp_path / "data", extra_env={"LIGHTNINGSTOR_AUTH_FAILURES_PER_MINUTE": "5"}
    ).start()
    try:
        guesser: Any = boto3.client(
            "s3",
            endpoint_url=daemon.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key="guessed-wrong-secret",
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}),
        )
        codes = []
        for _ in range(7):
            with pytest.raises(ClientError) as raised:
                guesser.list_buckets()
            codes.append(raised.value.response["Error"]["Code"])
        assert codes[:5] == ["SignatureDoesNotMatch"] * 5
        assert codes[5:] == ["SlowDown", "SlowDown"]
        # The right key from the same address waits too: the address is what is limited.
        with pytest.raises(ClientError) as waited:
            boto3_client(daemon).list_buckets()
        assert waited.value.response["Error"]["Code"] == "SlowDown"

        async def grpc_guess() -> None:
            async with Client(
                daemon.grpc_target, access_key_id=ACCESS_KEY, secret_access_key="x" * 20
            ) as ls:
                await ls.list_buckets()

        with pytest.raises(errors.SlowDown):
            asyncio.run(grpc_guess())
        guesser.close()
    finally:
        daemon.stop()
    log = daemon.log_text()
    assert "authentication failed: peer=127.0.0.1 code=SignatureDoesNotMatch" in log
    assert "guessed-wrong-secret" not in log and SECRET_KEY not in log
