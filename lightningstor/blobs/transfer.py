"""Object bytes between a request's stream and blob files, in bounded memory.

Uploads are staged chunk by chunk down two ordered lanes, digests on one pool thread and
block CRCs plus the write on another, both free to run a few chunks behind the socket.
Downloads read a few checksummed blocks per pool trip, one read ahead of the send. Every
declared digest is checked before anything commits.
"""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, ParamSpec, TypeVar

from lightningstor.blobs.files import BlobReader, BlobStore, BlobWriter, StagedBlob
from lightningstor.blobs.inline import InlineBody
from lightningstor.errors import (
    BadDigest,
    ContentSHA256Mismatch,
    EntityTooLarge,
    IncompleteBody,
    from_os_error,
)
from lightningstor.model import BodyExpectations
from lightningstor.offload import Offloader

P = ParamSpec("P")
T = TypeVar("T")

# Chunks at least this large are digested and written on two pool threads at once.
_SPLIT_HASHING_BYTES = 256 * 1024
# How many chunks (BODY_CHUNK_BYTES each from S3) an upload's lanes may lag behind its socket.
_AHEAD_CHUNKS = 3
# A large GET reads this many blocks (MiB) per trip through the pool.
_READ_BLOCKS = 4


class Transfers:
    def __init__(self, *, blobs: BlobStore, offloader: Offloader) -> None:
        self.blobs = blobs
        self.io = offloader

    async def stage(
        self, body: AsyncIterator[bytes], expect: BodyExpectations, *, max_bytes: int
    ) -> StagedBlob:
        """Stream ``body`` into a staged (fsync'd, unpublished) blob with its digests.

        Raises EntityTooLarge once more than ``max_bytes`` arrived, InsufficientStorage, or
        what the body raised; nothing is left behind when it raises.
        """
        algorithms = tuple(sorted(expect.checksums))
        writer = await self.opened(
            functools.partial(self.blobs.stage, algorithms), BlobWriter.abort
        )
        lanes = _UploadLanes(self, writer)
        received = 0
        try:
            async for chunk in body:
                received += len(chunk)
                if received > max_bytes:
                    raise EntityTooLarge(extra={"MaxSizeAllowed": str(max_bytes)})
                await lanes.push(chunk)
            await lanes.drain()
            return await self.disk(writer.finish)
        except BaseException:
            # Whatever ended the body (client gone, bad digest, disk full): no trace is left,
            # even when the request's task is being cancelled while this runs.
            await asyncio.shield(self._abort_stage(lanes, writer))
            raise

    async def opened(self, open_: Callable[[], T], discard: Callable[[T], object]) -> T:
        """``open_()`` on the pool. If the caller is cancelled meanwhile (a client that gives
        up right after its first chunk), whatever it opened is ``discard``-ed on the pool once
        that job ends: a cancelled request leaves no descriptor open and no staging file."""
        opening = asyncio.ensure_future(self.disk(open_))
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            await asyncio.shield(self._discard_opened(opening, discard))
            raise

    async def _discard_opened(
        self, opening: asyncio.Future[T], discard: Callable[[T], object]
    ) -> None:
        await asyncio.wait([opening])
        if not opening.cancelled() and opening.exception() is None:
            await self.io.run(discard, opening.result())

    async def _abort_stage(self, lanes: _UploadLanes, writer: BlobWriter) -> None:
        await lanes.settle()  # in-flight chunk jobs end before the file is removed
        await self.io.run(writer.abort)

    async def disk(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Blocking disk work on the pool, with OS errors turned into storage errors (the
        body's own errors, such as a client disconnect, stay what they are)."""
        try:
            return await self.io.run(fn, *args, **kwargs)
        except OSError as exc:
            raise from_os_error(exc) from exc

    async def read_ahead(
        self, reader: BlobReader, offset: int, stop: int
    ) -> AsyncGenerator[bytes, None]:
        """``[offset, stop)`` of one blob in chunks of READ_BLOCKS blocks, the next chunk read
        on the pool while the caller sends the current one (two chunks in memory at most)."""

        def read(at: int) -> asyncio.Future[bytes]:
            return asyncio.ensure_future(
                self.disk(reader.read_chunk, at, stop, blocks=_READ_BLOCKS)
            )

        pending = read(offset)
        try:
            while True:
                # Shielded: if the request is cancelled, the read still ends before the blob's
                # file descriptor is closed (see stage).
                chunk = await asyncio.shield(pending)
                offset += len(chunk)
                if offset < stop:
                    pending = read(offset)
                yield chunk
                if offset >= stop:
                    return
        finally:
            if not pending.done():  # the caller stopped early: let the read end before close
                await asyncio.wait([pending])
            elif not pending.cancelled():
                pending.exception()  # retrieved: an error after the caller left is moot


def verify_body(staged: StagedBlob | InlineBody, expect: BodyExpectations, key: str) -> None:
    """Every digest the client declared must match before anything becomes visible."""
    if expect.size is not None and staged.size != expect.size:
        raise IncompleteBody(resource=key)
    if expect.sha256_hex is not None and expect.sha256_hex != staged.sha256_hex:
        raise ContentSHA256Mismatch(
            resource=key,
            extra={
                "ClientComputedContentSHA256": expect.sha256_hex,
                "S3ComputedContentSHA256": staged.sha256_hex,
            },
        )
    if expect.md5_b64 is not None and expect.md5_b64 != staged.md5_b64:
        raise BadDigest(resource=key)
    late = expect.late_checksums() if expect.late_checksums is not None else {}
    for algorithm, value in [*expect.checksums.items(), *late.items()]:
        if value is not None and staged.checksums.get(algorithm) != value:
            raise BadDigest(
                f"The {algorithm.upper()} you specified did not match the calculated checksum.",
                resource=key,
            )


class _UploadLanes:
    """An upload's two lanes: the block CRCs and the write in one, the digests (MD5, SHA-256,
    requested checksums) in the other. Each runs its chunks in order on the pool while the
    loop receives the next ones, at most _AHEAD_CHUNKS behind: the lanes' threads and the loop
    keep both cores busy, and memory stays a few chunks per request."""

    def __init__(self, transfers: Transfers, writer: BlobWriter) -> None:
        self._write = _Lane(transfers, writer.write)
        self._digest = _Lane(transfers, writer.digest)
        self._whole = False  # whether the last chunk was digested in the write lane

    async def push(self, chunk: bytes) -> None:
        # The digests are fed in chunk order by one thread at a time: when chunks switch
        # between the write lane digesting them and the digest lane, the lane that did the
        # earlier ones finishes first.
        if len(chunk) < _SPLIT_HASHING_BYTES:
            await self._digest.within(0)
            self._write.push(chunk)  # one pool job does it all: a second would cost more
        else:
            if self._whole:
                await self._write.within(0)
            self._write.push(chunk, digest=False)
            self._digest.push(chunk)
        self._whole = len(chunk) < _SPLIT_HASHING_BYTES
        await self._write.within(_AHEAD_CHUNKS)
        await self._digest.within(_AHEAD_CHUNKS)

    async def drain(self) -> None:
        """Wait for every chunk to be digested and written; raises a lane's error."""
        await self._write.within(0)
        await self._digest.within(0)

    async def settle(self) -> None:
        """Wait for every job to end, ignoring errors (the caller is already failing)."""
        await self._write.settle()
        await self._digest.settle()


class _Lane:
    """One blocking function applied to an upload's chunks in order, one pool job at a time,
    while the event loop goes on receiving. The first error ends the lane: every later job
    re-raises it, and so does :meth:`within`.

    Jobs are shielded: a cancelled request must not leave a pool thread writing to a file
    descriptor that the abort then closes (and the kernel may hand to another file).
    """

    def __init__(self, transfers: Transfers, fn: Callable[..., None]) -> None:
        self._transfers = transfers
        self._fn = fn
        self._jobs: collections.deque[asyncio.Future[None]] = collections.deque()

    def push(self, chunk: bytes, **kwargs: Any) -> None:
        after = self._jobs[-1] if self._jobs else None
        self._jobs.append(asyncio.ensure_future(self._run(after, chunk, kwargs)))

    async def _run(
        self, after: asyncio.Future[None] | None, chunk: bytes, kwargs: dict[str, Any]
    ) -> None:
        if after is not None:
            await after
        await self._transfers.disk(self._fn, chunk, **kwargs)

    async def within(self, ahead: int) -> None:
        """Wait until at most ``ahead`` jobs are unfinished; raises the lane's error."""
        while len(self._jobs) > ahead or (self._jobs and self._jobs[0].done()):
            # Dropped only once done: settle() must still see a job a cancellation left running.
            await asyncio.shield(self._jobs[0])
            self._jobs.popleft()

    async def settle(self) -> None:
        """Wait for every job to end, ignoring errors (the caller is already failing)."""
        if self._jobs:
            await asyncio.wait(self._jobs)
            for job in self._jobs:
                if not job.cancelled():
                    job.exception()
            self._jobs.clear()
