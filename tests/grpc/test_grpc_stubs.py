"""The shipped stubs are exactly what proto/ generates today (``make proto`` refreshes them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lightningstor

ROOT = Path(__file__).resolve().parents[2]
STUBS = Path(lightningstor.__file__).parent / "v1"


def test_generated_stubs_are_current(tmp_path: Path) -> None:
    protos = sorted((ROOT / "proto" / "lightningstor" / "v1").glob("*.proto"))
    assert protos
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{ROOT / 'proto'}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            *map(str, protos),
        ],
        check=True,
    )
    fresh = sorted((tmp_path / "lightningstor" / "v1").iterdir())
    assert fresh
    for path in fresh:
        shipped = STUBS / path.name
        assert shipped.exists(), f"{path.name} is missing: run make proto"
        assert shipped.read_bytes() == path.read_bytes(), f"{path.name} is stale: run make proto"
