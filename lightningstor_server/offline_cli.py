"""``lightningstor stats`` and ``lightningstor gc``: commands on a store no daemon has open."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from lightningstor.kv_leveldb import LevelDBKV
from lightningstor.multipart import STALE_UPLOAD_SECONDS, MultipartUploads
from lightningstor.offload import Offloader
from lightningstor.stats import gather
from lightningstor.store import ObjectStore


def add_offline_parsers(sub: Any) -> None:
    stats = sub.add_parser(
        "stats",
        help="bucket and store figures of a stopped store (table, or --json)",
        description="Counts and sizes per bucket and for the store: logical bytes, bytes stored "
        "after dedup, disk free. The daemon's /metrics shows the same figures while it runs.",
    )
    stats.add_argument("--data-dir", type=Path, default=Path("./var/lightningstor"))
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    gc = sub.add_parser(
        "gc",
        help="collect unreferenced blobs and sweep abandoned uploads of a stopped store now",
        description="What the daemon does in the background, at once and without the delay.",
    )
    gc.add_argument("--data-dir", type=Path, default=Path("./var/lightningstor"))
    gc.add_argument(
        "--stale-upload-seconds",
        type=float,
        default=STALE_UPLOAD_SECONDS,
        help="abort multipart uploads older than this (default 7 days)",
    )


def _unavailable(command: str, data_dir: Path) -> int | None:
    if not (data_dir / "meta").is_dir():
        print(f"lightningstor {command}: no store in {data_dir}", file=sys.stderr)
        return 2
    return None


def run_stats(args: argparse.Namespace) -> int:
    if (code := _unavailable("stats", args.data_dir)) is not None:
        return code
    try:
        kv = LevelDBKV(args.data_dir / "meta")
    except OSError as exc:
        print(
            f"lightningstor stats: cannot open {args.data_dir} (is a daemon running?): {exc}",
            file=sys.stderr,
        )
        return 2
    try:
        stats = gather(kv, args.data_dir)
    finally:
        kv.close()
    if args.json:
        print(
            json.dumps(
                {
                    "buckets": stats.buckets,
                    "objects": stats.objects,
                    "logical_bytes": stats.logical_bytes,
                    "blobs": stats.blobs,
                    "stored_bytes": stats.stored_bytes,
                    "dedup_saved_bytes": max(0, stats.logical_bytes - stats.stored_bytes),
                    "disk_free_bytes": stats.disk_free_bytes,
                    "per_bucket": {
                        b: {"objects": n, "bytes": s} for b, (n, s) in stats.per_bucket.items()
                    },
                },
                indent=2,
            )
        )
        return 0
    print(f"{'BUCKET':40} {'OBJECTS':>10} {'BYTES':>16}")
    for bucket, (count, size) in sorted(stats.per_bucket.items()):
        print(f"{bucket:40} {count:>10} {size:>16}")
    saved = max(0, stats.logical_bytes - stats.stored_bytes)
    print(
        f"\n{stats.buckets} buckets, {stats.objects} objects, {stats.logical_bytes} bytes; "
        f"{stats.blobs} blobs storing {stats.stored_bytes} bytes (dedup saves {saved}); "
        f"{stats.disk_free_bytes} bytes free on disk"
    )
    return 0


def run_gc(args: argparse.Namespace) -> int:
    if (code := _unavailable("gc", args.data_dir)) is not None:
        return code
    offloader = Offloader(workers=4)
    try:
        store = ObjectStore.open(args.data_dir, offloader=offloader, gc_delay_seconds=0)
    except OSError as exc:
        print(
            f"lightningstor gc: cannot open {args.data_dir} (is a daemon running?): {exc}",
            file=sys.stderr,
        )
        offloader.shutdown()
        return 2

    async def collect() -> tuple[int, int]:
        swept = await MultipartUploads(store).sweep(older_than_seconds=args.stale_upload_seconds)
        return swept, await store.collect_garbage()

    try:
        swept, collected = asyncio.run(collect())
    finally:
        store.close()
        offloader.shutdown()
    print(f"swept {swept} abandoned uploads, collected {collected} unreferenced blobs")
    return 0
