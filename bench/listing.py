"""ListObjectsV2's first page over 100,000 keys (1,000 "folders" of 100): flat, and with
delimiter "/" (the page is then the 1,000 CommonPrefixes). Our daemon and moto, alternated.
And ListObjectVersions' first page over 100,000 versions (1,000 keys of 100 versions each) in
a versioned bucket: ours only, against the issue's 100 ms budget (filling moto with 100,000
versions through its API would take minutes of the bench for a figure no goal asks for).

Our keys are filled straight into the keyspace of a stopped store (one shared blob, with its
reference count set to match, so the store stays consistent); moto's through its S3 API, empty
PUTs from several threads on kept-alive connections. Then both answer the same signed listings.
``python -m bench --only listing [--quick]`` (quick: 100 folders, 10,000 keys).
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from pathlib import Path

from bench.common import (
    LIMIT,
    MOTO,
    OURS,
    Peer,
    call,
    connect,
    create_bucket,
    daemon,
    figure,
    measured,
    moto,
    rounds,
)
from bench.report import Report
from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import Batch
from lightningstor.meta.records import RefRecord, encode_object, encode_ref
from lightningstor.model import VERSIONING_ENABLED, ObjectHead, Owner
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader

BUCKET = "bench-list"
VERSIONED = "bench-versions"
VERSIONS_PER_KEY = 100
VERSIONS_BUDGET_MS = 100.0
PER_FOLDER = 100
PAGE = 1000  # ListObjectsV2's default max-keys
FILL_THREADS = 8


def keys(folders: int) -> list[str]:
    return [f"folder-{f:04d}/object-{i:05d}" for f in range(folders) for i in range(PER_FOLDER)]


async def _seed(store: ObjectStore) -> ObjectHead:
    async def one() -> AsyncIterator[bytes]:
        yield b"listing benchmark object"

    await store.create_bucket(BUCKET, owner=Owner("bench"))
    await store.create_bucket(VERSIONED, owner=Owner("bench"))
    await store.set_versioning(VERSIONED, VERSIONING_ENABLED)
    return await store.put_object(BUCKET, "seed", one())


def _versions(seed: ObjectHead, batch: Batch, key: str, newest_ns: int) -> None:
    """``key``'s 100 versions: the newest in ``o/``, the others in ``v/``, newest first."""
    for age in range(VERSIONS_PER_KEY):
        sort = ks.version_sort(newest_ns - age, f"{age:016x}")
        head = dataclasses.replace(
            seed, bucket=VERSIONED, key=key, version_id=sort, version_sort=sort
        )
        at = ks.object_key(VERSIONED, key) if age == 0 else ks.version_key(VERSIONED, key, sort)
        batch.put(at, encode_object(head))


def fill_keyspace(data_dir: Path, folders: int) -> int:
    """Our ``folders`` x 100 keys, written into a stopped store's keyspace in one batch each."""
    offloader = Offloader(workers=2)
    store = ObjectStore.open(data_dir, offloader=offloader)
    seed = asyncio.run(_seed(store))
    names = keys(folders)
    for start in range(0, len(names), PER_FOLDER):
        batch = Batch()
        for key in names[start : start + PER_FOLDER]:
            batch.put(ks.object_key(BUCKET, key), encode_object(dataclasses.replace(seed, key=key)))
        store.kv.commit(batch)
    versioned_keys = len(names) // VERSIONS_PER_KEY
    now = time.time_ns()
    for n in range(versioned_keys):
        batch = Batch()
        _versions(seed, batch, f"doc-{n:05d}", now)
        store.kv.commit(batch)
    # Every key and version shares the seed's blob, if it has one (a small body may live in
    # the record itself): its reference count says so.
    refs = Batch()
    total = len(names) + versioned_keys * VERSIONS_PER_KEY + 1
    for segment in seed.segments:
        refs.put(ks.ref_key(segment.sha256_hex), encode_ref(RefRecord(refs=total)))
    store.kv.commit(refs)
    store.close()
    offloader.shutdown()
    return len(names)


def fill_over_s3(peer: Peer, folders: int) -> int:
    """moto's keys, as empty signed PUTs from several threads, each on one kept-alive connection."""
    create_bucket(peer, BUCKET)
    names = keys(folders)

    def put_all(share: list[str]) -> None:
        conn = connect(peer)
        for key in share:
            call(conn, peer, "PUT", f"/{BUCKET}/{key}")
        conn.close()

    with ThreadPoolExecutor(FILL_THREADS) as pool:
        list(pool.map(put_all, [names[i::FILL_THREADS] for i in range(FILL_THREADS)]))
    return len(names)


def first_page(peer: Peer, query: str, bucket: str = BUCKET) -> bytes:
    conn = connect(peer)
    body = call(conn, peer, "GET", f"/{bucket}?{query}")
    conn.close()
    return body


def run(report: Report, *, quick: bool) -> None:
    folders = 100 if quick else 1000
    label = f"{folders * PER_FOLDER // 1000}k"
    listings = {
        # workload: (query, what the page must hold)
        f"list {label} flat page": ("list-type=2", (b"<Contents>", PAGE)),
        f"list {label} delimiter page": (
            "list-type=2&delimiter=%2F",
            (b"<CommonPrefixes>", min(folders, PAGE)),
        ),
    }
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        begin = time.perf_counter()
        count = fill_keyspace(work / "data", folders)
        print(f"{OURS}: filled {count:,} keys in {time.perf_counter() - begin:.1f} s (keyspace)")
        peers: dict[str, Peer] = {OURS: daemon(stack, work), MOTO: moto(stack, work)}
        begin = time.perf_counter()
        count = fill_over_s3(peers[MOTO], folders)
        seconds = time.perf_counter() - begin
        print(f"{MOTO}: filled {count:,} keys in {seconds:.1f} s ({count / seconds:,.0f} PUT/s)")
        for _ in range(rounds(quick)):
            for workload, (query, (element, expected)) in listings.items():
                for system, peer in peers.items():
                    fig = figure(report, workload, system, "ms")
                    seconds, body = measured(fig, peer, partial(first_page, peer, query))
                    if body.count(element) != expected:
                        raise RuntimeError(f"{system} {workload}: not {expected} {element!r}")
                    fig.samples.append(seconds * 1000)
            _versions_page(report, peers[OURS], label)
    budget = figure(report, f"list {label} versions page", LIMIT, "ms")
    budget.samples.append(VERSIONS_BUDGET_MS)


def _versions_page(report: Report, peer: Peer, label: str) -> None:
    fig = figure(report, f"list {label} versions page", OURS, "ms")
    seconds, body = measured(fig, peer, partial(first_page, peer, "versions", VERSIONED))
    if body.count(b"<Version>") != PAGE:
        raise RuntimeError(f"{OURS} versions page: not {PAGE} <Version> entries")
    fig.samples.append(seconds * 1000)
