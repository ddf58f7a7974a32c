"""The embedded LevelDB engine of :class:`~lightningstor.kv.OrderedKV` (plyvel).

LevelDB has atomic write batches but no transactions, so the expectations of a batch are checked
under one process-wide lock held across check and write; a single daemon owns the database
(LevelDB's own LOCK file forbids a second process), which makes the lock sufficient.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import plyvel

from lightningstor.kv import Batch, KVConflict


class LevelDBKV:
    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._db = plyvel.DB(str(path), create_if_missing=True, paranoid_checks=True)
        self._commit_lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    def scan(
        self, start: bytes, stop: bytes, *, limit: int, keys_only: bool = False
    ) -> list[tuple[bytes, bytes]]:
        if keys_only:
            keys = self._db.iterator(start=start, stop=stop, include_value=False)
            with keys:
                return [(k, b"") for k in itertools.islice(keys, limit)]
        with self._db.iterator(start=start, stop=stop) as it:
            return list(itertools.islice(it, limit))

    def commit(self, batch: Batch) -> None:
        with self._commit_lock:
            for key, expected in batch.expect.items():
                if self._db.get(key) != expected:
                    raise KVConflict(key)
            # sync=True: the batch is in the log on disk before we acknowledge anything.
            with self._db.write_batch(sync=batch.sync, transaction=True) as wb:
                for key in batch.deletes:
                    wb.delete(key)
                for key, value in batch.puts.items():
                    wb.put(key, value)

    def close(self) -> None:
        with self._commit_lock:  # never under a commit still running on the pool
            self._db.close()
