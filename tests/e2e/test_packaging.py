"""The wheel carries the generated stubs and the protos, installs into a clean venv and gives
a working ``lightningstor`` command."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path: Path) -> None:
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", ROOT)
    (wheel,) = (tmp_path / "dist").glob("lightningstor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for required in (
        "lightningstor/v1/storage_pb2.py",
        "lightningstor/v1/storage_pb2_grpc.py",
        "lightningstor/v1/storage_pb2.pyi",
        "lightningstor/v1/admin_pb2.py",
        "lightningstor_server/lightningstor.example.toml",
    ):
        assert required in names, f"{required} is not in the wheel"
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", wheel)
    assert run(tmp_path / "venv" / "bin" / "lightningstor", "version").strip()
    run(
        python,
        "-c",
        "import lightningstor.v1.storage_pb2_grpc, lightningstor.client, "
        "lightningstor_server.daemon",
        cwd=tmp_path,
    )
