"""Offline consistency check of a store: references, blob files and staging leftovers.

What a healthy store satisfies, and what this reports when it does not:
- every blob referenced by an object or a part exists as a file;
- each reference record counts exactly the objects and parts that reference its blob;
- every blob file is referenced, or waits for collection (count zero, garbage entry present);
- no staged file is left in ``tmp/`` (the daemon removes them at start-up);
- with ``verify_content``, every blob's bytes hash to its name.

Run it on a store no daemon has open (LevelDB allows one process).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lightningstor import keyspace as ks
from lightningstor.blobs import BlobStore
from lightningstor.kv import OrderedKV, scan_all
from lightningstor.records import decode_object, decode_part, decode_ref

HASH_CHUNK_BYTES = 1024 * 1024


@dataclass(slots=True)
class Report:
    objects: int = 0
    parts: int = 0
    blobs: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


def expected_references(kv: OrderedKV) -> tuple[Counter[str], int, int]:
    """How many objects and parts reference each blob, and how many of each there are."""
    counts: Counter[str] = Counter()
    objects = parts = 0
    for raw_key, raw in scan_all(kv, ks.OBJECT_PREFIX, ks.prefix_end(ks.OBJECT_PREFIX)):
        bucket, _, key = raw_key[len(ks.OBJECT_PREFIX) :].partition(b"\x00")
        head = decode_object(bucket.decode(), key.decode(), raw)
        counts.update(s.sha256_hex for s in head.segments)
        objects += 1
    for _raw_key, raw in scan_all(kv, ks.PART_PREFIX, ks.prefix_end(ks.PART_PREFIX)):
        counts[decode_part(raw).sha256_hex] += 1
        parts += 1
    return counts, objects, parts


def check_store(kv: OrderedKV, blobs: BlobStore, *, verify_content: bool = False) -> Report:
    expected, objects, parts = expected_references(kv)
    report = Report(objects=objects, parts=parts)
    recorded: dict[str, int] = {}
    for raw_key, raw in scan_all(kv, ks.REF_PREFIX, ks.prefix_end(ks.REF_PREFIX)):
        recorded[raw_key[len(ks.REF_PREFIX) :].decode()] = decode_ref(raw).refs
    garbage = {
        ks.sha_from_garbage_key(k)
        for k, _ in scan_all(kv, ks.GARBAGE_PREFIX, ks.prefix_end(ks.GARBAGE_PREFIX))
    }
    files = {p.name: p for p in blobs.blob_root.rglob("*") if p.is_file()}
    report.blobs = len(files)
    for sha, count in sorted(expected.items()):
        if recorded.get(sha, 0) != count:
            report.problems.append(
                f"blob {sha}: {count} references, counted {recorded.get(sha, 0)}"
            )
        if sha not in files:
            report.problems.append(f"blob {sha}: referenced but missing")
    for sha, count in sorted(recorded.items()):
        if count and sha not in expected:
            report.problems.append(f"blob {sha}: counted {count} references, has none")
    for sha in sorted(set(files) - set(expected) - garbage):
        report.problems.append(f"blob {sha}: orphaned file (unreferenced, not awaiting collection)")
    report.problems += [
        f"staged file {p.name} left in tmp/" for p in sorted(blobs.tmp_root.iterdir())
    ]
    if verify_content:
        report.problems += [
            f"blob {sha}: content does not hash to its name"
            for sha, path in sorted(files.items())
            if _sha256_of(path) != sha
        ]
    return report


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
