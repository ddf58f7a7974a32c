"""Re-verifying stored blobs: one blob's check (:class:`BlobCheck`, blocking, a block per step)
and the daemon's background scrubber (:class:`Scrubber`) that runs it over every blob.

A blob passes when its bytes hash to its name (SHA-256) and every block matches the CRC32C in
its sidecar. The findings tell damaged bytes (the name no longer matches: not repairable here)
from damaged or missing checksums over intact bytes (``fsck --repair`` rebuilds them).

The scrubber walks the blob tree in name order at ``bytes_per_second``, each block read and
checked in one pool job, and keeps its place in a small state file, so a restart resumes the
pass instead of starting over, and the next pass starts ``interval_seconds`` after the last
one finished. Results stay on :attr:`Scrubber.results` for metrics to export.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from lightningstor.blobs.files import (
    BLOCK_BYTES,
    BlobStore,
    SidecarEntries,
    SidecarError,
    crc32c,
)
from lightningstor.offload import Offloader

log = logging.getLogger("lightningstor.scrub")

SCRUB_STATE_FILE = "scrub-state.json"
SCRUB_PROGRESS_LOG_SECONDS = 300.0
_STATE_VERSION = 1
_STATE_SAVE_SECONDS = 30.0  # at most this much of a pass is redone after a crash
_RETRY_SECONDS = 60.0
_MAX_BURST_SECONDS = 1.0  # the pacer never catches up on more than this much idle time


class Checksums(Enum):
    OK = "ok"
    MISSING = "missing"
    DAMAGED = "damaged"


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobVerdict:
    sha256_hex: str
    size: int
    hashes_to_name: bool
    checksums: Checksums
    detail: str = ""  # what is wrong with the checksums (or which block first failed)
    computed: bytes = b""  # the block CRCs of the bytes as read (when asked for)
    read_error: str = ""  # the blob could not be read to the end

    @property
    def intact(self) -> bool:
        return self.hashes_to_name and self.checksums is Checksums.OK

    def problem(self) -> str | None:
        """One line saying what is wrong, or None."""
        if self.read_error:
            return f"unreadable: {self.read_error}"
        if not self.hashes_to_name:
            return "content does not hash to its name" + (
                f" ({self.detail})" if self.detail else ""
            )
        if self.checksums is Checksums.MISSING:
            return "no block checksums (reads of it are not verified); content intact"
        if self.checksums is Checksums.DAMAGED:
            return f"block checksums damaged ({self.detail}); content intact"
        return None


class BlobCheck:
    """Checks one blob a block per :meth:`step`. Blocking: each step is one pool job.

    Raises FileNotFoundError when the blob is gone (collected since it was listed).
    ``keep_crcs`` keeps the CRCs computed, so a sidecar can be rebuilt from them.
    """

    def __init__(self, blobs: BlobStore, sha256_hex: str, *, keep_crcs: bool = False) -> None:
        self.sha256_hex = sha256_hex
        self.offset = 0
        self._fd = os.open(blobs.path(sha256_hex), os.O_RDONLY)
        self._crc_fd: int | None = None
        self._checksums, self._detail = Checksums.OK, ""
        try:
            self.size = os.fstat(self._fd).st_size
            try:
                self._crc_fd = blobs.open_sidecar(sha256_hex, self.size)
            except SidecarError as exc:
                self._checksums, self._detail = Checksums.DAMAGED, str(exc)
            else:
                if self._crc_fd is None:
                    self._checksums, self._detail = Checksums.MISSING, "no block checksums"
        except BaseException:
            self.close()
            raise
        self._entries = SidecarEntries(self._crc_fd) if self._crc_fd is not None else None
        self._sha256 = hashlib.sha256()
        self._crcs = bytearray() if keep_crcs else None

    def step(self) -> int:
        """Check the next block; returns its length, 0 once the blob is done."""
        if self.offset >= self.size:
            return 0
        # Read what is on the disk, not a cached copy that could hide rot under it, and leave
        # the page cache to the requests (a scrub reads everything once and never again).
        _drop_cached(self._fd, self.offset)
        data = os.pread(self._fd, BLOCK_BYTES, self.offset)
        _drop_cached(self._fd, self.offset)
        if not data:  # shorter than when opened: what was read is all there is to hash
            self.size = self.offset
            return 0
        self._sha256.update(data)
        crc = crc32c(data)
        if self._crcs is not None:
            self._crcs += crc.to_bytes(4, "big")
        block = self.offset // BLOCK_BYTES
        entries, first_failure = self._entries, self._checksums is Checksums.OK
        if entries is not None and first_failure and crc != entries.expected(block):
            self._checksums = Checksums.DAMAGED
            self._detail = f"block {block} at offset {self.offset} fails its CRC32C"
        self.offset += len(data)
        return len(data)

    def verdict(self) -> BlobVerdict:
        return BlobVerdict(
            sha256_hex=self.sha256_hex,
            size=self.size,
            hashes_to_name=self._sha256.hexdigest() == self.sha256_hex,
            checksums=self._checksums,
            detail=self._detail,
            computed=bytes(self._crcs) if self._crcs is not None else b"",
        )

    def run(self) -> BlobVerdict:
        """The whole check in one go (offline tools)."""
        while self.step():
            pass
        return self.verdict()

    def close(self) -> None:
        for fd in (self._fd, self._crc_fd):
            if fd is not None and fd >= 0:
                os.close(fd)
        self._fd, self._crc_fd = -1, None


def _drop_cached(fd: int, offset: int) -> None:
    if hasattr(os, "posix_fadvise"):  # Linux and most Unixes; elsewhere reads may be cached
        os.posix_fadvise(fd, offset, BLOCK_BYTES, os.POSIX_FADV_DONTNEED)


@dataclass(slots=True)
class ScrubResults:
    """What the scrubber has found: counters since start, and the current findings."""

    passes_completed: int = 0
    blobs_checked: int = 0  # over all passes since start (monotonic, for metrics)
    bytes_checked: int = 0
    pass_blobs: int = 0  # in the pass under way (or the last one)
    pass_bytes: int = 0
    last_pass_finished_ns: int | None = None
    # sha256 -> problem, as of the latest check of that blob. ``corrupt``: the bytes are
    # damaged; ``checksums``: the bytes are intact but their block checksums are missing or
    # damaged (reads of the blob are refused or unverified until ``fsck --repair``).
    corrupt: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    _seen_in_pass: dict[str, int] = field(default_factory=dict, repr=False)

    def record(self, verdict: BlobVerdict, pass_number: int) -> None:
        sha = verdict.sha256_hex
        self.corrupt.pop(sha, None)
        self.checksums.pop(sha, None)
        self._seen_in_pass.pop(sha, None)
        problem = verdict.problem()
        if problem is None:
            return
        (self.corrupt if not verdict.hashes_to_name else self.checksums)[sha] = problem
        self._seen_in_pass[sha] = pass_number

    def forget_older_than(self, pass_number: int) -> None:
        """Drop findings no pass since ``pass_number`` confirmed (their blobs are gone)."""
        for sha, seen in list(self._seen_in_pass.items()):
            if seen < pass_number:
                del self._seen_in_pass[sha]
                self.corrupt.pop(sha, None)
                self.checksums.pop(sha, None)


@dataclass(slots=True)
class _State:
    """Where the scrub stands, kept across restarts (losing it only costs a re-read)."""

    cursor: str = ""  # last blob checked by the pass under way; "" between passes
    started_ns: int = 0
    finished_ns: int | None = None


class _Pacer:
    def __init__(self, bytes_per_second: float) -> None:
        self._rate = bytes_per_second
        self._start = time.monotonic()
        self._spent = 0

    async def spend(self, n: int) -> None:
        self._spent += n
        ahead = self._spent / self._rate - (time.monotonic() - self._start)
        if ahead > 0:
            await asyncio.sleep(ahead)
        elif ahead < -_MAX_BURST_SECONDS:
            self._start, self._spent = time.monotonic(), 0


def _close_opened(opening: asyncio.Future[BlobCheck]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()  # closing a read-only descriptor: nothing to wait for


class Scrubber:
    def __init__(
        self,
        *,
        blobs: BlobStore,
        offloader: Offloader,
        bytes_per_second: float,
        interval_seconds: float,
        state_path: Path | None = None,
    ) -> None:
        self.blobs = blobs
        self.io = offloader
        self.bytes_per_second = bytes_per_second
        self.interval_seconds = interval_seconds
        self.state_path = state_path
        self.results = ScrubResults()
        self._pass_number = 0
        self._walk_started: int | None = None  # the pass that began the walk under way

    @property
    def enabled(self) -> bool:
        return self.bytes_per_second > 0 and self.interval_seconds > 0

    async def run_forever(self) -> None:
        """Scrub pass after pass, ``interval_seconds`` apart, until cancelled."""
        while True:
            state = await self.io.run(self._load_state)
            if not state.cursor and state.finished_ns is not None:
                due_ns = state.finished_ns + int(self.interval_seconds * 1e9)
                await asyncio.sleep(max(0.0, (due_ns - time.time_ns()) / 1e9))
            try:
                await self.scrub_pass()
            except Exception:
                log.exception("scrub pass failed; resuming in %.0f s", _RETRY_SECONDS)
                await asyncio.sleep(_RETRY_SECONDS)

    async def scrub_pass(self) -> ScrubResults:
        """Check every blob once (resuming an interrupted pass), at the configured rate."""
        state = await self.io.run(self._load_state)
        self._pass_number += 1
        if not state.cursor or self._walk_started is None:
            self._walk_started = self._pass_number
        if not state.cursor:
            state = _State(started_ns=time.time_ns())
        results = self.results
        results.pass_blobs = results.pass_bytes = 0
        log.info(
            "scrub pass started%s at %.0f MiB/s",
            f", resuming after blob {state.cursor}" if state.cursor else "",
            self.bytes_per_second / 2**20,
        )
        pacer = _Pacer(self.bytes_per_second)
        saved = logged = time.monotonic()
        try:
            for shard in await self.io.run(self.blobs.shard_dirs):
                if state.cursor and shard.parent.name + shard.name < state.cursor[:4]:
                    continue  # done before the interruption, by name order
                for sha in await self.io.run(self.blobs.shard_files, shard):
                    if sha <= state.cursor:
                        continue
                    await self._scrub_blob(sha, pacer)
                    state.cursor = sha
                    now = time.monotonic()
                    if now - saved >= _STATE_SAVE_SECONDS:
                        saved = now
                        await self.io.run(self._save_state, state)
                    if now - logged >= SCRUB_PROGRESS_LOG_SECONDS:
                        logged = now
                        self._log_progress("scrub progress")
        except BaseException:
            with contextlib.suppress(Exception):  # keep the place also when cancelled
                await self.io.run(self._save_state, state)
            raise
        await self.io.run(self._save_state, _State(finished_ns=time.time_ns()))
        results.passes_completed += 1
        results.last_pass_finished_ns = time.time_ns()
        # Findings older than this walk are of blobs it did not meet again: they are gone.
        results.forget_older_than(self._walk_started)
        self._walk_started = None
        self._log_progress("scrub pass finished")
        return results

    def _log_progress(self, what: str) -> None:
        r = self.results
        log.info(
            "%s: %d blobs, %.1f MiB checked; %d with damaged bytes, %d with checksum problems",
            what,
            r.pass_blobs,
            r.pass_bytes / 2**20,
            len(r.corrupt),
            len(r.checksums),
        )

    async def _scrub_blob(self, sha: str, pacer: _Pacer) -> None:
        opening = asyncio.ensure_future(self.io.run(BlobCheck, self.blobs, sha))
        try:
            check = await asyncio.shield(opening)
        except FileNotFoundError:
            return  # collected since the shard was listed
        except asyncio.CancelledError:
            # The open still completes on the pool: its descriptors must not outlive it.
            opening.add_done_callback(_close_opened)
            raise
        try:
            while n := await self.io.run(check.step):
                self.results.pass_bytes += n
                self.results.bytes_checked += n
                await pacer.spend(n)
            verdict = check.verdict()
        except OSError as exc:  # a read error is damage too (a bad sector answers EIO)
            verdict = BlobVerdict(
                sha256_hex=sha,
                size=check.size,
                hashes_to_name=False,
                checksums=Checksums.OK,
                read_error=f"{exc.strerror} at offset {check.offset}",
            )
        finally:
            await self.io.run(check.close)
        if verdict.checksums is Checksums.MISSING and not await self.io.run(self.blobs.exists, sha):
            return  # collected between opening the blob and its sidecar (removed in that order)
        self.results.pass_blobs += 1
        self.results.blobs_checked += 1
        self.results.record(verdict, self._pass_number)
        problem = verdict.problem()
        if problem is not None:
            level = logging.ERROR if not verdict.hashes_to_name else logging.WARNING
            log.log(level, "scrub: blob %s: %s", sha, problem)

    def _load_state(self) -> _State:
        if self.state_path is None:
            return _State()
        try:
            data = json.loads(self.state_path.read_text())
            if data.get("v") != _STATE_VERSION:
                raise ValueError(f"unknown version {data.get('v')!r}")
            return _State(
                cursor=str(data["cursor"]),
                started_ns=int(data["started_ns"]),
                finished_ns=None if data["finished_ns"] is None else int(data["finished_ns"]),
            )
        except FileNotFoundError:
            return _State()
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning(
                "ignoring unreadable %s (%s): scrubbing from the start", self.state_path, exc
            )
            return _State()

    def _save_state(self, state: _State) -> None:
        if self.state_path is None:
            return
        record = {
            "v": _STATE_VERSION,
            "cursor": state.cursor,
            "started_ns": state.started_ns,
            "finished_ns": state.finished_ns,
        }
        # Replaced atomically but not fsync'd: after a power loss the worst case is a pass
        # redone from an older place (or from the start), never a blob skipped for good.
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, self.state_path)
