"""Content-addressed blob files: ``<root>/blobs/<aa>/<bb>/<sha256-hex>``.

A blob is written once under the SHA-256 of its bytes and never modified. Writers stage bytes in
``<root>/tmp`` (same file system, so publishing is a link, never a copy) while every digest is
computed in the same pass. All methods here block; the store calls them through the offloader.

Durability order (why each step is where it is):
1. the staged file is fsync'd before it is published, so a published name never points at
   bytes that are not on disk;
2. publishing hard-links the staged file to its final name and fsyncs the shard directory, so
   the name survives a crash before any metadata refers to it;
3. only then does the store commit the metadata that makes the blob visible;
4. the staged name is removed last: until the commit is known, the writer can publish again
   if a collection raced it (see ``ObjectStore._commit``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from lightningstor.checksums import BodyDigests

TMP_SUFFIX = ".part"


@dataclass(frozen=True, slots=True, kw_only=True)
class StagedBlob:
    """A complete, fsync'd body in the staging area with its digests."""

    path: Path
    size: int
    sha256_hex: str
    md5_hex: str
    md5_b64: str
    checksums: dict[str, str]


class BlobWriter:
    """Streams one body into the staging area. Not thread-safe; one writer per request."""

    def __init__(self, path: Path, algorithms: tuple[str, ...]) -> None:
        self.path = path
        self._digests = BodyDigests(algorithms)  # may refuse an algorithm: before the open
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    @property
    def size(self) -> int:
        return self._digests.size

    def write(self, data: bytes) -> None:
        self._digests.update(data)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def finish(self) -> StagedBlob:
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        d = self._digests
        return StagedBlob(
            path=self.path,
            size=d.size,
            sha256_hex=d.sha256_hex,
            md5_hex=d.md5_hex,
            md5_b64=d.md5_b64,
            checksums=d.checksums(),
        )

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.blob_root = root / "blobs"
        self.tmp_root = root / "tmp"
        self.blob_root.mkdir(parents=True, exist_ok=True)
        self.tmp_root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256_hex: str) -> Path:
        return self.blob_root / sha256_hex[:2] / sha256_hex[2:4] / sha256_hex

    def stage(self, algorithms: tuple[str, ...] = ()) -> BlobWriter:
        name = secrets.token_hex(16) + TMP_SUFFIX
        return BlobWriter(self.tmp_root / name, algorithms)

    def publish(self, staged: StagedBlob) -> None:
        """Give the staged bytes their content name, durably. Idempotent (dedup)."""
        final = self.path(staged.sha256_hex)
        self._make_shard_dirs(final.parent)
        with contextlib.suppress(FileExistsError):
            os.link(staged.path, final)  # exists: another writer published the same bytes
        # Always, even when the name existed: the writer that made it may not have synced
        # the directory yet, and this caller is about to acknowledge an object that uses it.
        _fsync_dir(final.parent)

    def discard(self, staged: StagedBlob) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged.path)

    def exists(self, sha256_hex: str) -> bool:
        return self.path(sha256_hex).exists()

    def remove(self, sha256_hex: str) -> None:
        path = self.path(sha256_hex)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            _fsync_dir(path.parent)

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

    def _make_shard_dirs(self, shard: Path) -> None:
        # Directories are fsync'd into their parents, or a crash could lose the path; also
        # when they exist already, since their creator may not have synced them yet (syncing
        # a clean directory costs next to nothing).
        for directory in (shard.parent, shard):
            with contextlib.suppress(FileExistsError):
                directory.mkdir()
            _fsync_dir(directory.parent)
