"""Bytes between streams and blob files: no pool thread ever works on a closed descriptor."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lightningstor import errors
from lightningstor.blobs.files import BLOCK_BYTES, BlobReader, BlobStore, BlobWriter
from lightningstor.objects.store import ObjectStore
from tests.core.test_store import chunks, read_all, run


class InFlight:
    """Counts pool calls running and notes any close or abort that overlaps one."""

    def __init__(self) -> None:
        self.running = 0
        self.ended = False
        self.violations: list[str] = []

    def slow(self, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.ended:
                self.violations.append("a pool call after the close or abort")
            self.running += 1
            try:
                time.sleep(0.05)
                return fn(*args, **kwargs)
            finally:
                self.running -= 1

        return wrapper

    def guarded(self, fn: Any, what: str) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.running:
                self.violations.append(f"{what} while a pool call was running")
            self.ended = True
            return fn(*args, **kwargs)

        return wrapper


def test_a_download_stopped_early_closes_the_blob_after_its_read_ahead(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytes(range(256)) * (12 * BLOCK_BYTES // 256)
    flight = InFlight()
    monkeypatch.setattr(BlobReader, "read_chunk", flight.slow(BlobReader.read_chunk))
    monkeypatch.setattr(BlobReader, "close", flight.guarded(BlobReader.close, "close"))

    async def scenario() -> bytes:
        await store.create_bucket("ahead", owner="o")
        await store.put_object("ahead", "k", chunks(data, BLOCK_BYTES))
        reader = await store.open_object("ahead", "k")
        stream = reader.chunks
        assert isinstance(stream, AsyncIterator)
        first = await anext(stream)  # the next read is now in flight
        await stream.aclose()  # type: ignore[attr-defined]
        return first

    assert run(scenario) == data[: 4 * BLOCK_BYTES]
    time.sleep(0.2)  # a read left running would have ended by now
    assert flight.violations == []


def test_a_cancelled_upload_aborts_after_the_chunk_in_flight_is_written(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that goes away cancels its request's task; the staged file is removed only
    once the pool threads digesting and writing its last chunk are done with it."""
    flight = InFlight()
    monkeypatch.setattr(BlobWriter, "write", flight.slow(BlobWriter.write))
    monkeypatch.setattr(BlobWriter, "digest", flight.slow(BlobWriter.digest))
    monkeypatch.setattr(BlobWriter, "abort", flight.guarded(BlobWriter.abort, "abort"))

    async def body() -> AsyncIterator[bytes]:
        yield b"a" * BLOCK_BYTES
        yield b"b" * BLOCK_BYTES  # waits for the first chunk's write, which is slow
        await asyncio.sleep(60)

    async def scenario() -> None:
        await store.create_bucket("cut", owner="o")
        upload = asyncio.create_task(store.put_object("cut", "k", body()))
        await asyncio.sleep(0.02)  # the first chunk is in the pool now
        upload.cancel()
        with pytest.raises(asyncio.CancelledError):
            await upload
        await asyncio.sleep(0.2)  # the shielded abort finishes

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
    flight = InFlight()
    real = getattr(BlobWriter, failing)
    calls = 0

    def third_fails(self: BlobWriter, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError(errno.ENOSPC, "injected")
        return real(self, *args, **kwargs)

    other = "digest" if failing == "write" else "write"
    monkeypatch.setattr(BlobWriter, failing, third_fails)
    monkeypatch.setattr(BlobWriter, other, flight.slow(getattr(BlobWriter, other)))
    monkeypatch.setattr(BlobWriter, "abort", flight.guarded(BlobWriter.abort, "abort"))

    async def scenario() -> bytes:
        await store.create_bucket("lanes", owner="o")
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
        await store.create_bucket("mixed", owner="o")
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
    real = BlobStore.stage

    def slow_stage(self: BlobStore, *args: Any) -> BlobWriter:
        time.sleep(0.1)
        return real(self, *args)

    monkeypatch.setattr(BlobStore, "stage", slow_stage)

    async def body() -> AsyncIterator[bytes]:
        yield b"a" * BLOCK_BYTES  # too large to be kept inline: it goes to a staging file
        await asyncio.sleep(60)

    async def scenario() -> None:
        await store.create_bucket("early", owner="o")
        upload = asyncio.create_task(store.put_object("early", "k", body()))
        await asyncio.sleep(0.03)  # the staging files are being created on the pool
        upload.cancel()
        with pytest.raises(asyncio.CancelledError):
            await upload
        await asyncio.sleep(0.3)  # the pool job ends, then the shielded cleanup runs

    run(scenario)
    assert list(store.blobs.tmp_root.iterdir()) == []


def test_a_download_cancelled_while_its_blob_is_opened_closes_it(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open, real_close = BlobStore.open_reader, BlobReader.close
    opened: list[BlobReader] = []
    closed: list[BlobReader] = []

    def slow_open(self: BlobStore, *args: Any, **kwargs: Any) -> BlobReader:
        time.sleep(0.1)
        opened.append(real_open(self, *args, **kwargs))
        return opened[-1]

    def noted_close(self: BlobReader) -> None:
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(BlobStore, "open_reader", slow_open)
    monkeypatch.setattr(BlobReader, "close", noted_close)

    async def scenario() -> None:
        await store.create_bucket("early", owner="o")
        await store.put_object("early", "k", chunks(b"z" * BLOCK_BYTES, BLOCK_BYTES))
        reader = await store.open_object("early", "k")
        first = asyncio.ensure_future(anext(reader.chunks))
        await asyncio.sleep(0.03)  # the blob is being opened on the pool
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.sleep(0.3)  # the open ends, then the shielded close runs

    run(scenario)
    assert len(opened) == 1
    assert closed == opened
