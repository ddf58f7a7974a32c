"""Content-addressed blob files: ``<root>/blobs/<aa>/<bb>/<sha256-hex>``, each with its block
checksums in ``<root>/crcs/<aa>/<bb>/<sha256-hex>.crc``.

A blob is written once under the SHA-256 of its bytes and never modified. Writers stage bytes in
``<root>/tmp`` (same file system, so publishing is a link, never a copy) while every digest,
and the CRC32C of every :data:`BLOCK_BYTES` block, is computed in the same pass. All methods
here block; the store calls them through the offloader.

Why the block checksums live in a sidecar file of their own tree:
- the blob file stays exactly the bytes its name hashes (``sha256sum`` of a blob prints its
  name; a blob is copied out with ``cp``), and reads need no trailer arithmetic;
- the blob tree keeps holding blobs only, one file per blob, for the collector, fsck and any
  operator's script that walks it;
- a damaged sidecar is told apart from damaged bytes (the SHA-256 still matches) and rebuilt
  from the blob by ``fsck --repair``; a trailer would be rewritten inside an immutable file.

Durability order (why each step is where it is):
1. the staged blob and its staged sidecar are both fsync'd before either is published, so a
   published name never points at bytes that are not on disk;
2. publishing links the sidecar to its final name and fsyncs its directory *first*, then links
   the blob and fsyncs its shard directory: a blob name never survives a crash without its
   checksums (a sidecar without a blob is harmless: the blob was queued for collection before
   it was published, and the collector removes both; a new publish of the bytes reuses it);
3. only then does the store commit the metadata that makes the blob visible;
4. the staged names are removed last: until the commit is known, the writer can publish again
   if a collection raced it (see ``ObjectStore._commit``).
Removal runs the other way round: the blob first, then its sidecar.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from awscrt import checksums as awscrt_checksums

from lightningstor.blobs.checksums import BodyDigests
from lightningstor.errors import InsufficientStorage

TMP_SUFFIX = ".part"
CRC_SUFFIX = ".crc"
# Reads verify whole blocks, so this is also the read granularity: small enough to keep a
# request's memory at one chunk, large enough that a pool job per block costs nothing.
BLOCK_BYTES = 1024 * 1024

# Sidecar format, version 1: a header (magic, format version, reserved, block size, blob size),
# then the big-endian CRC32C of each block in order (the last one may be short). The header's
# sizes let a truncated or mismatched sidecar be recognised without reading the blob.
SIDECAR_VERSION = 1
_SIDECAR_MAGIC = b"LSBC"
_HEADER = struct.Struct(">4sHHIQ")
SIDECAR_HEADER_BYTES = _HEADER.size
_ENTRY_BYTES = 4
_ENTRY_WINDOW = 256  # CRCs a reader fetches at a time: one small pread per 256 MiB
_FLUSH_ENTRY_BYTES = 4096  # a writer appends its CRCs every GiB, so memory stays O(1)
# A blob being written is flushed to disk every this many bytes (see BlobWriter.write).
_SYNC_EVERY_BYTES = 32 * 1024 * 1024
_SHARDS = 256 * 256  # <aa>/<bb> directories per tree


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC32C (Castagnoli), by awscrt (the one CRC32C library here: it takes a memoryview, so
    blocks straddling ``write()`` calls are checksummed without copying, and measured twice
    as fast as google-crc32c)."""
    return int(awscrt_checksums.crc32c(data, crc))


def block_count(size: int) -> int:
    return -(-size // BLOCK_BYTES)


class SidecarError(ValueError):
    """A sidecar that does not decode as block checksums of this blob."""


def encode_sidecar_header(blob_bytes: int) -> bytes:
    return _HEADER.pack(_SIDECAR_MAGIC, SIDECAR_VERSION, 0, BLOCK_BYTES, blob_bytes)


def decode_sidecar_header(raw: bytes, sidecar_bytes: int) -> int:
    """The blob size a sidecar describes; raises :class:`SidecarError` unless the header is of
    this format and the file holds exactly one CRC per block."""
    if len(raw) < SIDECAR_HEADER_BYTES:
        raise SidecarError("block checksum file shorter than its header")
    magic, version, _reserved, block_bytes, blob_bytes = _HEADER.unpack_from(raw)
    if magic != _SIDECAR_MAGIC:
        raise SidecarError(f"not a block checksum file (magic {magic!r})")
    # One block size per format version: changing BLOCK_BYTES means a new version + migration.
    if version != SIDECAR_VERSION or block_bytes != BLOCK_BYTES:
        raise SidecarError(f"block checksums of format {version}, {block_bytes}-byte blocks")
    if sidecar_bytes != SIDECAR_HEADER_BYTES + _ENTRY_BYTES * block_count(blob_bytes):
        raise SidecarError(f"a {sidecar_bytes}-byte checksum file for {blob_bytes} bytes")
    return int(blob_bytes)


class BlockCrcs:
    """The CRC32C of every block of a stream fed in pieces of any size."""

    def __init__(self) -> None:
        self._crc = 0
        self._fill = 0
        self.entries = bytearray()  # finished blocks' CRCs; callers may drain it

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            take = min(BLOCK_BYTES - self._fill, len(view))
            self._crc = crc32c(view[:take], self._crc)
            self._fill += take
            view = view[take:]
            if self._fill == BLOCK_BYTES:
                self._close_block()

    def finish(self) -> bytes:
        """The CRCs not drained yet, the last (short) block's included."""
        if self._fill:
            self._close_block()
        rest = bytes(self.entries)
        self.entries.clear()
        return rest

    def _close_block(self) -> None:
        self.entries += self._crc.to_bytes(_ENTRY_BYTES, "big")
        self._crc = self._fill = 0


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


@dataclass(frozen=True, slots=True, kw_only=True)
class StagedBlob:
    """A complete, fsync'd body in the staging area with its digests and block checksums."""

    path: Path
    crc_path: Path
    size: int
    sha256_hex: str
    md5_hex: str
    md5_b64: str
    checksums: dict[str, str]


class BlobWriter:
    """Streams one body into the staging area. Not thread-safe; one writer per request."""

    def __init__(self, path: Path, crc_path: Path, algorithms: tuple[str, ...]) -> None:
        self.path = path
        self.crc_path = crc_path
        self._digests = BodyDigests(algorithms)  # may refuse an algorithm: before the open
        self._blocks = BlockCrcs()
        self._fd = self._crc_fd = -1
        self._unsynced = 0
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self._crc_fd = os.open(crc_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            # The header's blob size is known at the end; its place is kept, then overwritten.
            _write_all(self._crc_fd, bytes(SIDECAR_HEADER_BYTES))
        except BaseException:
            self.abort()
            raise

    @property
    def size(self) -> int:
        return self._digests.size

    def write(self, data: bytes, *, digest: bool = True) -> None:
        """Digest and write ``data``; with ``digest=False`` the caller feeds :meth:`digest`
        the same chunks itself (in the same order), on another thread, at the same time."""
        if digest:
            self._digests.update(data)
        self._blocks.update(data)
        self._unsynced += len(data)
        if self._unsynced >= _SYNC_EVERY_BYTES:
            # Flushed as it arrives, while the next chunk is received: the fsync that must
            # come before the commit then finds little left to write.
            os.fdatasync(self._fd)
            self._unsynced = 0
        if len(self._blocks.entries) >= _FLUSH_ENTRY_BYTES:
            _write_all(self._crc_fd, self._blocks.entries)
            self._blocks.entries.clear()
        _write_all(self._fd, data)

    def digest(self, data: bytes) -> None:
        self._digests.update(data)

    def finish(self) -> StagedBlob:
        d = self._digests
        _write_all(self._crc_fd, self._blocks.finish())
        os.pwrite(self._crc_fd, encode_sidecar_header(d.size), 0)
        for fd in (self._crc_fd, self._fd):
            os.fsync(fd)
        self._close()
        return StagedBlob(
            path=self.path,
            crc_path=self.crc_path,
            size=d.size,
            sha256_hex=d.sha256_hex,
            md5_hex=d.md5_hex,
            md5_b64=d.md5_b64,
            checksums=d.checksums(),
        )

    def abort(self) -> None:
        self._close()
        for path in (self.path, self.crc_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _close(self) -> None:
        for fd in (self._fd, self._crc_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._crc_fd = -1


class BlockMismatch(Exception):
    """Stored bytes (or their checksums) differ from what was written. The blob layer's own
    signal: the store logs and counts it and raises an InternalError in its place."""

    def __init__(self, sha256_hex: str, offset: int, detail: str) -> None:
        super().__init__(f"blob {sha256_hex} at offset {offset}: {detail}")
        self.sha256_hex = sha256_hex
        self.offset = offset
        self.detail = detail


class SidecarEntries:
    """A sidecar's CRCs, fetched a window at a time (O(1) memory for any blob size)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._first = 0
        self._window = b""

    def expected(self, block: int) -> int | None:
        if not self._first <= block < self._first + len(self._window) // _ENTRY_BYTES:
            at = SIDECAR_HEADER_BYTES + block * _ENTRY_BYTES
            self._window = os.pread(self._fd, _ENTRY_WINDOW * _ENTRY_BYTES, at)
            self._first = block
        at = (block - self._first) * _ENTRY_BYTES
        entry = self._window[at : at + _ENTRY_BYTES]
        return int.from_bytes(entry, "big") if len(entry) == _ENTRY_BYTES else None


class BlobReader:
    """One blob opened for reading. With checksums, every block is read whole and checked
    before any byte of it is returned; without (verification off, or a blob stored before
    sidecars existed), bytes are returned as read. Blocking; one per stream."""

    def __init__(self, *, sha256_hex: str, size: int, fd: int, crc_fd: int | None) -> None:
        self.sha256_hex = sha256_hex
        self.size = size
        self._fd = fd
        self._crc_fd = crc_fd
        self._entries = SidecarEntries(crc_fd) if crc_fd is not None else None

    @property
    def verified(self) -> bool:
        return self._entries is not None

    def read_chunk(self, offset: int, stop: int, *, blocks: int = 1) -> bytes:
        """Bytes from ``offset`` up to ``stop`` or the end of the ``blocks``-th block from the
        one holding ``offset`` (one read: fewer trips through the pool for a large GET).

        Raises :class:`BlockMismatch` when a block is short or fails its CRC32C.
        """
        block, within = divmod(offset, BLOCK_BYTES)
        start = offset - within
        limit = min(start + blocks * BLOCK_BYTES, stop)
        if self._entries is None:
            data = os.pread(self._fd, limit - offset, offset)
            if not data:
                raise BlockMismatch(self.sha256_hex, offset, "blob is shorter than recorded")
            return data
        # Whole blocks only: each is checked before any byte of it is returned.
        length = min(block_count(limit - start) * BLOCK_BYTES, self.size - start)
        data = os.pread(self._fd, length, start)
        if len(data) != length:
            raise BlockMismatch(self.sha256_hex, start + len(data), "blob is shorter than recorded")
        view = memoryview(data)
        for at in range(0, length, BLOCK_BYTES):
            index = block + at // BLOCK_BYTES
            if crc32c(view[at : at + BLOCK_BYTES]) != self._entries.expected(index):
                if at == 0:
                    raise BlockMismatch(self.sha256_hex, start, f"block {index} fails its CRC32C")
                length = at  # serve the sound blocks before it; the next read refuses it
                break
        end = min(stop - start, length)
        return data if within == 0 and end == len(data) else data[within:end]

    def close(self) -> None:
        os.close(self._fd)
        if self._crc_fd is not None:
            os.close(self._crc_fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


class BlobStore:
    def __init__(self, root: Path) -> None:
        # New bytes are refused (InsufficientStorage) while the data disk has less free than
        # this, so that deletes, which free space, and the metadata writes every operation
        # makes still have room when the disk fills up (the setting min_free_bytes).
        self.min_free_bytes = 0
        self.blob_root = root / "blobs"
        self.crc_root = root / "crcs"
        self.tmp_root = root / "tmp"
        for directory in (self.blob_root, self.crc_root, self.tmp_root):
            directory.mkdir(parents=True, exist_ok=True)
        # Shard directories this process has made durable, one flag per <aa><bb> per tree.
        self._synced_shards = {root: bytearray(_SHARDS) for root in (self.blob_root, self.crc_root)}

    def path(self, sha256_hex: str) -> Path:
        return self.blob_root / sha256_hex[:2] / sha256_hex[2:4] / sha256_hex

    def crc_path(self, sha256_hex: str) -> Path:
        return self.crc_root / sha256_hex[:2] / sha256_hex[2:4] / (sha256_hex + CRC_SUFFIX)

    def ensure_room(self) -> None:
        """Raise InsufficientStorage while the disk has less than ``min_free_bytes`` free."""
        if self.min_free_bytes and shutil.disk_usage(self.tmp_root).free < self.min_free_bytes:
            raise InsufficientStorage(
                "The server's disk is full; new data is accepted again once space is freed."
            )

    def stage(self, algorithms: tuple[str, ...] = ()) -> BlobWriter:
        self.ensure_room()
        name = secrets.token_hex(16)
        return BlobWriter(
            self.tmp_root / (name + TMP_SUFFIX),
            self.tmp_root / (name + CRC_SUFFIX + TMP_SUFFIX),  # clean_staging finds it too
            algorithms,
        )

    def publish(self, staged: StagedBlob) -> None:
        """Give the staged bytes and checksums their content names, durably, checksums first
        (see the module docstring). Idempotent (dedup)."""
        sidecar = self.crc_path(staged.sha256_hex)
        self._make_shard_dirs(sidecar.parent)
        try:
            os.link(staged.crc_path, sidecar)
        except FileExistsError:
            # Left by an earlier writer of the same bytes: the same content, unless it rotted
            # (or is of another format) since; then this writer's takes its place.
            if _read_file(sidecar) != staged.crc_path.read_bytes():
                self._replace_sidecar(staged.crc_path, sidecar, keep_source=True)
        _fsync_dir(sidecar.parent)
        final = self.path(staged.sha256_hex)
        self._make_shard_dirs(final.parent)
        with contextlib.suppress(FileExistsError):
            os.link(staged.path, final)  # exists: another writer published the same bytes
        # Always, even when the name existed: the writer that made it may not have synced
        # the directory yet, and this caller is about to acknowledge an object that uses it.
        _fsync_dir(final.parent)

    def discard(self, staged: StagedBlob) -> None:
        for path in (staged.path, staged.crc_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def exists(self, sha256_hex: str) -> bool:
        return self.path(sha256_hex).exists()

    def remove(self, sha256_hex: str) -> None:
        # The blob before its checksums: at no instant is there a blob name without them.
        for path in (self.path(sha256_hex), self.crc_path(sha256_hex)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                _fsync_dir(path.parent)

    def remove_sidecar(self, sha256_hex: str) -> None:
        path = self.crc_path(sha256_hex)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            _fsync_dir(path.parent)

    def write_sidecar(self, sha256_hex: str, size: int, entries: bytes) -> None:
        """(Re)create a blob's checksums from CRCs computed off its verified bytes (fsck)."""
        staged = self.tmp_root / (secrets.token_hex(16) + CRC_SUFFIX + TMP_SUFFIX)
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_all(fd, encode_sidecar_header(size) + entries)
            os.fsync(fd)
        finally:
            os.close(fd)
        sidecar = self.crc_path(sha256_hex)
        self._make_shard_dirs(sidecar.parent)
        self._replace_sidecar(staged, sidecar, keep_source=False)
        _fsync_dir(sidecar.parent)

    def _replace_sidecar(self, source: Path, sidecar: Path, *, keep_source: bool) -> None:
        # A rename replaces atomically: readers see the old checksums or the new, never none.
        # A staged file still needed by its writer is hard-linked to a temporary name first.
        if keep_source:
            moving = sidecar.with_name(f"{sidecar.name}.{secrets.token_hex(8)}{TMP_SUFFIX}")
            os.link(source, moving)
            source = moving
        os.replace(source, sidecar)

    def clean_staging(self) -> int:
        """Remove staged files left by a process that died mid-upload; returns how many."""
        removed = 0
        for entry in self.tmp_root.iterdir():
            if entry.name.endswith(TMP_SUFFIX):
                entry.unlink(missing_ok=True)
                removed += 1
        if removed:
            _fsync_dir(self.tmp_root)
        return removed

    def open_fd(self, sha256_hex: str) -> int:
        """A read-only descriptor of the blob; the caller closes it (``os.close``)."""
        return os.open(self.path(sha256_hex), os.O_RDONLY)

    def open_sidecar(self, sha256_hex: str, size: int) -> int | None:
        """A descriptor of the blob's block checksums, checked to describe ``size`` bytes;
        None when the blob has none. Raises :class:`SidecarError`."""
        try:
            fd = os.open(self.crc_path(sha256_hex), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            described = decode_sidecar_header(
                os.pread(fd, SIDECAR_HEADER_BYTES, 0), os.fstat(fd).st_size
            )
            if described != size:
                raise SidecarError(f"block checksums of {described} bytes, the blob has {size}")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def open_reader(self, sha256_hex: str, size: int, *, verify: bool = True) -> BlobReader:
        """The blob of ``size`` bytes opened for (with ``verify``, checked) block reads.

        A blob without a sidecar (stored before they existed) opens unverified. Raises
        :class:`BlockMismatch` when its sidecar cannot be the checksums of this blob.
        """
        fd = os.open(self.path(sha256_hex), os.O_RDONLY)
        try:
            crc_fd = self.open_sidecar(sha256_hex, size) if verify else None
        except SidecarError as exc:
            os.close(fd)
            raise BlockMismatch(sha256_hex, 0, str(exc)) from None
        except BaseException:
            os.close(fd)
            raise
        return BlobReader(sha256_hex=sha256_hex, size=size, fd=fd, crc_fd=crc_fd)

    def shard_dirs(self, root: Path | None = None) -> list[Path]:
        """The ``<aa>/<bb>`` directories of the blob tree (or of ``root``), in name order."""
        root = self.blob_root if root is None else root
        return [second for first in _sorted_dirs(root) for second in _sorted_dirs(first)]

    def shard_files(self, shard: Path) -> list[str]:
        """The names of the files in one shard directory, in order."""
        with contextlib.suppress(FileNotFoundError), os.scandir(shard) as entries:
            return sorted(e.name for e in entries if e.is_file(follow_symlinks=False))
        return []

    def iter_shas(self) -> Iterator[str]:
        """Every blob file's name, in order (blocking: offline tools, or one shard per job)."""
        for shard in self.shard_dirs():
            yield from self.shard_files(shard)

    def _make_shard_dirs(self, shard: Path) -> None:
        # Directories are fsync'd into their parents, or a crash could lose the path; also
        # when they exist already, since their creator may not have synced them yet. Once
        # this process has synced them they stay durable (shard directories are never
        # removed), so later publishes skip those syncs: with two trees, they were half the
        # cost of storing a small object.
        synced = self._synced_shards[shard.parent.parent]
        index = int(shard.parent.name + shard.name, 16)
        if synced[index]:
            return
        for directory in (shard.parent, shard):
            with contextlib.suppress(FileExistsError):
                directory.mkdir()
            _fsync_dir(directory.parent)
        synced[index] = 1


def _sorted_dirs(path: Path) -> list[Path]:
    try:
        with os.scandir(path) as entries:
            return sorted(Path(e.path) for e in entries if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []
