"""Object bytes between a request's stream and blob files, in bounded memory.

Uploads are staged chunk by chunk: each chunk is digested on one pool thread and written on
another while the next is received. Downloads read a few checksummed blocks per pool trip, one
read ahead of the send. Every declared digest is checked before anything commits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, ParamSpec, TypeVar

from lightningstor.blobs import BlobReader, BlobStore, BlobWriter, StagedBlob
from lightningstor.errors import (
    BadDigest,
    ContentSHA256Mismatch,
    EntityTooLarge,
    IncompleteBody,
)
from lightningstor.inline import InlineBody
from lightningstor.model import BodyExpectations
from lightningstor.offload import Offloader
from lightningstor.references import storage_error

P = ParamSpec("P")
T = TypeVar("T")

MAX_OBJECT_BYTES = 5 * 1024**4  # S3's 5 TiB object limit
# Chunks at least this large are digested and written on two pool threads at once.
_SPLIT_HASHING_BYTES = 256 * 1024
# A large GET reads this many blocks (MiB) per trip through the pool.
_READ_BLOCKS = 4


class Transfers:
    def __init__(self, *, blobs: BlobStore, offloader: Offloader) -> None:
        self.blobs = blobs
        self.io = offloader

    async def stage(self, body: AsyncIterator[bytes], expect: BodyExpectations) -> StagedBlob:
        """Stream ``body`` into a staged (fsync'd, unpublished) blob with its digests.

        Raises EntityTooLarge, InsufficientStorage, or what the body raised; nothing is left
        behind when it raises.
        """
        algorithms = tuple(sorted(expect.checksums))
        writer = await self.disk(self.blobs.stage, algorithms)
        pending: asyncio.Future[Any] | None = None
        try:
            # One chunk is written on the pool while the next is read from the socket. Shielded:
            # a cancelled request must not leave a pool thread writing to a file descriptor
            # that the abort below closes (and the kernel may hand to another file).
            async for chunk in body:
                if pending is not None:
                    await asyncio.shield(pending)
                if writer.size + len(chunk) > MAX_OBJECT_BYTES:
                    raise EntityTooLarge()
                pending = asyncio.ensure_future(self._put_chunk(writer, chunk))
            if pending is not None:
                await asyncio.shield(pending)
            return await self.disk(writer.finish)
        except BaseException:
            # Whatever ended the body (client gone, bad digest, disk full): no trace is left,
            # even when the request's task is being cancelled while this runs.
            await asyncio.shield(self._abort_stage(pending, writer))
            raise

    async def _put_chunk(self, writer: BlobWriter, chunk: bytes) -> None:
        if len(chunk) < _SPLIT_HASHING_BYTES:
            await self.disk(writer.write, chunk)
            return
        # The digests on one pool thread, the block CRCs and the write on another (hashlib and
        # os.write release the GIL): on two cores a large upload runs at the slower of the two
        # (measured: 1.8 ms/MiB for MD5+SHA-256, 2.4 ms/MiB writing new pages on the test VM)
        # rather than at their sum. Both always finish before this returns, failed or not.
        results = await asyncio.gather(
            self.disk(writer.digest, chunk),
            self.disk(writer.write, chunk, digest=False),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _abort_stage(self, pending: asyncio.Future[Any] | None, writer: BlobWriter) -> None:
        if pending is not None:
            # Let an in-flight chunk write finish before its file is removed (errors are moot).
            await asyncio.wait([pending])
        await self.io.run(writer.abort)

    async def disk(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Blocking disk work on the pool, with OS errors turned into storage errors (the
        body's own errors, such as a client disconnect, stay what they are)."""
        try:
            return await self.io.run(fn, *args, **kwargs)
        except OSError as exc:
            raise storage_error(exc) from exc

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
