"""Small objects kept inside their metadata record instead of a blob file.

A blob costs a small PUT two file fsyncs, up to three directory fsyncs and a reference-count
update on top of its metadata commit; an object of a few KiB stored in its own record costs one
synced metadata batch, which concurrent writers share (see ``kv_leveldb.py``). The bytes are
still covered end to end: by LevelDB's own log and block CRCs on disk, and by the record's MD5
(the object's ETag), checked on every read when ``verify_reads`` is on.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass

from lightningstor.blobs.checksums import BodyDigests

# Bodies up to this size are kept inline by default (``inline_max_bytes``; 0 turns it off).
INLINE_MAX_BYTES = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class InlineBody:
    """A whole small body with the digests a staged blob would carry."""

    data: bytes
    size: int
    sha256_hex: str
    md5_hex: str
    md5_b64: str
    checksums: Mapping[str, str]

    @classmethod
    def of(cls, data: bytes, algorithms: Iterable[str]) -> InlineBody:
        digests = BodyDigests(tuple(sorted(algorithms)))
        digests.update(data)  # a few KiB: microseconds, fine on the loop
        return cls(
            data=data,
            size=len(data),
            sha256_hex=digests.sha256_hex,
            md5_hex=digests.md5_hex,
            md5_b64=digests.md5_b64,
            checksums=digests.checksums(),
        )


async def take_small(
    body: AsyncIterator[bytes], limit: int, algorithms: Iterable[str]
) -> tuple[InlineBody | None, AsyncIterator[bytes]]:
    """The whole body if it ends within ``limit`` bytes; else None and the body unchanged
    (the chunks read so far are replayed first). A ``limit`` of 0 keeps nothing inline."""
    if limit <= 0:
        return None, body
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await anext(body, None)
        if chunk is None:
            return InlineBody.of(b"".join(chunks), algorithms), body
        chunks.append(chunk)
        size += len(chunk)
    return None, _replayed(chunks, body)


async def _replayed(first: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    while first:
        yield first.pop(0)
    async for chunk in rest:
        yield chunk


def intact(data: bytes, md5_hex: str) -> bool:
    return hashlib.md5(data, usedforsecurity=False).hexdigest() == md5_hex
