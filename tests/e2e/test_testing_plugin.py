"""The pytest plugin as a user's project sees it: fixtures that hand out a real daemon."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

USER_TESTS = """
import asyncio

import boto3


def report_totals():
    # Application code makes its own client, as it would against AWS.
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="reports")
    s3.put_object(Bucket="reports", Key="2026/totals.csv", Body=b"a,b\\n1,2\\n")
    return s3.get_object(Bucket="reports", Key="2026/totals.csv")["Body"].read()


def test_code_that_makes_its_own_client(aws_env):
    assert report_totals() == b"a,b\\n1,2\\n"


def test_every_test_starts_with_no_bucket(lightningstor_s3):
    s3 = lightningstor_s3
    assert s3.list_buckets()["Buckets"] == []  # "reports" is gone
    s3.create_bucket(Bucket="reports")
    s3.put_bucket_versioning(Bucket="reports", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="reports", Key="k", Body=b"one")
    s3.put_object(Bucket="reports", Key="k", Body=b"two")
    s3.delete_object(Bucket="reports", Key="k")
    s3.create_multipart_upload(Bucket="reports", Key="big")


def test_versions_markers_and_uploads_went_too(lightningstor_grpc):
    assert lightningstor_grpc.list_buckets() == []
    lightningstor_grpc.create_bucket("reports")
    lightningstor_grpc.put_object("reports", "k", b"hello")
    assert lightningstor_grpc.get_object("reports", "k") == b"hello"


def test_the_async_client(lightningstor_client):
    async def round_trip():
        async with lightningstor_client() as ls:
            assert await ls.list_buckets() == []
            await ls.create_bucket("async-bucket")
            await ls.put_object("async-bucket", "k", b"hi")
            return await ls.get_object("async-bucket", "k")

    assert asyncio.run(round_trip()) == b"hi"


def test_a_daemon_of_its_own(lightningstor_daemon, lightningstor_s3):
    assert lightningstor_daemon.s3_port != 0
    assert lightningstor_daemon.endpoint != lightningstor_s3.meta.endpoint_url
"""
USER_TEST_COUNT = 5


def readme_example() -> str:
    """The README's example of the plugin, as a user would paste it."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Testing your code against LightningSTOR") :]
    return section[section.index("```python\n") + 10 : section.index("```\n", 10)]


def test_a_project_outside_the_repo_uses_the_fixtures(tmp_path: Path) -> None:
    project = tmp_path / "user-project"
    project.mkdir()
    (project / "test_user.py").write_text(USER_TESTS)
    (project / "test_readme.py").write_text(readme_example())
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{USER_TEST_COUNT + 1} passed" in done.stdout
