"""Nothing acknowledged is ever lost: 20 SIGKILL rounds under mixed S3 and gRPC load."""

from __future__ import annotations

from pathlib import Path

from tests.torture import torture

ROUNDS = 20


def test_kill_rounds_lose_nothing_acknowledged(tmp_path: Path) -> None:
    model = torture(tmp_path / "data", rounds=ROUNDS, seed=20261123)
    assert model.acked_ops > ROUNDS * 10  # the load was real
