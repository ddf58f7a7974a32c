"""Bytes between streams and blob files: no pool thread ever works on a closed descriptor."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lightningstor import errors
from lightningstor.blobs.files import BLOCK_BYTES, BlobReader, BlobStore, BlobWriter
from lightningstor.model import Owner
from lightningstor.objects.store import ObjectStore
from tests.core.test_store import chunks, read_all, run

WAIT_SECONDS = 30  # a deadlock guard, never a timing assumption


async def until(event: threading.Event) -> None:
    """Wait, off the loop, for a pool thread to reach a point of the test's choosing."""
    assert await asyncio.to_thread(event.wait, WAIT_SECONDS), "the pool never got there"


async def turns(n: int = 20) -> None:
    """Let every ready task run as far as it can without waiting on the pool."""
    for _ in range(n):
        await asyncio.sleep(0)


class InFlight:
    """Counts pool calls running and notes any close or abort that overlaps one.

    The ``hold``-th call of a wrapped function stops on its pool thread (``started`` tells
    the test it is there) until the test sets ``release``: the test then knows a call is in
    flight instead of hoping a sleep made it so. ``ended`` is set once the close or abort
    has run.
    """

    def __init__(self, *, hold: int = 1, release: threading.Event | None = None) -> None:
        self.running = 0
        self.calls = 0
        self.hold = hold
        self.started = threading.Event()
        self.release = release or threading.Event()
        self.ended = threading.Event()
        self.violations: list[str] = []
        self._lock = threading.Lock()

    def slow(self, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                if self.ended.is_set():
                    self.violations.append("a pool call after the close or abort")
                self.running += 1
                self.calls += 1
                held = self.calls == self.hold
            try:
                if held:
                    self.started.set()
                    assert self.release.wait(WAIT_SECONDS)
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.running -= 1

        return wrapper

    def guarded(self, fn: Any, what: str) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                if self.running:
                    self.violations.append(f"{what} while a pool call was running")
            try:
                return fn(*args, **kwargs)
            finally:
                self.ended.set()

        return wrapper


def test_a_download_stopped_early_closes_the_blob_after_its_read_ahead(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytes(range(256)) * (12 * BLOCK_BYTES // 256)
    flight = InFlight(hold=2)  # the first read is the reply's; the second is the read-ahead
    monkeypatch.setattr(BlobReader, "read_chunk", flight.slow(BlobReader.read_chunk))
    monkeypatch.setattr(BlobReader, "close", flight.guarded(BlobReader.close, "close"))

    async def scenario() -> bytes:
        await store.create_bucket("ahead", owner=Owner("o"))
        await store.put_object("ahead", "k", chunks(data, BLOCK_BYTES))
        reader = await store.open_object("ahead", "k")
        stream = reader.chunks
        assert isinstance(stream, AsyncIterator)
        first = await anext(stream)
        await until(flight.started)  # the read-ahead is on its pool thread
        closing = asyncio.ensure_future(stream.aclose())  # type: ignore[attr-defined]
        await turns()
        assert not flight.ended.is_set()  # it waits for the read in flight
        flight.release.set()
        await closing
        await until(flight.ended)
        return first

    assert run(scenario) == data[: 4 * BLOCK_BYTES]
    assert flight.violations == []


def test_a_cancelled_upload_aborts_after_the_chunk_in_flight_is_written(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that goes away cancels its request's task; the staged file is removed only
    once the pool threads digesting and writing its last chunk are done with it."""
    flight = InFlight(hold=1)
    monkeypatch.setattr(BlobWriter, "write", flight.slow(BlobWriter.write))
    monkeypatch.setattr(BlobWriter, "digest", flight.slow(BlobWriter.digest))
    monkeypatch.setattr(BlobWriter, "abort", flight.guarded(BlobWriter.abort, "abort"))
    never = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"a" * BLOCK_BYTES
        yield b"b" * BLOCK_BYTES
        await never.wait()  # the client stalls, then goes away

    async def scenario() -> None:
        await store.create_bucket("cut", owner=Owner("o"))
        upload = asyncio.create_task(store.put_object("cut", "k", body()))
        await until(flight.started)  # the first chunk is on a pool thread
        upload.cancel()
        await turns()
        assert not upload.done()  # the cancelled request waits for its shielded abort...
        assert not flight.ended.is_set()  # ...which waits for the chunk in flight
        flight.release.set()
        with pytest.raises(asyncio.CancelledError):
            await upload
        assert flight.ended.is_set()

    run(scenario)
    assert flight.violations == []
    assert list(store.blobs.tmp_root.iterdir()) == []


@pytest.mark.parametrize("failing", ["write", "digest"])
def test_a_failing_lane_ends_the_upload_with_its_error_and_leaves_nothing(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """Large chunks go down two lanes (write, digest) that run ahead of each other and of the
    socket; whichever fails first, the upload raises its error once both lanes are idle, the
    staged file is gone and the old object is intact."""
    failed = threading.Event()
    # The other lane's third call is still running when this lane fails: the abort must
    # wait for it.
    flight = InFlight(hold=3, release=failed)
    real = getattr(BlobWriter, failing)
    calls = 0

    def third_fails(self: BlobWriter, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            failed.set()
            raise OSError(errno.ENOSPC, "injected")
        return real(self, *args, **kwargs)

    other = "digest" if failing == "write" else "write"
    monkeypatch.setattr(BlobWriter, failing, third_fails)
    monkeypatch.setattr(BlobWriter, other, flight.slow(getattr(BlobWriter, other)))
    monkeypatch.setattr(BlobWriter, "abort", flight.guarded(BlobWriter.abort, "abort"))

    async def scenario() -> bytes:
        await store.create_bucket("lanes", owner=Owner("o"))
        await store.put_object("lanes", "k", chunks(b"old and intact"))
        with pytest.raises(errors.InsufficientStorage):
            await store.put_object("lanes", "k", chunks(b"n" * 8 * BLOCK_BYTES, BLOCK_BYTES))
        return await read_all(store, "lanes", "k")

    assert run(scenario) == b"old and intact"
    assert flight.violations == []
    assert list(store.blobs.tmp_root.iterdir()) == []


def test_digests_see_chunks_in_order_when_chunk_sizes_mix(store: ObjectStore) -> None:
    """Small chunks are digested in the write lane, large ones in the digest lane: switching
    between them must never feed the digests out of order (aws-cli's last chunk is small)."""
    sizes = [3 * BLOCK_BYTES // 2, 1000, BLOCK_BYTES, 70_000, 5, 2 * BLOCK_BYTES, 300_000, 17]
    data = bytes(i * 7 % 251 for i in range(sum(sizes)))

    async def body() -> AsyncIterator[bytes]:
        at = 0
        for size in sizes:
            yield data[at : at + size]
            at += size

    async def scenario() -> tuple[str, bytes]:
        await store.create_bucket("mixed", owner=Owner("o"))
        head = await store.put_object("mixed", "k", body())
        return head.etag, await read_all(store, "mixed", "k")

    etag, stored = run(scenario)
    assert etag == hashlib.md5(data).hexdigest()
    assert stored == data
    assert store.blobs.path(hashlib.sha256(data).hexdigest()).is_file()


def test_an_upload_cancelled_while_its_staging_files_are_created_leaves_none(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that gives up right after its first chunk cancels the request while the pool
    is still creating the staging files: they are removed once that pool job ends."""
    real_stage, real_abort = BlobStore.stage, BlobWriter.abort
    staging, release, aborted = threading.Event(), threading.Event(), threading.Event()

    def held_stage(self: BlobStore, *args: Any) -> BlobWriter:
        staging.set()
        assert release.wait(WAIT_SECONDS)
        return real_stage(self, *args)

    def noted_abort(self: BlobWriter) -> None:
        real_abort(self)
        aborted.set()

    monkeypatch.setattr(BlobStore, "stage", held_stage)
    monkeypatch.setattr(BlobWriter, "abort", noted_abort)
    never = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"a" * BLOCK_BYTES  # too large to be kept inline: it goes to a staging file
        await never.wait()

    async def scenario() -> None:
        await store.create_bucket("early", owner=Owner("o"))
        upload = asyncio.create_task(store.put_object("early", "k", body()))
        await until(staging)  # the staging files are being created on the pool
        upload.cancel()
        await turns()
        assert not upload.done()  # the cleanup waits for the pool job
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await upload
        assert aborted.is_set()  # the pool job ended, then the shielded cleanup ran

    run(scenario)
    assert list(store.blobs.tmp_root.iterdir()) == []


def test_a_download_cancelled_while_its_blob_is_opened_closes_it(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open, real_close = BlobStore.open_reader, BlobReader.close
    opened: list[BlobReader] = []
    closed: list[BlobReader] = []
    opening, release, was_closed = threading.Event(), threading.Event(), threading.Event()

    def held_open(self: BlobStore, *args: Any, **kwargs: Any) -> BlobReader:
        opening.set()
        assert release.wait(WAIT_SECONDS)
        opened.append(real_open(self, *args, **kwargs))
        return opened[-1]

    def noted_close(self: BlobReader) -> None:
        closed.append(self)
        real_close(self)
        was_closed.set()

    async def scenario() -> None:
        await store.create_bucket("early", owner=Owner("o"))
        await store.put_object("early", "k", chunks(b"z" * BLOCK_BYTES, BLOCK_BYTES))
        monkeypatch.setattr(BlobStore, "open_reader", held_open)
        monkeypatch.setattr(BlobReader, "close", noted_close)
        reader = await store.open_object("early", "k")
        first = asyncio.ensure_future(anext(reader.chunks))
        await until(opening)  # the blob is being opened on the pool
        first.cancel()
        await turns()
        assert not was_closed.is_set()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await first
        await until(was_closed)  # the open ended, then the shielded close ran

    run(scenario)
    assert len(opened) == 1
    assert closed == opened
