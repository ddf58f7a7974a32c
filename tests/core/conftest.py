"""Shared fixtures of the core tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from lightningstor.ops.fsck import check_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ObjectStore]:
    offloader = Offloader(workers=4)
    # The core tests exercise the blob layer with small bodies: every body becomes a blob.
    # Bodies kept inline have their own tests (test_inline.py).
    s = ObjectStore.open(
        tmp_path / "data", offloader=offloader, gc_delay_seconds=0, inline_max_bytes=0
    )
    yield s
    # Whatever a test did through the store, the store check finds nothing wrong after it.
    assert check_store(s.kv, s.blobs, verify_content=True).problems == []
    s.close()
    offloader.shutdown()
