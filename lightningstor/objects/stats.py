"""Store-wide figures for operators: counts and bytes, logical and stored (after dedup)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import OrderedKV, scan_all
from lightningstor.meta.records import decode_ref, stored_versions


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreStats:
    buckets: int
    objects: int
    logical_bytes: int  # sum of object sizes
    blobs: int
    stored_bytes: int  # sum of distinct referenced blob sizes
    disk_free_bytes: int
    per_bucket: dict[str, tuple[int, int]]  # bucket -> (objects, logical bytes)


def gather(kv: OrderedKV, data_dir: Path) -> StoreStats:
    """One pass over buckets, objects and references (blocking: run it on the pool)."""
    per_bucket: dict[str, tuple[int, int]] = {
        ks.bucket_from_key(k): (0, 0)
        for k, _ in scan_all(kv, ks.BUCKET_PREFIX, ks.prefix_end(ks.BUCKET_PREFIX))
    }
    blob_sizes: dict[str, int] = {}
    inline_bytes = 0
    for head in stored_versions(kv):  # every version's bytes count: they are all kept
        if head.delete_marker:
            continue
        count, size = per_bucket.get(head.bucket, (0, 0))
        per_bucket[head.bucket] = (count + 1, size + head.size)
        for segment in head.segments:
            blob_sizes[segment.sha256_hex] = segment.size
        inline_bytes += len(head.inline or b"")
    live = {
        k[len(ks.REF_PREFIX) :].decode()
        for k, v in scan_all(kv, ks.REF_PREFIX, ks.prefix_end(ks.REF_PREFIX))
        if decode_ref(v).refs > 0
    }
    return StoreStats(
        buckets=len(per_bucket),
        objects=sum(c for c, _ in per_bucket.values()),
        logical_bytes=sum(s for _, s in per_bucket.values()),
        blobs=len(live),
        stored_bytes=inline_bytes + sum(size for sha, size in blob_sizes.items() if sha in live),
        disk_free_bytes=shutil.disk_usage(data_dir).free,
        per_bucket=per_bucket,
    )
