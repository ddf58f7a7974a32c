"""Failed authentications are throttled per (address, key id), never a valid signature, and
logged, through every door (S3 headers, presigned URLs, POST forms, gRPC)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lightningstor import errors
from lightningstor.client import Client
from lightningstor_server.ratelimit import FailedAuthLimiter
from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon, boto3_client
from tests.e2e.test_access import s3_as
from tests.raw import Reply, form_body, metric, post_form

BUDGET = 5


def test_limiter_counts_per_address_and_key_id() -> None:
    now = [0.0]
    limiter = FailedAuthLimiter(failures=3, window_seconds=10, clock=lambda: now[0])

    def refuse(source: str, key_id: str, error: errors.AuthError) -> str:
        return limiter.refuse(error, door="s3", source=source, key_id=key_id).code

    bad = errors.SignatureDoesNotMatch()
    assert [refuse("10.0.0.1", "AKIDA", bad) for _ in range(4)] == ["SignatureDoesNotMatch"] * 3 + [
        "SlowDown"
    ]
    assert refuse("10.0.0.1", "AKIDB", bad) == "SignatureDoesNotMatch"  # another key id
    assert refuse("10.0.0.2", "AKIDA", bad) == "SignatureDoesNotMatch"  # another address
    # Every unknown key id from one address shares one count, whatever id it claims.
    unknown = [refuse("10.0.0.1", f"MADEUP{n:014d}", errors.InvalidAccessKeyId()) for n in range(4)]
    assert unknown == ["InvalidAccessKeyId"] * 3 + ["SlowDown"]
    now[0] = 10.5
    assert refuse("10.0.0.1", "AKIDA", bad) == "SignatureDoesNotMatch"  # the window moved on


@pytest.fixture
def strict_daemon(tmp_path: Path) -> Iterator[Daemon]:
    daemon = Daemon(
        tmp_path / "data", extra_env={"LIGHTNINGSTOR_AUTH_FAILURES_PER_MINUTE": str(BUDGET)}
    ).start()
    yield daemon
    if daemon.proc is not None:
        daemon.stop()


def _codes(client: Any, times: int) -> list[str]:
    codes = []
    for _ in range(times):
        with pytest.raises(ClientError) as raised:
            client.list_buckets()
        codes.append(raised.value.response["Error"]["Code"])
    return codes


async def _grpc_list(daemon: Daemon, key_id: str, secret: str) -> None:
    async with Client(daemon.grpc_target, access_key_id=key_id, secret_access_key=secret) as ls:
        await ls.list_buckets()


def test_guessing_one_key_slows_the_guesser_not_the_key(strict_daemon: Daemon) -> None:
    guesser = s3_as(strict_daemon, ACCESS_KEY, "guessed-wrong-secret")
    codes = _codes(guesser, BUDGET + 2)
    assert codes == ["SignatureDoesNotMatch"] * BUDGET + ["SlowDown"] * 2
    # A valid signature from the same address, for the same key, is never refused.
    right = boto3_client(strict_daemon)
    assert "Buckets" in right.list_buckets()
    asyncio.run(_grpc_list(strict_daemon, ACCESS_KEY, SECRET_KEY))
    # The guesser's pair is over budget on gRPC too (one policy, both doors).
    with pytest.raises(errors.SlowDown):
        asyncio.run(_grpc_list(strict_daemon, ACCESS_KEY, "x" * 20))
    guesser.close()
    right.close()
    log = strict_daemon.log_text()
    assert (
        f"authentication failed: door=s3 peer=127.0.0.1 key_id={ACCESS_KEY} "
        "code=SignatureDoesNotMatch" in log
    )
    assert "guessed-wrong-secret" not in log and SECRET_KEY not in log


def test_made_up_key_ids_do_not_lock_out_valid_keys(strict_daemon: Daemon) -> None:
    for n in range(4 * BUDGET):
        made_up = s3_as(strict_daemon, f"LSMADEUP{n:012d}", "whatever-secret-x")
        _codes(made_up, 1)
        made_up.close()
    # The spray itself is throttled: a further made-up id gets SlowDown ...
    sprayer = s3_as(strict_daemon, "LSMADEUPLAST00000000", "whatever-secret-x")
    assert _codes(sprayer, 1) == ["SlowDown"]
    sprayer.close()
    with pytest.raises(errors.SlowDown):
        asyncio.run(_grpc_list(strict_daemon, "LSMADEUPGRPC00000000", "x" * 20))
    # ... and the root key from the same address is served through both doors.
    root = boto3_client(strict_daemon)
    assert "Buckets" in root.list_buckets()
    root.close()
    asyncio.run(_grpc_list(strict_daemon, ACCESS_KEY, SECRET_KEY))


def _post_form(daemon: Daemon, bucket: str, secret: str) -> Reply | None:
    policy = base64.b64encode(
        json.dumps(
            {
                "expiration": "2099-01-01T00:00:00Z",
                "conditions": [{"bucket": bucket}, ["starts-with", "$key", ""]],
            }
        ).encode()
    )
    signature = base64.b64encode(hmac.new(secret.encode(), policy, hashlib.sha1).digest())
    fields: list[tuple[str, str | bytes]] = [
        ("key", "posted"),
        ("AWSAccessKeyId", ACCESS_KEY),
        ("policy", policy),
        ("signature", signature),
        ("file", b"data"),
    ]
    return post_form(daemon, bucket, form_body(fields))


def test_post_form_failures_share_the_policy_and_the_metric(strict_daemon: Daemon) -> None:
    root = boto3_client(strict_daemon)
    root.create_bucket(Bucket="forms")
    before = metric(strict_daemon, "lightningstor_auth_failures_total", protocol="s3")
    replies = [_post_form(strict_daemon, "forms", "wrong-secret-wrong") for _ in range(BUDGET + 1)]
    codes = [(r.status, r.code) if r else None for r in replies]
    assert codes == [(403, "SignatureDoesNotMatch")] * BUDGET + [(503, "SlowDown")]
    after = metric(strict_daemon, "lightningstor_auth_failures_total", protocol="s3")
    assert after - before == BUDGET + 1
    # A correctly signed form from the same address still lands.
    landed = _post_form(strict_daemon, "forms", SECRET_KEY)
    assert landed is not None and landed.status == 204, landed
    assert root.get_object(Bucket="forms", Key="posted")["Body"].read() == b"data"
    root.close()
