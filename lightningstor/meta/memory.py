"""An in-memory :class:`~lightningstor.kv.OrderedKV` for fast tests (never durable)."""

from __future__ import annotations

import bisect
import threading

from lightningstor.meta.kv import Batch, KVConflict


class MemoryKV:
    def __init__(self) -> None:
        self._keys: list[bytes] = []
        self._values: dict[bytes, bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            return self._values.get(key)

    def scan(
        self, start: bytes, stop: bytes, *, limit: int, keys_only: bool = False
    ) -> list[tuple[bytes, bytes]]:
        with self._lock:
            i = bisect.bisect_left(self._keys, start)
            rows: list[tuple[bytes, bytes]] = []
            while i < len(self._keys) and len(rows) < limit and self._keys[i] < stop:
                key = self._keys[i]
                rows.append((key, b"" if keys_only else self._values[key]))
                i += 1
            return rows

    def commit(self, batch: Batch) -> None:
        with self._lock:
            for key, expected in batch.expect.items():
                if self._values.get(key) != expected:
                    raise KVConflict(key)
            for key in batch.deletes:
                if self._values.pop(key, None) is not None:
                    del self._keys[bisect.bisect_left(self._keys, key)]
            for key, value in batch.puts.items():
                if key not in self._values:
                    bisect.insort(self._keys, key)
                self._values[key] = value

    def close(self) -> None:
        with self._lock:
            self._keys.clear()
            self._values.clear()
