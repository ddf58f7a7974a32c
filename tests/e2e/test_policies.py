"""Access policies end to end, through aws-cli, boto3, curl and the gRPC client: nothing is
public until both the operator and the bucket owner say so; a bucket policy grants a second key
one prefix, over both doors; an explicit Deny on aws:SourceIp beats every Allow; a malformed
policy is refused and the old one kept."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lightningstor import errors
from lightningstor.client import Client
from lightningstor.client.admin import AdminClient
from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon, aws_env_of, boto3_client
from tests.e2e.test_access import error_of, s3_as

VENV_AWS = str(Path(sys.executable).with_name("aws"))
CURL = shutil.which("curl")


def aws(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VENV_AWS, "--endpoint-url", daemon.endpoint, *args],
        env=aws_env_of(daemon),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def curl_status(url: str) -> tuple[int, bytes]:
    """An unsigned GET, as a browser or a download script makes it."""
    assert CURL is not None
    done = subprocess.run(
        [CURL, "-s", "-o", "-", "-w", "\n%{http_code}", url],
        capture_output=True,
        timeout=30,
        check=True,
    )
    body, _, status = done.stdout.rpartition(b"\n")
    return int(status), body


def public_read_policy(bucket: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublicRead",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                }
            ],
        }
    )


def new_key(daemon: Daemon, name: str) -> tuple[str, str]:
    async def make() -> tuple[str, str]:
        async with AdminClient(
            daemon.grpc_target, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
        ) as admin:
            made = await admin.create(name)
        return made.key.access_key_id, made.secret_access_key

    return asyncio.run(make())


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_public_read_needs_the_operator_and_the_bucket_owner(tmp_path: Path) -> None:
    data = tmp_path / "data"
    url = "/downloads/release.tar"
    closed = Daemon(data).start()
    try:
        s3 = boto3_client(closed)
        s3.create_bucket(Bucket="downloads")
        s3.put_object(Bucket="downloads", Key="release.tar", Body=b"the release")
        assert curl_status(closed.endpoint + url)[0] == 403
        # The owner lifts the bucket's block; the server-wide block still refuses the policy.
        assert (
            aws(closed, "s3api", "delete-public-access-block", "--bucket", "downloads").returncode
            == 0
        )
        refused = aws(
            closed, "s3api", "put-bucket-policy", "--bucket", "downloads",
            "--policy", public_read_policy("downloads"),
        )  # fmt: skip
        assert refused.returncode != 0 and "AccessDenied" in refused.stderr
        assert curl_status(closed.endpoint + url)[0] == 403
        s3.close()
    finally:
        assert closed.stop() == 0
    opened = Daemon(data, extra_env={"LIGHTNINGSTOR_BLOCK_PUBLIC_ACCESS": "false"}).start()
    try:
        s3 = boto3_client(opened)
        # The operator lifted the server's block; the bucket's own block, back on, refuses.
        s3.put_public_access_block(
            Bucket="downloads",
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        with pytest.raises(ClientError) as raised:
            s3.put_bucket_policy(Bucket="downloads", Policy=public_read_policy("downloads"))
        assert error_of(raised) == ("AccessDenied", 403)
        assert curl_status(opened.endpoint + url)[0] == 403
        # Both lifted: the policy is taken, and curl downloads without credentials.
        s3.delete_public_access_block(Bucket="downloads")
        put = aws(
            opened, "s3api", "put-bucket-policy", "--bucket", "downloads",
            "--policy", public_read_policy("downloads"),
        )  # fmt: skip
        assert put.returncode == 0, put.stderr
        assert curl_status(opened.endpoint + url) == (200, b"the release")
        status = s3.get_bucket_policy_status(Bucket="downloads")["PolicyStatus"]
        assert status["IsPublic"] is True
        # Public reads only: anonymous listing and writes stay refused, other buckets private.
        assert curl_status(opened.endpoint + "/downloads")[0] == 403
        s3.create_bucket(Bucket="private")
        s3.put_object(Bucket="private", Key="k", Body=b"secret")
        assert curl_status(opened.endpoint + "/private/k")[0] == 403
        # RestrictPublicBuckets turns the public policy off again without removing it.
        s3.put_public_access_block(
            Bucket="downloads",
            PublicAccessBlockConfiguration={"RestrictPublicBuckets": True},
        )
        assert curl_status(opened.endpoint + url)[0] == 403
        assert s3.get_object(Bucket="downloads", Key="release.tar")["Body"].read() == b"the release"
        s3.close()
    finally:
        assert opened.stop() == 0


@pytest.fixture(scope="module")
def shared(daemon: Daemon) -> Iterator[tuple[str, str]]:
    """A bucket of the admin's holding public/ and private/ objects, and a second key that
    holds no grant on it."""
    s3 = boto3_client(daemon)
    s3.create_bucket(Bucket="shared")
    for key in ("public/a.txt", "private/b.txt"):
        s3.put_object(Bucket="shared", Key=key, Body=key.encode())
    s3.close()
    yield new_key(daemon, "reader")


def prefix_policy(reader: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": [reader]},
                    "Action": ["s3:GetObject"],
                    "Resource": ["arn:aws:s3:::shared/public/*"],
                },
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": reader},
                    "Action": "s3:ListBucket",
                    "Resource": "arn:aws:s3:::shared",
                    "Condition": {"StringLike": {"s3:prefix": "public/*"}},
                },
            ],
        }
    )


def test_a_policy_grants_a_second_key_one_prefix_over_both_doors(
    daemon: Daemon, shared: tuple[str, str]
) -> None:
    reader_id, reader_secret = shared
    put = aws(
        daemon, "s3api", "put-bucket-policy", "--bucket", "shared",
        "--policy", prefix_policy(reader_id),
    )  # fmt: skip
    assert put.returncode == 0, put.stderr
    reader = s3_as(daemon, reader_id, reader_secret)
    assert reader.get_object(Bucket="shared", Key="public/a.txt")["Body"].read() == b"public/a.txt"
    listed = reader.list_objects_v2(Bucket="shared", Prefix="public/")
    assert [o["Key"] for o in listed["Contents"]] == ["public/a.txt"]
    attempts: list[Callable[[], Any]] = [
        lambda: reader.get_object(Bucket="shared", Key="private/b.txt"),
        lambda: reader.list_objects_v2(Bucket="shared"),
        lambda: reader.list_objects_v2(Bucket="shared", Prefix="private/"),
        lambda: reader.put_object(Bucket="shared", Key="public/new", Body=b"x"),
        lambda: reader.delete_object(Bucket="shared", Key="public/a.txt"),
        lambda: reader.get_bucket_policy(Bucket="shared"),
    ]
    for attempt in attempts:
        with pytest.raises(ClientError) as raised:
            attempt()
        assert error_of(raised) == ("AccessDenied", 403)
    # A missing key inside the prefix is NoSuchKey to a key that may list it; outside, 403.
    with pytest.raises(ClientError) as raised:
        reader.get_object(Bucket="shared", Key="public/missing")
    assert error_of(raised) == ("NoSuchKey", 404)
    reader.close()

    async def over_grpc() -> None:
        async with Client(
            daemon.grpc_target, access_key_id=reader_id, secret_access_key=reader_secret
        ) as ls:
            assert await ls.get_object("shared", "public/a.txt") == b"public/a.txt"
            listed = [item async for item in ls.list_objects("shared", prefix="public/")]
            assert [getattr(o, "key", o) for o in listed] == ["public/a.txt"]
            with pytest.raises(errors.AccessDenied):
                await ls.get_object("shared", "private/b.txt")
            with pytest.raises(errors.AccessDenied):
                _ = [item async for item in ls.list_objects("shared")]
            with pytest.raises(errors.AccessDenied):
                await ls.put_object("shared", "public/x", b"x")

    asyncio.run(over_grpc())
    assert _admin_policy(daemon, "get", "shared") == prefix_policy(reader_id)


def test_an_explicit_deny_on_the_source_address_beats_every_allow(
    daemon: Daemon, shared: tuple[str, str]
) -> None:
    reader_id, reader_secret = shared
    allow = {
        "Effect": "Allow",
        "Principal": {"AWS": reader_id},
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::shared/*",
    }
    deny_loopback = {
        "Sid": "NoLoopback",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::shared/private/*",
        "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1/128"]}},
    }
    admin = boto3_client(daemon)
    policy = {"Version": "2012-10-17", "Statement": [allow, deny_loopback]}
    admin.put_bucket_policy(Bucket="shared", Policy=json.dumps(policy))
    reader = s3_as(daemon, reader_id, reader_secret)
    assert reader.get_object(Bucket="shared", Key="public/a.txt")["Body"].read() == b"public/a.txt"
    for client in (reader, admin):  # the Deny binds admin keys too
        with pytest.raises(ClientError) as raised:
            client.get_object(Bucket="shared", Key="private/b.txt")
        assert error_of(raised) == ("AccessDenied", 403)

    async def over_grpc() -> None:
        async with Client(
            daemon.grpc_target, access_key_id=reader_id, secret_access_key=reader_secret
        ) as ls:
            with pytest.raises(errors.AccessDenied):
                await ls.get_object("shared", "private/b.txt")
            assert await ls.get_object("shared", "public/a.txt") == b"public/a.txt"

    asyncio.run(over_grpc())
    # A Deny for addresses this client does not come from changes nothing for it.
    deny_loopback["Condition"] = {"NotIpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1/128"]}}
    admin.put_bucket_policy(Bucket="shared", Policy=json.dumps(policy))
    assert (
        reader.get_object(Bucket="shared", Key="private/b.txt")["Body"].read() == b"private/b.txt"
    )
    admin.delete_bucket_policy(Bucket="shared")
    reader.close()
    admin.close()


@pytest.mark.parametrize(
    "malformed",
    [
        "{not json",
        json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]}),
        json.dumps(
            {
                "Statement": {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObjekt",
                    "Resource": "arn:aws:s3:::shared/*",
                }
            }
        ),
        json.dumps(
            {
                "Statement": {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::shared/*",
                    "Condition": {"StringEquals": {"s3:no-such-key": "x"}},
                }
            }
        ),
        json.dumps(
            {
                "Statement": {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::shared/*",
                    "Condition": {"StringSoundsLike": {"s3:prefix": "x"}},
                }
            }
        ),
        json.dumps(
            {
                "Statement": {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::nobody-here:root"},
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::shared/*",
                }
            }
        ),
    ],
)
def test_a_malformed_policy_is_refused_and_the_old_one_kept(
    daemon: Daemon, shared: tuple[str, str], malformed: str, tmp_path: Path
) -> None:
    reader_id, _ = shared
    good = prefix_policy(reader_id)
    admin = boto3_client(daemon)
    admin.put_bucket_policy(Bucket="shared", Policy=good)
    refused = aws(daemon, "s3api", "put-bucket-policy", "--bucket", "shared", "--policy", malformed)
    assert refused.returncode != 0 and "MalformedPolicy" in refused.stderr, refused.stderr
    assert admin.get_bucket_policy(Bucket="shared")["Policy"] == good
    path = tmp_path / "policy.json"
    path.write_text(malformed)
    with pytest.raises(RuntimeError, match="MalformedPolicy"):
        _admin_policy(daemon, "set", "shared", str(path))
    assert _admin_policy(daemon, "get", "shared") == good
    # The stored objects are untouched by either refusal.
    assert admin.get_object(Bucket="shared", Key="private/b.txt")["Body"].read() == b"private/b.txt"
    admin.close()


def _admin_policy(daemon: Daemon, *args: str) -> str:
    return _admin(daemon, "policy", *args)


def _admin(daemon: Daemon, command: str, *args: str) -> str:
    """``lightningstor admin COMMAND ARGS`` as the admin; its output (RuntimeError if it
    failed, with what it printed on stderr)."""
    done = subprocess.run(
        [
            sys.executable, "-m", "lightningstor_server.cli", "admin", command,
            "--grpc", daemon.grpc_target, "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return done.stdout.rstrip("\n")


def test_an_admin_gives_a_bucket_to_another_key(daemon: Daemon) -> None:
    reader_id, reader_secret = new_key(daemon, "new-owner")
    admin = boto3_client(daemon)
    admin.create_bucket(Bucket="handed-over")
    reader = s3_as(daemon, reader_id, reader_secret)
    with pytest.raises(ClientError) as raised:
        reader.put_object(Bucket="handed-over", Key="k", Body=b"x")
    assert error_of(raised) == ("AccessDenied", 403)

    async def canonical_id() -> str:
        async with AdminClient(
            daemon.grpc_target, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
        ) as client:
            return (await client.show(reader_id)).canonical_id

    owner = asyncio.run(canonical_id())
    done = _admin(daemon, "owner", "handed-over", owner)
    assert json.loads(done) == {"bucket": "handed-over", "owner": owner, "name": "new-owner"}
    reader.put_object(Bucket="handed-over", Key="k", Body=b"x")
    assert reader.get_bucket_acl(Bucket="handed-over")["Owner"]["ID"] == owner
    assert "handed-over" in [b["Name"] for b in reader.list_buckets()["Buckets"]]
    reader.close()
    admin.close()
