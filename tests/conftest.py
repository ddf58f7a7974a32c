from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import SECRET_KEY, Daemon, boto3_client


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_daemon_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the whole run: no daemon log written by any test holds the test secret."""
    yield
    root = tmp_path_factory.getbasetemp()
    for log in root.rglob("*-daemon.log"):
        assert SECRET_KEY not in log.read_text(errors="replace"), f"secret leaked into {log}"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One real daemon per test module (starting one costs about a second)."""
    d = Daemon(tmp_path_factory.mktemp("daemon") / "data").start()
    yield d
    if d.proc is not None:
        assert d.stop() == 0, d.log_text()


@pytest.fixture
def fresh_daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A daemon of the test's own, for tests that kill or restart it."""
    d = Daemon(tmp_path / "data")
    yield d
    if d.proc is not None:
        d.kill()


@pytest.fixture(scope="module")
def s3(daemon: Daemon) -> Iterator[Any]:
    client = boto3_client(daemon)
    yield client
    client.close()  # its pooled connections would otherwise be left to the garbage collector
