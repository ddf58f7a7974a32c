"""The contract every OrderedKV engine passes (LevelDB now, in-memory for fast tests)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lightningstor.meta.kv import Batch, KVConflict, OrderedKV, scan_all
from lightningstor.meta.leveldb import LevelDBKV
from lightningstor.meta.memory import MemoryKV


@pytest.fixture(params=["memory", "leveldb"])
def kv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OrderedKV]:
    engine: OrderedKV = MemoryKV() if request.param == "memory" else LevelDBKV(tmp_path / "db")
    yield engine
    engine.close()


def _put(kv: OrderedKV, **items: bytes) -> None:
    batch = Batch()
    for key, value in items.items():
        batch.put(key.encode(), value)
    kv.commit(batch)


def test_get_missing_is_none(kv: OrderedKV) -> None:
    assert kv.get(b"nope") is None


def test_scan_is_bytewise_ordered_and_bounded(kv: OrderedKV) -> None:
    keys = [b"a", b"a\x00", b"a\x00b", b"ab", b"b", "ü".encode(), b"\x7f"]
    batch = Batch()
    for key in keys:
        batch.put(key, key)
    kv.commit(batch)
    assert [k for k, _ in kv.scan(b"", b"\xff", limit=100)] == sorted(keys)
    assert [k for k, _ in kv.scan(b"a", b"b", limit=100)] == [b"a", b"a\x00", b"a\x00b", b"ab"]
    assert [k for k, _ in kv.scan(b"a", b"b", limit=2)] == [b"a", b"a\x00"]
    assert kv.scan(b"a", b"b", limit=2, keys_only=True) == [(b"a", b""), (b"a\x00", b"")]
    assert list(scan_all(kv, b"", b"\xff", page=2)) == [(k, k) for k in sorted(keys)]


def test_batch_is_atomic_under_failed_expectation(kv: OrderedKV) -> None:
    _put(kv, x=b"1")
    batch = Batch()
    batch.put(b"y", b"2")
    batch.delete(b"x")
    batch.expect_value(b"x", b"not-1")
    with pytest.raises(KVConflict):
        kv.commit(batch)
    assert kv.get(b"x") == b"1"
    assert kv.get(b"y") is None


def test_compare_and_swap_and_absence(kv: OrderedKV) -> None:
    create = Batch()
    create.expect_value(b"k", None)
    create.put(b"k", b"v1")
    kv.commit(create)
    with pytest.raises(KVConflict):
        kv.commit(create)  # absent no longer holds
    swap = Batch()
    swap.expect_value(b"k", b"v1")
    swap.put(b"k", b"v2")
    kv.commit(swap)
    assert kv.get(b"k") == b"v2"
    remove = Batch()
    remove.expect_value(b"k", b"v2")
    remove.delete(b"k")
    kv.commit(remove)
    assert kv.get(b"k") is None
    assert kv.scan(b"", b"\xff", limit=10) == []


def test_concurrent_compare_and_swap_loses_no_update(kv: OrderedKV) -> None:
    """Many threads increment one counter by compare-and-swap, retrying on conflict: commits
    that are grouped into one write must still see each other's effects (no lost update)."""
    _put(kv, n=b"0")
    threads, increments = 8, 50

    def bump() -> None:
        for _ in range(increments):
            while True:
                raw = kv.get(b"n")
                assert raw is not None
                swap = Batch()
                swap.expect_value(b"n", raw)
                swap.put(b"n", str(int(raw) + 1).encode())
                try:
                    kv.commit(swap)
                    break
                except KVConflict:
                    continue

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(bump) for _ in range(threads)]:
            future.result()
    assert kv.get(b"n") == str(threads * increments).encode()


def test_concurrent_creates_of_one_key_have_one_winner(kv: OrderedKV) -> None:
    def create(i: int) -> bool:
        batch = Batch()
        batch.expect_value(b"k", None)
        batch.put(b"k", str(i).encode())
        batch.put(f"side-{i}".encode(), b"x")  # a loser's other writes must vanish too
        try:
            kv.commit(batch)
        except KVConflict:
            return False
        return True

    with ThreadPoolExecutor(16) as pool:
        won = [i for i, ok in enumerate(pool.map(create, range(64))) if ok]
    assert len(won) == 1
    assert kv.get(b"k") == str(won[0]).encode()
    assert [k for k, _ in kv.scan(b"side-", b"side.", limit=100)] == [f"side-{won[0]}".encode()]
