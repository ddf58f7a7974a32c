"""Access control through both doors: limited keys, disabled keys, admin-only management, and
secrets that appear neither in the metadata files nor in the logs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from lightningstor import errors
from lightningstor.client import Client
from lightningstor.client.admin import AdminClient
from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon, TlsFiles, aws_env_of, boto3_client


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response: Any = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def s3_as(daemon: Daemon, key_id: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=daemon.endpoint,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )


def admin_cli(daemon: Daemon, *args: str, key: str = ACCESS_KEY, secret: str = SECRET_KEY) -> Any:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lightningstor_server.cli",
            "admin",
            "key",
            "--grpc",
            daemon.grpc_target,
            "--access-key",
            key,
            "--secret-key",
            secret,
            "--json",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def limited(daemon: Daemon, s3: Any) -> Iterator[dict[str, Any]]:
    for name in ("team-a", "team-b", "team-ro"):
        s3.create_bucket(Bucket=name)
    s3.put_object(Bucket="team-b", Key="private", Body=b"b's data")
    s3.put_object(Bucket="team-ro", Key="readme", Body=b"read only")
    made = admin_cli(
        daemon, "create", "team-a-service", "--grant", "team-a=readwrite", "--grant", "team-ro=read"
    )
    yield made


def test_limited_key_over_s3(daemon: Daemon, limited: dict[str, Any]) -> None:
    s3 = s3_as(daemon, limited["access_key_id"], limited["secret_access_key"])
    assert sorted(b["Name"] for b in s3.list_buckets()["Buckets"]) == ["team-a", "team-ro"]
    s3.put_object(Bucket="team-a", Key="k", Body=b"mine")
    assert s3.get_object(Bucket="team-a", Key="k")["Body"].read() == b"mine"
    assert s3.get_object(Bucket="team-ro", Key="readme")["Body"].read() == b"read only"
    denied: list[Callable[[], Any]] = [
        lambda: s3.list_objects_v2(Bucket="team-b"),
        lambda: s3.get_object(Bucket="team-b", Key="private"),
        lambda: s3.put_object(Bucket="team-b", Key="x", Body=b"x"),
        lambda: s3.delete_object(Bucket="team-b", Key="private"),
        lambda: s3.put_object(Bucket="team-ro", Key="x", Body=b"x"),
        lambda: s3.copy_object(Bucket="team-a", Key="stolen", CopySource="team-b/private"),
        lambda: s3.create_multipart_upload(Bucket="team-b", Key="x"),
    ]
    for attempt in denied:
        with pytest.raises(ClientError) as raised:
            attempt()
        assert error_of(raised) == ("AccessDenied", 403)
    root = boto3_client(daemon)
    assert root.get_object(Bucket="team-b", Key="private")["Body"].read() == b"b's data"
    with pytest.raises(ClientError):
        root.head_object(Bucket="team-a", Key="stolen")
    s3.close()
    root.close()


def test_limited_key_over_grpc(daemon: Daemon, limited: dict[str, Any]) -> None:
    async def scenario() -> None:
        async with Client(
            daemon.grpc_target,
            access_key_id=limited["access_key_id"],
            secret_access_key=limited["secret_access_key"],
        ) as ls:
            assert sorted(b.name for b in await ls.list_buckets()) == ["team-a", "team-ro"]
            await ls.put_object("team-a", "from-grpc", b"ok")
            attempts: list[Callable[[], Awaitable[Any]]] = [
                lambda: ls.get_bucket("team-b"),
                lambda: ls.delete_bucket("team-b"),
                lambda: ls.get_object("team-b", "private"),
                lambda: ls.put_object("team-b", "x", b"x"),
                lambda: ls.head_object("team-b", "private"),
                lambda: ls.delete_object("team-b", "private"),
                lambda: ls.put_object("team-ro", "x", b"x"),
                lambda: ls.copy_object(("team-b", "private"), ("team-a", "stolen")),
                lambda: ls.create_multipart_upload("team-b", "x"),
            ]
            for attempt in attempts:
                with pytest.raises(errors.AccessDenied):
                    await attempt()

    asyncio.run(scenario())


def test_disabled_key_is_refused_at_once_and_admin_needs_admin(daemon: Daemon, s3: Any) -> None:
    made = admin_cli(daemon, "create", "short-lived", "--grant", "team-a=read")
    limited = s3_as(daemon, made["access_key_id"], made["secret_access_key"])
    limited.list_objects_v2(Bucket="team-a")
    admin_cli(daemon, "disable", made["access_key_id"])
    with pytest.raises(ClientError) as refused:
        limited.list_objects_v2(Bucket="team-a")
    assert error_of(refused) == ("InvalidAccessKeyId", 403)
    admin_cli(daemon, "enable", made["access_key_id"])
    limited.list_objects_v2(Bucket="team-a")
    with pytest.raises(RuntimeError, match="AccessDenied"):
        admin_cli(daemon, "list", key=made["access_key_id"], secret=made["secret_access_key"])
    listed = admin_cli(daemon, "list")
    assert made["access_key_id"] in [k["access_key_id"] for k in listed]
    assert all("secret_access_key" not in k for k in listed)
    shown = admin_cli(daemon, "show", made["access_key_id"])
    assert (shown[0]["name"], shown[0]["grants"]) == ("short-lived", {"team-a": "read"})
    revealed = admin_cli(daemon, "secret", made["access_key_id"])
    assert revealed["secret_access_key"] == made["secret_access_key"]
    admin_cli(daemon, "grant", made["access_key_id"], "team-b=read")
    assert [o["Key"] for o in limited.list_objects_v2(Bucket="team-b")["Contents"]] == ["private"]
    admin_cli(daemon, "delete", made["access_key_id"])
    with pytest.raises(ClientError) as gone:
        limited.list_objects_v2(Bucket="team-b")
    assert error_of(gone) == ("InvalidAccessKeyId", 403)
    limited.close()


def test_no_secret_in_metadata_files_or_logs(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path / "data").start()
    try:
        secrets = [SECRET_KEY]

        async def make_keys() -> None:
            async with AdminClient(
                daemon.grpc_target, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
            ) as admin:
                for n in range(3):
                    secrets.append(
                        (await admin.create(f"k{n}", grants={"b": "read"})).secret_access_key
                    )
                await admin.secret((await admin.list())[0].access_key_id)

        asyncio.run(make_keys())
        boto3_client(daemon).list_buckets()
    finally:
        daemon.stop()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "data" / "meta").iterdir() if p.is_file())
    log = daemon.log_text()
    assert "action=create-key" in log and "action=reveal-secret" in log  # audited...
    assert all("outcome=ok" in line for line in log.splitlines() if "action=create-key" in line)
    for secret in secrets:
        assert secret.encode() not in raw
        assert secret not in log  # ...without secrets


def test_admin_cert_serves_tls_to_aws_cli(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lightningstor_server.cli",
            "admin",
            "cert",
            "--host",
            "127.0.0.1",
            "--host",
            "localhost",
            "--out",
            str(tmp_path / "tls"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "tls.crt" in done.stdout
    assert (tmp_path / "tls" / "tls.key").stat().st_mode & 0o777 == 0o600
    tls = TlsFiles(cert=tmp_path / "tls" / "tls.crt", key=tmp_path / "tls" / "tls.key")
    daemon = Daemon(tmp_path / "data", tls=tls).start()
    try:
        aws = str(Path(sys.executable).with_name("aws"))
        listed = subprocess.run(
            [
                aws,
                "--endpoint-url",
                daemon.endpoint,
                "--ca-bundle",
                str(tls.cert),
                "s3",
                "mb",
                "s3://tls-bucket",
            ],
            env=aws_env_of(daemon),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr
    finally:
        daemon.stop()
