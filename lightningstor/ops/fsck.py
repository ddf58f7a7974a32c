"""Offline consistency check, and repair, of a store: references, blob files, their block
checksums and staging leftovers.

What a healthy store satisfies; what is reported when it does not; what ``repair`` does:
- every blob referenced by an object or a part exists as a file (not repairable: the bytes are
  lost; the objects using it are named);
- each reference record counts exactly the objects and parts that reference its blob
  (repaired: set to the true count);
- every blob file is referenced, or waits for collection (count zero, garbage entry present)
  (repaired: removed with its checksums; the store is offline, so nothing can be about to
  reference it, and the collector's crash-safe dance is not needed);
- every blob file has block checksums that describe it, and no checksums outlive their blob
  (repaired: rebuilt from the blob once its bytes hash to its name; strays removed);
- no staged file is left in ``tmp/`` (repaired: removed);
- with ``verify_content``, every blob's bytes hash to its name and match their block
  checksums (damaged bytes are not repairable here; the objects using them are named).

Repairs run in an order that is safe to interrupt: reference counts are committed before any
file is removed, and running fsck again finishes the job. Run it on a store no daemon has open
(LevelDB allows one process).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from lightningstor.blobs.files import CRC_SUFFIX, BlobStore, SidecarError
from lightningstor.blobs.inline import intact
from lightningstor.blobs.scrub import BlobCheck, BlobVerdict, Checksums
from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import Batch, OrderedKV, scan_all
from lightningstor.meta.records import (
    RefRecord,
    decode_part,
    decode_ref,
    encode_ref,
    stored_versions,
)
from lightningstor.model import NULL_VERSION

PROGRESS_EVERY_BLOBS = 1000
_USERS_NAMED = 3


@dataclass(slots=True)
class Report:
    objects: int = 0
    parts: int = 0
    blobs: int = 0
    bytes_checked: int = 0
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


def expected_references(kv: OrderedKV) -> tuple[Counter[str], int, int, list[str]]:
    """How many object versions and parts reference each blob, how many of each there are,
    and the versions kept inline whose bytes no longer match their MD5."""
    counts: Counter[str] = Counter()
    objects = parts = 0
    damaged: list[str] = []
    for head in stored_versions(kv):
        counts.update(s.sha256_hex for s in head.segments)
        objects += not head.delete_marker
        if head.inline is not None and not intact(head.inline, head.md5_hex):
            damaged.append(f"object {head.bucket}/{head.key}: inline bytes do not match its MD5")
    for _raw_key, raw in scan_all(kv, ks.PART_PREFIX, ks.prefix_end(ks.PART_PREFIX)):
        counts[decode_part(raw).sha256_hex] += 1
        parts += 1
    return counts, objects, parts, damaged


def check_store(
    kv: OrderedKV,
    blobs: BlobStore,
    *,
    verify_content: bool = False,
    repair: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Check the store; with ``repair``, also fix what can be fixed (see the module doc).

    ``problems`` lists everything found, repaired or not; ``repaired`` what was fixed.
    ``progress`` is told how far the blob pass got every :data:`PROGRESS_EVERY_BLOBS` blobs.
    """
    expected, objects, parts, damaged_inline = expected_references(kv)
    report = Report(objects=objects, parts=parts)
    report.problems.extend(damaged_inline)  # nothing to repair from: reported only
    fix = _Fixer(kv, blobs, report, enabled=repair)
    files = set(blobs.iter_shas())
    report.blobs = len(files)
    _check_references(kv, expected, files, report, fix)
    garbage = {
        ks.sha_from_garbage_key(k)
        for k, _ in scan_all(kv, ks.GARBAGE_PREFIX, ks.prefix_end(ks.GARBAGE_PREFIX))
    }
    orphans = sorted(files - set(expected) - garbage)
    for sha in orphans:
        report.problems.append(f"blob {sha}: orphaned file (unreferenced, not awaiting collection)")
        fix.remove_blob(sha)
    _check_leftovers(blobs, files | garbage, report, fix)
    kept = sorted(files - set(orphans)) if repair else sorted(files)
    damaged: dict[str, str] = {}
    for done, sha in enumerate(kept, 1):
        verdict = _check_blob(blobs, sha, verify_content=verify_content, repair=repair)
        problem = verdict.problem() if verdict is not None else None
        if verdict is not None and verify_content:
            report.bytes_checked += verdict.size
        if verdict is not None and problem is not None:
            if verdict.hashes_to_name:
                report.problems.append(f"blob {sha}: {problem}")
                fix.rebuild_checksums(verdict)
            else:
                damaged[sha] = problem
        if progress is not None and done % PROGRESS_EVERY_BLOBS == 0:
            progress(f"{done}/{len(kept)} blobs checked, {report.bytes_checked / 2**20:.0f} MiB")
    users = _users(kv, set(damaged)) if damaged else {}
    for sha, problem in damaged.items():
        named = users.get(sha, [])
        used_by = ", ".join(named[:_USERS_NAMED])
        if len(named) > _USERS_NAMED:
            used_by += f" and {len(named) - _USERS_NAMED} more"
        report.problems.append(f"blob {sha}: {problem}" + (f"; used by {used_by}" if named else ""))
    return report


def _check_references(
    kv: OrderedKV, expected: Counter[str], files: set[str], report: Report, fix: _Fixer
) -> None:
    recorded = {
        raw_key[len(ks.REF_PREFIX) :].decode(): decode_ref(raw)
        for raw_key, raw in scan_all(kv, ks.REF_PREFIX, ks.prefix_end(ks.REF_PREFIX))
    }
    for sha, count in sorted(expected.items()):
        ref = recorded.get(sha, RefRecord())
        if ref.refs != count:
            report.problems.append(f"blob {sha}: {count} references, counted {ref.refs}")
            fix.count(sha, ref, count)
        if sha not in files:
            report.problems.append(f"blob {sha}: referenced but missing")
    for sha, ref in sorted(recorded.items()):
        if ref.refs and sha not in expected:
            report.problems.append(f"blob {sha}: counted {ref.refs} references, has none")
            fix.count(sha, ref, 0)
    fix.commit_counts()  # before any file goes: an interrupted repair never loses a blob


def _check_leftovers(blobs: BlobStore, known: set[str], report: Report, fix: _Fixer) -> None:
    """Staged files, and block checksums of no blob (or half-replaced ones). Checksums whose
    blob awaits collection are not strays: a crash between publishing the checksums and the
    blob, or between removing the two, leaves them, and the collector removes them."""
    for entry in sorted(blobs.tmp_root.iterdir()):
        report.problems.append(f"staged file {entry.name} left in tmp/")
        fix.remove_file(entry, f"staged file {entry.name}")
    for shard in blobs.shard_dirs(blobs.crc_root):
        for name in blobs.shard_files(shard):
            if not name.endswith(CRC_SUFFIX) or name.removesuffix(CRC_SUFFIX) not in known:
                report.problems.append(f"block checksums {name}: no such blob")
                fix.remove_file(shard / name, f"stray block checksums {name}")


def _check_blob(
    blobs: BlobStore, sha: str, *, verify_content: bool, repair: bool
) -> BlobVerdict | None:
    """The blob's verdict, or None when a quick look found nothing wrong. Without
    ``verify_content`` only the checksums' presence and shape are looked at; the bytes are
    read when they must be checked before their checksums are rebuilt."""
    if not verify_content:
        try:
            size = os.stat(blobs.path(sha)).st_size
            crc_fd = blobs.open_sidecar(sha, size)
        except SidecarError as exc:
            quick = BlobVerdict(
                sha256_hex=sha,
                size=size,
                hashes_to_name=True,
                checksums=Checksums.DAMAGED,
                detail=str(exc),
            )
        else:
            if crc_fd is not None:
                os.close(crc_fd)
                return None
            quick = BlobVerdict(
                sha256_hex=sha, size=size, hashes_to_name=True, checksums=Checksums.MISSING
            )
        if not repair:
            return quick
    check = BlobCheck(blobs, sha, keep_crcs=repair)
    try:
        return check.run()
    finally:
        check.close()


def _users(kv: OrderedKV, shas: set[str]) -> dict[str, list[str]]:
    """Which objects and multipart parts use each of ``shas`` (to name damaged ones)."""
    users: dict[str, list[str]] = {}
    for head in stored_versions(kv):
        for sha in {s.sha256_hex for s in head.segments} & shas:
            version = "" if head.version_id == NULL_VERSION else f" version {head.version_id}"
            users.setdefault(sha, []).append(f"object {head.bucket}/{head.key}{version}")
    for raw_key, raw in scan_all(kv, ks.PART_PREFIX, ks.prefix_end(ks.PART_PREFIX)):
        sha = decode_part(raw).sha256_hex
        if sha in shas:
            upload, _, number = raw_key[len(ks.PART_PREFIX) :].decode().partition("/")
            users.setdefault(sha, []).append(f"upload {upload} part {int(number)}")
    return users


class _Fixer:
    """The repairs, each recorded in the report; does nothing unless enabled."""

    def __init__(self, kv: OrderedKV, blobs: BlobStore, report: Report, *, enabled: bool) -> None:
        self.kv = kv
        self.blobs = blobs
        self.report = report
        self.enabled = enabled
        self._counts = Batch()
        self._count_notes: list[str] = []

    def count(self, sha: str, ref: RefRecord, refs: int) -> None:
        if self.enabled:
            record = RefRecord(refs=refs, generation=ref.generation, collecting=ref.collecting)
            self._counts.put(ks.ref_key(sha), encode_ref(record))
            if refs:  # a stale collection entry would only be dropped by the collector
                self._counts.delete(ks.garbage_key(sha))
            self._count_notes.append(f"blob {sha}: reference count set to {refs}")

    def commit_counts(self) -> None:
        if self._count_notes:
            self.kv.commit(self._counts)
            self.report.repaired += self._count_notes

    def remove_blob(self, sha: str) -> None:
        if self.enabled:
            self.blobs.remove(sha)
            self.report.repaired.append(f"blob {sha}: orphaned file removed")

    def remove_file(self, path: os.PathLike[str], what: str) -> None:
        if self.enabled:
            os.unlink(path)
            self.report.repaired.append(f"{what} removed")

    def rebuild_checksums(self, verdict: BlobVerdict) -> None:
        if self.enabled and verdict.hashes_to_name and verdict.checksums is not Checksums.OK:
            self.blobs.write_sidecar(verdict.sha256_hex, verdict.size, verdict.computed)
            self.report.repaired.append(f"blob {verdict.sha256_hex}: block checksums rebuilt")
