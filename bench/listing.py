"""ListObjectsV2 over 100,000 keys: flat, and in 1,000 "folders" with delimiter "/".

The keys are filled straight into the keyspace of a stopped store (one shared blob, with its
reference count set to match, so the store stays consistent), then a real daemon answers the
listings over signed HTTP. ``python -m bench.listing [--folders N --per-folder M]``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import http.client
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from lightningstor import keyspace as ks
from lightningstor.kv import Batch
from lightningstor.model import ObjectHead
from lightningstor.offload import Offloader
from lightningstor.records import RefRecord, encode_object, encode_ref
from lightningstor.store import ObjectStore
from tests.daemon import Daemon
from tests.signing import sign

BUCKET = "bench-list"


async def _seed(store: ObjectStore) -> ObjectHead:
    async def one() -> AsyncIterator[bytes]:
        yield b"listing benchmark object"

    await store.create_bucket(BUCKET, owner="bench")
    return await store.put_object(BUCKET, "seed", one())


def fill(data_dir: Path, folders: int, per_folder: int) -> int:
    offloader = Offloader(workers=2)
    store = ObjectStore.open(data_dir, offloader=offloader)
    seed = asyncio.run(_seed(store))
    total = 0
    for folder in range(folders):
        batch = Batch()
        for i in range(per_folder):
            key = f"folder-{folder:04d}/object-{i:05d}"
            batch.put(ks.object_key(BUCKET, key), encode_object(dataclasses.replace(seed, key=key)))
            total += 1
        store.kv.commit(batch)
    # Every key shares the seed's blob: its reference count says so.
    refs = Batch()
    refs.put(ks.ref_key(seed.segments[0].sha256_hex), encode_ref(RefRecord(refs=total + 1)))
    store.kv.commit(refs)
    store.close()
    offloader.shutdown()
    return total


def timed_list(daemon: Daemon, query: str, rounds: int) -> tuple[float, float, float, bytes]:
    path = f"/{BUCKET}?{query}"
    times = []
    body = b""
    conn = http.client.HTTPConnection("127.0.0.1", daemon.s3_port, timeout=60)
    for _ in range(rounds):
        started = time.perf_counter()
        conn.request("GET", path, headers=sign("GET", f"{daemon.endpoint}{path}"))
        response = conn.getresponse()
        body = response.read()
        times.append(time.perf_counter() - started)
        assert response.status == 200, body[:300]
    conn.close()
    return statistics.median(times), min(times), max(times), body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folders", type=int, default=1000)
    parser.add_argument("--per-folder", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        started = time.perf_counter()
        total = fill(data, args.folders, args.per_folder)
        print(f"filled {total} keys in {time.perf_counter() - started:.1f} s")
        daemon = Daemon(data).start()
        try:
            for name, query in (
                ("delimiter '/' (1000 CommonPrefixes)", "list-type=2&delimiter=%2F"),
                ("flat first page (1000 keys)", "list-type=2"),
            ):
                median, low, high, body = timed_list(daemon, query, args.rounds)
                prefixes = body.count(b"<CommonPrefixes>")
                keys = body.count(b"<Contents>")
                print(
                    f"{name:40s} median {median * 1000:7.1f} ms (min {low * 1000:.1f}, "
                    f"max {high * 1000:.1f}); {prefixes} prefixes, {keys} keys"
                )
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
