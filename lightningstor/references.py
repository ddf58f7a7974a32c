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
from collections.abc import Iterable
from dataclasses import dataclass, field

from lightningstor import keyspace as ks
from lightningstor.blobs import BlobStore, StagedBlob
from lightningstor.errors import InsufficientStorage, InternalError, StorageError
from lightningstor.kv import Batch, KVConflict, OrderedKV, scan_all
from lightningstor.model import Segment
from lightningstor.offload import Offloader
from lightningstor.records import (
    RefRecord,
    decode_garbage,
    decode_ref,
    encode_garbage,
    encode_ref,
)

# A blob whose last reference went away waits this long before collection, so readers that
# looked up an object just before it was replaced can still open its bytes.
GC_DELAY_SECONDS = 60.0


@dataclass(slots=True)
class Plan:
    """One commit attempt: the guarded batch, and the blobs that must exist before it."""

    batch: Batch = field(default_factory=Batch)
    publish: list[str] = field(default_factory=list)


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

    async def plan(self, added: Iterable[Segment], removed: Iterable[Segment]) -> Plan | None:
        """Reference-count changes as a guarded batch; None when the state read is already
        stale or a collection is under way (the caller waits a moment and plans again)."""
        delta: Counter[str] = Counter(s.sha256_hex for s in added)
        delta.subtract(s.sha256_hex for s in removed)
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
