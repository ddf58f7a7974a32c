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
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from lightningstor.blobs.files import BlobStore, StagedBlob
from lightningstor.errors import from_os_error
from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import OrderedKV, scan_all
from lightningstor.meta.records import (
    RefRecord,
    decode_garbage,
    decode_ref,
    encode_garbage,
    encode_ref,
)
from lightningstor.meta.unit import Unit
from lightningstor.model import Segment
from lightningstor.offload import Offloader

# A blob whose last reference went away waits this long before collection, so readers that
# looked up an object just before it was replaced can still open its bytes.
GC_DELAY_SECONDS = 60.0


class WriteUnit(Unit):
    """A unit of work that also changes blob references: the blobs its records start to
    hold (``add``) and stop holding (``release``), and the staged blob they may need
    published. Its commit plans the reference records into the same batch, so records and
    counts change together (see :meth:`BlobReferences.commit`)."""

    def __init__(self, refs: BlobReferences) -> None:
        super().__init__(refs.kv, refs.io)
        self.refs = refs
        self.added: list[Segment] = []
        self.released: list[Segment] = []
        self.staged: StagedBlob | None = None

    def add(self, segments: Iterable[Segment], staged: StagedBlob | None = None) -> None:
        self.added.extend(segments)
        self.staged = staged or self.staged

    def release(self, segments: Iterable[Segment]) -> None:
        self.released.extend(segments)

    def commit_now(self) -> bool:
        # References need their turn and plan on the event loop: only a unit without them
        # may commit from inside a pool job.
        assert not self.reference_changes(), "a unit that changes references commits with commit()"
        return super().commit_now()

    async def commit(self) -> bool:
        return await self.refs.commit(self)

    async def commit_records(self) -> bool:
        """The batch as planned, without reference changes (for BlobReferences.commit)."""
        return await super().commit()

    def reference_changes(self) -> Counter[str]:
        """Blob -> change of its reference count, for the blobs whose count changes."""
        delta: Counter[str] = Counter(s.sha256_hex for s in self.added)
        delta.subtract(s.sha256_hex for s in self.released)
        return Counter({sha: change for sha, change in delta.items() if change})


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

    async def commit(self, unit: WriteUnit) -> bool:
        """Commit ``unit`` with its reference changes planned into its batch. False when the
        state read went stale or a collection is under way (the caller's transact backs off,
        re-reads its records and tries again).

        Writers of the same blob take turns here: each changes the blob's one reference record,
        so racing them would let one commit per round succeed and the rest retry (64 writers
        of identical bytes at once ran out of attempts). The batch's expectations still guard
        the commit; the turn only keeps the writers of this process from colliding.
        """
        delta = unit.reference_changes()
        if not delta:
            return await unit.commit_records()
        async with self._turn(sorted(delta)):
            publish = await self._plan(unit, delta)
            if publish is None:
                return False  # the caller backs off, then plans again
            return await self._publish_and_commit(unit, publish)

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

    async def _plan(self, unit: WriteUnit, delta: Counter[str]) -> list[str] | None:
        """Put each changed blob's new reference record (and garbage entry) into ``unit``;
        the blobs that go from unreferenced to referenced, which must exist before the
        commit. None when a record is being collected or no longer fits what was read."""
        publish = []
        now = time.time_ns()
        rows = await unit.read_many(ks.ref_key(sha) for sha in delta)
        for (sha, change), raw in zip(delta.items(), rows, strict=True):
            ref = decode_ref(raw)
            if ref.collecting:
                return None
            refs = ref.refs + change
            if refs < 0:
                # The object record the caller read was replaced in between (its references
                # are already released): the batch would fail its expectation anyway, so the
                # caller re-reads and plans again.
                return None
            unit.put(ks.ref_key(sha), encode_ref(RefRecord(refs=refs, generation=ref.generation)))
            if refs == 0:
                unit.put(ks.garbage_key(sha), encode_garbage(now))
            elif ref.refs == 0:
                unit.delete(ks.garbage_key(sha))
                publish.append(sha)
        return publish

    async def _publish_and_commit(self, unit: WriteUnit, publish: list[str]) -> bool:
        """Publish the staged blob if the commit needs it, then commit."""
        staged = unit.staged
        try:
            if staged is not None and staged.sha256_hex in publish:
                # Queue the blob for collection before it gets its name: if this commit then
                # fails or the process dies before it, the file is still found and collected
                # (the collector checks the count first). The commit below, which makes the
                # count positive, removes the entry again in the same batch.
                await self._await_collection(staged.sha256_hex)
                # After reading the reference record, before the commit that expects it:
                # a collection in between changes the record and fails this commit.
                await self.io.run(self.blobs.publish, staged)
            return await unit.commit_records()
        except OSError as exc:
            raise from_os_error(exc) from exc

    async def _await_collection(self, sha: str) -> None:
        entry = Unit(self.kv, self.io, sync=False)  # the publish that follows fsyncs
        entry.put(ks.garbage_key(sha), encode_garbage(time.time_ns()))
        await entry.commit()  # expects nothing: it cannot lose a race

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
        """Collect one queued blob, in three commits that are each safe to crash after. Any
        lost race means someone else got there (a writer referenced it again, another
        collector finished it): it is left to them."""
        ref_key, garbage_key = ks.ref_key(sha), ks.garbage_key(sha)
        check = Unit(self.kv, self.io)
        ref = decode_ref(await check.read(ref_key))
        if ref.refs > 0:
            # Referenced again since it was queued: drop the entry, unless the count moved.
            check.delete(garbage_key)
            await check.commit()
            return 0
        marked = encode_ref(RefRecord(generation=ref.generation, collecting=True))
        if not ref.collecting:
            check.put(ref_key, marked)
            if not await check.commit():
                return 0
        await self.io.run(self.blobs.remove, sha)
        finish = Unit(self.kv, self.io)
        finish.expect(ref_key, marked)
        finish.put(ref_key, encode_ref(RefRecord(generation=ref.generation + 1)))
        finish.delete(garbage_key)
        return 1 if await finish.commit() else 0
