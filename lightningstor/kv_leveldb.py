"""The embedded LevelDB engine of :class:`~lightningstor.kv.OrderedKV` (plyvel).

LevelDB has atomic write batches but no transactions, so the expectations of a batch are checked
under one process-wide lock held across check and write; a single daemon owns the database
(LevelDB's own LOCK file forbids a second process), which makes the lock sufficient.

Commits are grouped: while one thread holds the lock for a synced write, the batches that
arrive queue up, and the next thread to take the lock checks and writes all of them as one
LevelDB batch with one log sync. Each caller returns only after the write that carried its batch
has returned, so "synced before acknowledged" holds for every caller, and a burst of N
concurrent commits pays one fsync instead of N.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from pathlib import Path

import plyvel

from lightningstor.kv import Batch, KVConflict


@dataclass(slots=True, eq=False)
class _Queued:
    batch: Batch
    done: bool = False
    error: BaseException | None = None


class LevelDBKV:
    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._db = plyvel.DB(str(path), create_if_missing=True, paranoid_checks=True)
        self._commit_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Queued] = []

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
        mine = _Queued(batch)
        with self._queue_lock:
            self._queue.append(mine)
        with self._commit_lock:
            if not mine.done:  # no earlier group carried it: lead the next one
                self._write_group()
        if mine.error is not None:
            raise mine.error

    def _write_group(self) -> None:
        with self._queue_lock:
            group, self._queue = self._queue, []
        # Batches are checked in arrival order against the database as the batches accepted
        # before them in this group leave it (None: deleted).
        overlay: dict[bytes, bytes | None] = {}
        accepted: list[_Queued] = []
        for queued in group:
            conflict = self._conflict(queued.batch, overlay)
            if conflict is not None:
                queued.error = KVConflict(conflict)
                continue
            accepted.append(queued)
            overlay.update(dict.fromkeys(queued.batch.deletes))
            overlay.update(queued.batch.puts)
        try:
            if accepted:
                self._write(accepted)
        except BaseException as exc:
            for queued in accepted:
                queued.error = exc
            raise
        finally:
            for queued in group:
                queued.done = True

    def _conflict(self, batch: Batch, overlay: dict[bytes, bytes | None]) -> bytes | None:
        for key, expected in batch.expect.items():
            current = overlay[key] if key in overlay else self._db.get(key)
            if current != expected:
                return key
        return None

    def _write(self, accepted: list[_Queued]) -> None:
        # sync=True: the batch is in the log on disk before any of its callers returns.
        sync = any(queued.batch.sync for queued in accepted)
        with self._db.write_batch(sync=sync, transaction=True) as wb:
            for queued in accepted:
                for key in queued.batch.deletes:
                    wb.delete(key)
                for key, value in queued.batch.puts.items():
                    wb.put(key, value)

    def close(self) -> None:
        with self._commit_lock:  # never under a commit still running on the pool
            self._db.close()
