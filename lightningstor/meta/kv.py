"""The ordered byte-KV interface every metadata engine implements.

The core needs only three things from a metadata engine: a point read, a bounded range scan in
bytewise key order, and one atomic batch of writes guarded by expectations ("this key is absent",
"this key holds exactly these bytes"). That is enough for compare-and-swap on any record, so the
same core runs on the embedded LevelDB engine today and on a shared engine (PostgreSQL, whose
``bytea`` keys sort the same way) later. ``tests/core/test_kv_contract.py`` is the contract every
engine passes.

Engines are synchronous; the core calls them through :class:`lightningstor.offload.Offloader`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol


class KVConflict(Exception):
    """An expectation of a batch did not hold; nothing of the batch was written."""

    def __init__(self, key: bytes) -> None:
        super().__init__(f"expectation failed on {key!r}")
        self.key = key


@dataclass(slots=True)
class Batch:
    """Writes applied together, all or nothing, after every expectation holds.

    ``expect`` maps a key to the exact value it must hold at commit time, or ``None`` for
    "absent". A key may be both expected and written in the same batch (compare-and-swap).
    """

    puts: dict[bytes, bytes] = field(default_factory=dict)
    deletes: set[bytes] = field(default_factory=set)
    expect: dict[bytes, bytes | None] = field(default_factory=dict)
    # False only for bookkeeping that a process crash must keep but a power loss may lose
    # (the engine still writes it to its log before returning).
    sync: bool = True

    def put(self, key: bytes, value: bytes) -> None:
        self.deletes.discard(key)
        self.puts[key] = value

    def delete(self, key: bytes) -> None:
        self.puts.pop(key, None)
        self.deletes.add(key)

    def expect_value(self, key: bytes, value: bytes | None) -> None:
        """Require ``key`` to hold ``value`` (``None``: to be absent) when the batch commits."""
        self.expect[key] = value

    def __len__(self) -> int:
        return len(self.puts) + len(self.deletes)


class OrderedKV(Protocol):
    """An ordered byte-key store with atomic, expectation-guarded batches."""

    def get(self, key: bytes) -> bytes | None:
        """The value at ``key``, or ``None``."""

    def scan(
        self, start: bytes, stop: bytes, *, limit: int, keys_only: bool = False
    ) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` pairs with ``start <= key < stop`` in bytewise order.

        With ``keys_only`` the values are returned empty (engines may skip reading them).
        """

    def commit(self, batch: Batch) -> None:
        """Apply ``batch`` atomically (and synced unless ``batch.sync`` is false) or raise
        :class:`KVConflict`."""

    def close(self) -> None:
        """Release the engine; further calls are errors."""


def scan_all(
    kv: OrderedKV, start: bytes, stop: bytes, *, page: int = 1024, most: int | None = None
) -> Iterator[tuple[bytes, bytes]]:
    """Every pair in ``[start, stop)``, read ``page`` at a time; with ``most``, the page
    doubles up to it (a request that may stop early reads little first)."""
    while True:
        rows = kv.scan(start, stop, limit=page)
        yield from rows
        if len(rows) < page:
            return
        start = rows[-1][0] + b"\x00"
        if most is not None:
            page = min(page * 2, most)
