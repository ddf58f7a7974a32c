"""The aws-cli session a newcomer types, against a real daemon, signatures checked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.daemon import Daemon, aws_env_of, boto3_client

VENV_AWS = str(Path(sys.executable).with_name("aws"))


def _aws_binaries() -> list[str]:
    """The aws-cli the test extra installs, and the machine's own copy if it is another one."""
    found = [VENV_AWS]
    system = shutil.which("aws", path=os.defpath + ":/root/.pyenv/shims:/usr/local/bin")
    if system and Path(system).resolve() != Path(VENV_AWS).resolve():
        found.append(system)
    return found


def run_aws(aws: str, daemon: Daemon, *args: str) -> str:
    done = subprocess.run(
        [aws, "--endpoint-url", daemon.endpoint, *args],
        env=aws_env_of(daemon),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"aws {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.parametrize("aws", _aws_binaries())
def test_newcomer_session(aws: str, daemon: Daemon, tmp_path: Path) -> None:
    bucket = "cli-" + str(abs(hash(aws)) % 10**8)
    src = tmp_path / "upload.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # below the 8 MiB multipart threshold

    assert f"make_bucket: {bucket}" in run_aws(aws, daemon, "s3", "mb", f"s3://{bucket}")
    assert bucket in run_aws(aws, daemon, "s3", "ls")
    run_aws(aws, daemon, "s3", "cp", str(src), f"s3://{bucket}/docs/upload.bin")

    listing = run_aws(aws, daemon, "s3", "ls", f"s3://{bucket}/")
    assert "PRE docs/" in listing
    assert "upload.bin" in run_aws(aws, daemon, "s3", "ls", f"s3://{bucket}/docs/")

    v2 = json.loads(run_aws(aws, daemon, "s3api", "list-objects-v2", "--bucket", bucket))
    assert [(o["Key"], o["Size"]) for o in v2["Contents"]] == [
        ("docs/upload.bin", src.stat().st_size)
    ]

    back = tmp_path / "download.bin"
    run_aws(aws, daemon, "s3", "cp", f"s3://{bucket}/docs/upload.bin", str(back))
    assert back.read_bytes() == src.read_bytes()

    # An unsigned request for the same object is refused.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{daemon.endpoint}/{bucket}/docs/upload.bin")
    assert refused.value.code == 403
    assert b"<Code>AccessDenied</Code>" in refused.value.read()

    run_aws(aws, daemon, "s3", "rm", f"s3://{bucket}/docs/upload.bin")
    assert run_aws(aws, daemon, "s3", "ls", f"s3://{bucket}/").strip() == ""
    run_aws(aws, daemon, "s3", "rb", f"s3://{bucket}")
    assert bucket not in run_aws(aws, daemon, "s3", "ls")


def test_curl_unsigned_get_is_refused(daemon: Daemon) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    s3 = boto3_client(daemon)
    s3.create_bucket(Bucket="curl-private")
    s3.put_object(Bucket="curl-private", Key="object", Body=b"private")
    s3.close()

    def status_of(path: str) -> str:
        done = subprocess.run(
            [curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{daemon.endpoint}{path}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout

    # Unsigned is anonymous: refused by every private bucket; a missing bucket is missing.
    assert status_of("/curl-private/object") == "403"
    assert status_of("/curl-private") == "403"
    assert status_of("/") == "403"
    assert status_of("/no-such-bucket/object") == "404"


def test_wrong_secret_is_refused(daemon: Daemon) -> None:
    env = aws_env_of(daemon) | {"AWS_SECRET_ACCESS_KEY": "not-the-right-secret-at-all"}
    done = subprocess.run(
        [VENV_AWS, "--endpoint-url", daemon.endpoint, "s3", "ls"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "SignatureDoesNotMatch" in done.stderr
