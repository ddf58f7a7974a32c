"""aws-cli at scale: sync a tree of odd names up and back down, then empty the bucket."""

from __future__ import annotations

import base64
import filecmp
import json
import os
import random
import zlib
from pathlib import Path

from tests.daemon import Daemon
from tests.e2e.test_awscli import VENV_AWS, run_aws

NAMES = [
    "plain",
    "with space",
    "plus+sign",
    "ünïcödé",
    "percent%20",
    "semi;colon",
    "quote'",
    "amp&",
    "équipe",
]


def _make_tree(root: Path, count: int) -> None:
    rng = random.Random(7)
    for i in range(count):
        depth = rng.randint(0, 3)
        parts = [rng.choice(NAMES) + f"-{rng.randint(0, 3)}" for _ in range(depth)]
        path = root.joinpath(*parts, f"{rng.choice(NAMES)} {i}.bin")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(rng.randint(0, 4096)))


def _same_tree(a: Path, b: Path) -> None:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    _, mismatch, errors = filecmp.cmpfiles(a, b, [str(p) for p in files_a], shallow=False)
    assert (mismatch, errors) == ([], [])


def test_sync_up_and_down_then_remove_recursively(daemon: Daemon, tmp_path: Path) -> None:
    up, down = tmp_path / "up", tmp_path / "down"
    _make_tree(up, 500)
    run_aws(VENV_AWS, daemon, "s3", "mb", "s3://sync-tree")
    run_aws(VENV_AWS, daemon, "s3", "sync", str(up), "s3://sync-tree/")
    listed = json.loads(
        run_aws(VENV_AWS, daemon, "s3api", "list-objects-v2", "--bucket", "sync-tree")
    )
    assert len(listed["Contents"]) == 500
    run_aws(VENV_AWS, daemon, "s3", "sync", "s3://sync-tree/", str(down))
    _same_tree(up, down)
    # A second sync finds nothing to do: sizes and times agree both ways.
    assert run_aws(VENV_AWS, daemon, "s3", "sync", str(up), "s3://sync-tree/").strip() == ""
    run_aws(VENV_AWS, daemon, "s3", "rm", "--recursive", "s3://sync-tree/")
    after = json.loads(
        run_aws(VENV_AWS, daemon, "s3api", "list-objects-v2", "--bucket", "sync-tree") or "{}"
    )
    assert "Contents" not in after
    run_aws(VENV_AWS, daemon, "s3", "rb", "s3://sync-tree")


def test_s3api_copy_range_conditional_and_checksums(daemon: Daemon, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    body = os.urandom(100_000)
    src.write_bytes(body)
    api = ("s3api",)
    run_aws(VENV_AWS, daemon, *api, "create-bucket", "--bucket", "s3api-ops")
    put = json.loads(
        run_aws(
            VENV_AWS,
            daemon,
            *api,
            "put-object",
            "--bucket",
            "s3api-ops",
            "--key",
            "a b+c",
            "--body",
            str(src),
            "--checksum-algorithm",
            "CRC32",
        )
    )
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    assert put["ChecksumCRC32"] == crc
    copied = json.loads(
        run_aws(
            VENV_AWS,
            daemon,
            *api,
            "copy-object",
            "--bucket",
            "s3api-ops",
            "--key",
            "copy",
            "--copy-source",
            "s3api-ops/a b+c",
        )
    )
    assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
    part = tmp_path / "part.bin"
    ranged = json.loads(
        run_aws(
            VENV_AWS,
            daemon,
            *api,
            "get-object",
            "--bucket",
            "s3api-ops",
            "--key",
            "copy",
            "--range",
            "bytes=10-19",
            str(part),
        )
    )
    assert ranged["ContentRange"] == "bytes 10-19/100000"
    assert part.read_bytes() == body[10:20]
    whole = tmp_path / "whole.bin"
    head = json.loads(
        run_aws(
            VENV_AWS,
            daemon,
            *api,
            "get-object",
            "--bucket",
            "s3api-ops",
            "--key",
            "a b+c",
            "--if-match",
            put["ETag"],
            "--checksum-mode",
            "ENABLED",
            str(whole),
        )
    )
    assert head["ChecksumCRC32"] == crc
    assert whole.read_bytes() == body
