"""Blob reference counts and the collection of unreferenced blobs.

Each blob has a reference record ``r/<sha256>`` (count, collection generation, collecting
flag). Writers change counts inside the same guarded batch as the object records that hold the
references, expecting the exact record they read. Collection runs in three steps, each safe to
crash after (mark collecting, unlink the file, finish with a new generation), so a writer that
read a record before a collection can never commit against the record left after it: the blob
it is about to reference is never removed under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

from lightningstor.blobs.files import BlobStore, StagedBlob
from lightningstor.errors import InsufficientStorage, InternalError, StorageError
from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import Batch, KVConflict, OrderedKV, scan_all
from lightningstor.meta.records import (
    RefRecord,
    decode_garbage,
    decode_ref,
    encode_garbage,
    encode_ref,
)
from lightningstor.model import Segment
from lightningstor.offload import Offloader

# A blob whose last reference went away waits this long before collection, so readers that
# looked up an object just before it was replaced can still open its bytes.
GC_DELAY_SECONDS = 60.0
# Pause before planning again after a lost race or while a collection finishes.
RETRY_SLEEP_SECONDS = 0.005


@dataclass(slots=True)
class Plan:
    """One commit attempt: the guarded batch, and the blobs that must exist before it."""

    batch: Batch = field(default_factory=Batch)
    publish: list[str] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class _Turn:
    """Writers of one blob's reference record, queued in this process."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0  # holder included: the entry goes when nobody holds or waits


class BlobReferences:
    def __init__(
        self,
        *,
        kv: OrderedKV,
        blobs: BlobStore,
        offloader: Offloader,
        gc_delay_seconds: float = GC_DELAY_SECONDS,
    ) -> None:
        self.kv = kv
        self.blobs = blobs
        self.io = offloader
        self.gc_delay_seconds = gc_delay_seconds
        # Collection runs in one place at a time; the batches' expectations guard against
        # writers, this lock only keeps two collectors from tripping over each other.
        self._collecting = asyncio.Lock()
        self._turns: dict[str, _Turn] = {}

    async def update(
        self,
        added: Iterable[Segment],
        removed: Iterable[Segment],
        staged: StagedBlob | None,
        fill: Callable[[Batch], None],
    ) -> bool:
        """One attempt at a commit that adds and removes these references: ``fill`` adds the
        caller's own records and expectations to the guarded batch. False when the state read
        went stale or a collection is under way (after a short pause: the caller re-reads its
        records and tries again).

        Writers of the same blob take turns here: each changes the blob's one reference record,
        so racing them would let one commit per round succeed and the rest retry (64 writers
        of identical bytes at once ran out of attempts). The batch's expectations still guard
        the commit; the turn only keeps the writers of this process from colliding.
        """
        delta: Counter[str] = Counter(s.sha256_hex for s in added)
        delta.subtract(s.sha256_hex for s in removed)
        async with self._turn(sorted(sha for sha, change in delta.items() if change)):
            plan = await self._plan(delta)
            if plan is not None:
                fill(plan.batch)
                return await self.commit(plan, staged)
        await asyncio.sleep(RETRY_SLEEP_SECONDS)
        return False

    @contextlib.asynccontextmanager
    async def _turn(self, shas: list[str]) -> AsyncIterator[None]:
        # Taken in sorted order, so two writers never wait for each other in a cycle.
        held: list[tuple[str, _Turn]] = []
        try:
            for sha in shas:
                turn = self._turns.setdefault(sha, _Turn())
                turn.waiting += 1
                try:
                    await turn.lock.acquire()
                except BaseException:  # cancelled while waiting: the lock is not held
                    self._leave(sha, turn)
                    raise
                held.append((sha, turn))
            yield
        finally:
            for sha, turn in reversed(held):
                turn.lock.release()
                self._leave(sha, turn)

    def _leave(self, sha: str, turn: _Turn) -> None:
        turn.waiting -= 1
        if turn.waiting == 0:
            del self._turns[sha]

    async def _plan(self, delta: Counter[str]) -> Plan | None:
        plan = Plan()
        now = time.time_ns()
        for sha, change in delta.items():
            if change == 0:
                continue
            ref_key = ks.ref_key(sha)
            raw = await self.io.run(self.kv.get, ref_key)
            ref = decode_ref(raw)
            if ref.collecting:
                return None
            refs = ref.refs + change
            if refs < 0:
                # The object record the caller read was replaced in between (its references
                # are already released): the batch would fail its expectation anyway, so the
                # caller re-reads and plans again.
                return None
            plan.batch.expect_value(ref_key, raw)
            plan.batch.put(ref_key, encode_ref(RefRecord(refs=refs, generation=ref.generation)))
            if refs == 0:
                plan.batch.put(ks.garbage_key(sha), encode_garbage(now))
            elif ref.refs == 0:
                plan.batch.delete(ks.garbage_key(sha))
                plan.publish.append(sha)
        return plan

    async def commit(self, plan: Plan, staged: StagedBlob | None) -> bool:
        """Publish needed blobs, then commit. False when an expectation no longer held."""
        try:
            if staged is not None and staged.sha256_hex in plan.publish:
                # Queue the blob for collection before it gets its name: if this commit then
                # fails or the process dies before it, the file is still found and collected
                # (the collector checks the count first). The commit below, which makes the
                # count positive, removes the entry again in the same batch.
                await self._await_collection(staged.sha256_hex)
                # After reading the reference record, before the commit that expects it:
                # a collection in between changes the record and fails this commit.
                await self.io.run(self.blobs.publish, staged)
            await self.io.run(self.kv.commit, plan.batch)
        except KVConflict:
            return False
        except OSError as exc:
            raise storage_error(exc) from exc
        return True

    async def _await_collection(self, sha: str) -> None:
        batch = Batch(sync=False)  # the publish that follows fsyncs; a crash keeps this too
        batch.put(ks.garbage_key(sha), encode_garbage(time.time_ns()))
        await self.io.run(self.kv.commit, batch)

    async def collect_garbage(self, *, now_ns: int | None = None) -> int:
        """Remove blobs unreferenced for longer than the GC delay; returns how many."""
        async with self._collecting:
            return await self._collect_due(time.time_ns() if now_ns is None else now_ns)

    async def _collect_due(self, now_ns: int) -> int:
        cutoff = now_ns - int(self.gc_delay_seconds * 1e9)
        rows = await self.io.run(
            lambda: list(scan_all(self.kv, ks.GARBAGE_PREFIX, ks.prefix_end(ks.GARBAGE_PREFIX)))
        )
        collected = 0
        for raw_key, raw in rows:
            if decode_garbage(raw) <= cutoff:
                collected += await self._collect(ks.sha_from_garbage_key(raw_key))
        return collected

    async def _collect(self, sha: str) -> int:
        ref_key, garbage_key = ks.ref_key(sha), ks.garbage_key(sha)
        raw = await self.io.run(self.kv.get, ref_key)
        ref = decode_ref(raw)
        if ref.refs > 0:
            # Referenced again since it was queued: drop the entry, unless the count moved.
            stale = Batch()
            stale.expect_value(ref_key, raw)
            stale.delete(garbage_key)
            with contextlib.suppress(KVConflict):
                await self.io.run(self.kv.commit, stale)
            return 0
        marked = encode_ref(RefRecord(generation=ref.generation, collecting=True))
        if not ref.collecting:
            mark = Batch()
            mark.expect_value(ref_key, raw)
            mark.put(ref_key, marked)
            try:
                await self.io.run(self.kv.commit, mark)
            except KVConflict:
                return 0
        await self.io.run(self.blobs.remove, sha)
        finish = Batch()
        finish.expect_value(ref_key, marked)
        finish.put(ref_key, encode_ref(RefRecord(generation=ref.generation + 1)))
        finish.delete(garbage_key)
        try:
            await self.io.run(self.kv.commit, finish)
        except KVConflict:
            return 0  # another daemon's collector finished it first
        return 1


def storage_error(exc: OSError) -> StorageError:
    if exc.errno in (28, 122):  # ENOSPC, EDQUOT
        return InsufficientStorage()
    return InternalError(f"I/O error: {exc.strerror}")
