"""The wheel carries the generated stubs and the protos, installs into a clean venv and gives
a working ``lightningstor`` command."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.e2e.test_testing_plugin import USER_TEST_COUNT, USER_TESTS

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
    # pytest and boto3 as a user's project would have them, to use the plugin from the wheel.
    run(python, "-m", "pip", "install", "-q", wheel, "pytest", "boto3")
    assert run(tmp_path / "venv" / "bin" / "lightningstor", "version").strip()
    project = tmp_path / "user-project"
    project.mkdir()
    (project / "test_user.py").write_text(USER_TESTS)
    out = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", project, cwd=project)
    assert f"{USER_TEST_COUNT} passed" in out
    run(
        python,
        "-c",
        "import lightningstor.v1.storage_pb2_grpc, lightningstor.client, "
        "lightningstor_server.daemon",
        cwd=tmp_path,
    )


def test_unit_file_passes_systemd_analyze(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    unit = (ROOT / "systemd" / "lightningstor.service").read_text()
    # Verify the unit as written, with its ExecStart pointed at a binary that exists here.
    unit = unit.replace(
        "/opt/lightningstor/.venv/bin/lightningstor",
        str(Path(sys.executable).with_name("lightningstor")),
    )
    (tmp_path / "lightningstor.service").write_text(unit)
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / "lightningstor.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    problems = [
        line for line in (done.stdout + done.stderr).splitlines() if "lightningstor.service" in line
    ]
    assert done.returncode == 0 and not problems, done.stdout + done.stderr


def test_unit_file_is_sandboxed(tmp_path: Path) -> None:
    """systemd's own score of the unit's sandbox: 4.9 before issue 20, at most 2.5 now."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    unit = ROOT / "systemd" / "lightningstor.service"
    done = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", done.stdout)
    assert found is not None, done.stdout + done.stderr
    assert float(found.group(1)) <= 2.5, done.stdout
