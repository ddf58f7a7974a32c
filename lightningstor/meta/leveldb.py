"""The embedded LevelDB engine of :class:`~lightningstor.kv.OrderedKV` (plyvel).

LevelDB has atomic write batches but no transactions, so the expectations of a batch are checked
under one process-wide lock held across check and write; a single daemon owns the database
(LevelDB's own LOCK file forbids a second process), which makes the lock sufficient.

Commits are grouped: while one thread holds the lock for a synced write, the batches that
arrive queue up, and the next thread to take the lock checks and writes all of them as one
LevelDB batch with one log sync. Each caller returns only after the write that carried its batch
has returned, so "synced before acknowledged" holds for every caller, and a burst of N
concurrent commits pays one fsync instead of N.

A failed write (the disk full, above all) can leave a torn record at the end of LevelDB's log,
and LevelDB goes on framing later records as if it had been written whole: those would not
read back at the next open ("Corruption: checksum mismatch", and the store would not start).
So after a failed write the database is reopened before the next one (a torn record at the end
of a log is dropped on open, and every later write goes to a new log). While the disk has too
little room for that reopen, writes are refused with InsufficientStorage and reads go on.
"""

from __future__ import annotations

import errno
import itertools
import logging
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import plyvel

from lightningstor.errors import InsufficientStorage, StorageError, from_os_error
from lightningstor.meta.kv import Batch, KVConflict

log = logging.getLogger("lightningstor.kv")

# Free bytes the metadata disk needs before a reopen is tried: the open writes the log it
# recovers into a new table, and a manifest, so it needs room for what the last log held.
REOPEN_FREE_BYTES = 16 * 1024 * 1024
_NO_SPACE = ("No space left on device", "Disk quota exceeded")


@dataclass(slots=True, eq=False)
class _Queued:
    batch: Batch
    done: bool = False
    error: BaseException | None = None


class _ReadGate:
    """Any number of readers at once, or the one reopen with none."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._closed = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._closed:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._closed = True
            while self._readers:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._closed = False
                self._cond.notify_all()


class StoreLocked(OSError):
    """The store is open in another process."""


class LevelDBKV:
    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._path = path
        try:
            self._db = self._open()
        except plyvel.IOError as exc:
            if "lock" not in str(exc):
                raise
            # LevelDB admits one process: say who the other one must be, not "IO error: lock".
            raise StoreLocked(
                f"another daemon or offline command is using the store in {path.parent} "
                f"(its metadata, {path}, is locked); stop it first"
            ) from exc
        self._commit_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Queued] = []
        self._gate = _ReadGate()
        self._torn = False  # a write failed: reopen before the next one (module docstring)

    def _open(self) -> plyvel.DB:
        return plyvel.DB(str(self._path), create_if_missing=True, paranoid_checks=True)

    def get(self, key: bytes) -> bytes | None:
        with self._gate.reading():
            value: bytes | None = self._db.get(key)
        return value

    def scan(
        self, start: bytes, stop: bytes, *, limit: int, keys_only: bool = False
    ) -> list[tuple[bytes, bytes]]:
        with self._gate.reading():
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
                if self._torn:
                    self._reopen()
                self._write_group()
        if mine.error is not None:
            raise mine.error

    def _reopen(self) -> None:
        """Reopen after a failed write (commit lock held), or refuse the write while the disk
        has no room for it: the queued batches then fail with InsufficientStorage."""
        free = shutil.disk_usage(self._path).free
        if free < REOPEN_FREE_BYTES:
            self._fail_queued(
                InsufficientStorage("The metadata disk is full; writes resume once space is freed.")
            )
            return
        with self._gate.exclusive():
            self._db.close()
            self._db = self._open()
        self._torn = False
        log.warning("metadata database reopened after a failed write (%d bytes free)", free)

    def _fail_queued(self, error: BaseException) -> None:
        with self._queue_lock:
            group, self._queue = self._queue, []
        for queued in group:
            queued.error = error
            queued.done = True

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
        except plyvel.IOError as exc:
            self._torn = True
            log.error("metadata write failed; the database is reopened first: %s", exc)
            error = _storage_error(exc)
            for queued in accepted:
                queued.error = error
        except BaseException as exc:
            self._torn = True
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


def _storage_error(exc: plyvel.IOError) -> StorageError:
    """LevelDB reports a full disk as an IOError whose text names the errno's message, so
    the errno is read back from the text before the one translation (errors.from_os_error)."""
    text = str(exc)
    no_space = any(reason in text for reason in _NO_SPACE)
    return from_os_error(OSError(errno.ENOSPC if no_space else errno.EIO, "metadata write failed"))
