"""The pytest plugin as a user's project sees it: fixtures that hand out a real daemon."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

USER_TESTS = """
import asyncio


def test_s3_round_trip(lightningstor_s3):
    lightningstor_s3.create_bucket(Bucket="user-bucket")
    lightningstor_s3.put_object(Bucket="user-bucket", Key="k", Body=b"hello")
    assert lightningstor_s3.get_object(Bucket="user-bucket", Key="k")["Body"].read() == b"hello"


def test_grpc_sees_the_same_store(lightningstor_client):
    async def read():
        async with lightningstor_client() as ls:
            return await ls.get_object("user-bucket", "k")

    assert asyncio.run(read()) == b"hello"
"""


def test_a_project_outside_the_repo_uses_the_fixtures(tmp_path: Path) -> None:
    project = tmp_path / "user-project"
    project.mkdir()
    (project / "test_user.py").write_text(USER_TESTS)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
