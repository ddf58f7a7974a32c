"""A 1 GiB object streams up and down, through either door, without the daemon holding it in
memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.large_object import measure
from tests.daemon import Daemon

LIMIT_MIB = 100


@pytest.mark.parametrize("door", ["s3", "grpc"])
def test_one_gib_round_trip_memory_growth_is_bounded(tmp_path: Path, door: str) -> None:
    daemon = Daemon(tmp_path / "data").start()
    try:
        result = measure(daemon, 1024, door)
    finally:
        daemon.stop()
    assert result.growth_mib < LIMIT_MIB, result
