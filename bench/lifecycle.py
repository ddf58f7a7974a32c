"""Does a lifecycle pass slow concurrent small GETs? 1 KiB GET c16 (wrk, as bench/smallops.py)
on one daemon, without a pass and while a pass expires a bucket of 100,000 objects.

The worst case the issue's goal is about: every object of the big bucket is due (a rule
``Days 1`` with a lifecycle "day" of 1 ms), so each one the pass examines is an action, one
metadata commit that deletes its record and releases its blob reference. The objects are filled
straight into the keyspace of the stopped store, as bench/listing.py does (every record shares
one 8 KiB blob, its reference count set to match); the GETs read 10,000 1 KiB objects of another
bucket, which has no lifecycle rules.

Each round runs four phases in a rotated order, each on a daemon started for it on the same
data directory, after the big bucket was filled back to its 100,000 objects and the worker's
place reset to "no pass under way" (the store stopped, untimed), so every phase starts from the
same store and a pass, when there is one, starts at the bucket's first key:

- no pass: GETs, the lifecycle worker off (interval 0);
- in pass: GETs, the worker on with the pacing the product ships (2,000 objects/s by default);
  the goal's phase: ``1 KiB GET c16 in pass`` / ``1 KiB GET c16 no pass`` must stay >= 0.8;
- in fast pass: GETs, pacing off (0 = unlimited), for information; no goal;
- pass alone: the worker on as in "in pass", no GETs: the pass's own rate, the yardstick for
  what the GETs cost the pass (a goal on the GETs alone is met by a pass that yields to them).

In a pass phase the window starts once the metrics endpoint shows the pass running and
expiring, and the endpoint is read again when it ends: objects expired over the window's length
is the pass's rate, a figure of its own; the pass must still be running then (a pass over
100,000 objects lasts over a minute, the window is 5 s). An unlimited pass that ends inside the
window is reported as such (its GET figure then covers part of the window without a pass).
``python -m bench --only lifecycle [--quick]`` (quick: 10,000 objects, 2 s windows, 2 rounds).
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench import listing, smallops
from bench.common import OURS, daemon, figure, rotated, rounds, sampler
from bench.report import Report
from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import Batch
from lightningstor.meta.lifecycle_record import decode_state, encode_state
from lightningstor.meta.records import decode_object, decode_ref, encode_object, encode_ref
from lightningstor.model import LifecycleRule, Owner
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from tests.daemon import Daemon

BIG = "bench-lifecycle"  # the bucket a pass expires
SMALL = smallops.BUCKET  # the bucket the GETs read (smallops' presigned paths name it)
BLOB_SEED = "blob-seed"  # in SMALL, which has no rules: holds the shared blob's last reference
GET_KEYS = 10_000
BLOB_BYTES = 8192  # over inline_max_bytes: the big bucket's records reference a blob
C = 16
RULE = LifecycleRule(id="expire-everything", enabled=True, expiration_days=1)
LIFECYCLE_ENV = {
    "LIGHTNINGSTOR_LIFECYCLE_DAY_SECONDS": "0.001",  # everything a day old is due at once
    "LIGHTNINGSTOR_LIFECYCLE_INTERVAL_SECONDS": "3600",  # one pass, from the daemon's start
}


@dataclass(frozen=True)
class Phase:
    gets: str | None  # the GET figure's workload (None: no GETs, the pass alone)
    expiry: str | None  # the pass's rate figure's workload (None: no pass)
    env: dict[str, str]


PHASES = {
    "no pass": Phase(
        "1 KiB GET c16 no pass",
        None,
        {**LIFECYCLE_ENV, "LIGHTNINGSTOR_LIFECYCLE_INTERVAL_SECONDS": "0"},
    ),
    "in pass": Phase("1 KiB GET c16 in pass", "expired/s in pass", LIFECYCLE_ENV),
    "in fast pass": Phase(
        "1 KiB GET c16 in fast pass",
        "expired/s in fast pass",
        {**LIFECYCLE_ENV, "LIGHTNINGSTOR_LIFECYCLE_OBJECTS_PER_SECOND": "0"},
    ),
    "pass alone": Phase(None, "expired/s, no GETs", LIFECYCLE_ENV),
}
START_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Plan:
    folders: int  # the big bucket holds folders x 100 objects
    seconds: int  # one wrk window
    rounds: int

    @property
    def objects(self) -> int:
        return self.folders * listing.PER_FOLDER


# --- the store, filled while stopped -------------------------------------------------------------
def _open(data_dir: Path) -> tuple[ObjectStore, Offloader]:
    offloader = Offloader(workers=2)
    return ObjectStore.open(data_dir, offloader=offloader), offloader


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _create(store: ObjectStore) -> None:
    await store.create_bucket(BIG, owner=Owner("bench"))
    await store.create_bucket(SMALL, owner=Owner("bench"))
    await store.set_lifecycle(BIG, [RULE])
    await store.put_object(SMALL, BLOB_SEED, _body(b"b" * BLOB_BYTES))
    small = await store.put_object(SMALL, "template", _body(smallops.BODY))
    assert small.inline is not None and not small.segments, "1 KiB bodies live in their record"
    for start in range(0, GET_KEYS, 1000):
        batch = Batch()
        for i in range(start, min(start + 1000, GET_KEYS)):
            key = _get_key(i)
            batch.put(ks.object_key(SMALL, key), encode_object(dataclasses.replace(small, key=key)))
        store.kv.commit(batch)


def _get_key(i: int) -> str:
    return f"get-{i:06d}"


def create(data_dir: Path) -> None:
    """The two buckets, the big one's rule, the GETs' objects and the blob the big one shares."""
    store, offloader = _open(data_dir)
    try:
        asyncio.run(_create(store))
    finally:
        store.close()
        offloader.shutdown()


def refill(data_dir: Path, folders: int) -> None:
    """The big bucket back to ``folders`` x 100 objects, all sharing the seed's blob (its count
    set to match), and the worker's place reset to "no pass under way" (its totals kept)."""
    store, offloader = _open(data_dir)
    try:
        raw = store.kv.get(ks.object_key(SMALL, BLOB_SEED))
        assert raw is not None
        seed = dataclasses.replace(decode_object(SMALL, BLOB_SEED, raw), bucket=BIG)
        (segment,) = seed.segments
        names = listing.keys(folders)
        for start in range(0, len(names), listing.PER_FOLDER):
            batch = Batch()
            for key in names[start : start + listing.PER_FOLDER]:
                head = dataclasses.replace(seed, key=key)
                batch.put(ks.object_key(BIG, key), encode_object(head))
            store.kv.commit(batch)
        batch = Batch()
        ref_key = ks.ref_key(segment.sha256_hex)
        ref = dataclasses.replace(decode_ref(store.kv.get(ref_key)), refs=len(names) + 1)
        batch.put(ref_key, encode_ref(ref))
        state = decode_state(store.kv.get(ks.LIFECYCLE_KEY))
        idle = dataclasses.replace(state, pass_started_ns=0, bucket="", phase="objects", after="")
        batch.put(ks.LIFECYCLE_KEY, encode_state(idle))
        store.kv.commit(batch)
    finally:
        store.close()
        offloader.shutdown()


# --- the running daemon ----------------------------------------------------------------------
def lifecycle_metrics(peer: Daemon) -> dict[str, float]:
    """The ``lightningstor_lifecycle_*`` values of the metrics endpoint, by name."""
    url = f"http://127.0.0.1:{peer.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("lightningstor_lifecycle_"):
            name, _, value = line.partition(" ")
            values[name] = float(value)
    return values


def expired(values: dict[str, float]) -> float:
    return values["lightningstor_lifecycle_expired_objects_total"]


def running(values: dict[str, float]) -> bool:
    return values["lightningstor_lifecycle_pass_running"] == 1


def wait_for_pass(peer: Daemon, before: float | None) -> dict[str, float]:
    """The metrics once the pass runs and has expired something (``before``: the expired total
    the store had when the daemon started; None: no pass wanted, the endpoint only answering)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            values = lifecycle_metrics(peer)
        except OSError:
            values = {}
        if values and (before is None or (running(values) and expired(values) > before)):
            return values
        if time.monotonic() > deadline:
            raise RuntimeError(f"no lifecycle pass under way after {START_TIMEOUT_SECONDS} s")
        time.sleep(0.05)


def measure(report: Report, work: Path, plan: Plan, name: str, expired_total: float) -> float:
    """One phase on a daemon started for it; the store's expired total when it stopped."""
    phase = PHASES[name]
    notes = []
    with ExitStack() as stack:
        peer = daemon(stack, work, **phase.env)
        paths = smallops.presigned_paths(peer, "GET", [_get_key(i) for i in range(GET_KEYS)])
        before = wait_for_pass(peer, None if phase.expiry is None else expired_total)
        begin = time.perf_counter()
        if phase.gets is None:
            time.sleep(plan.seconds)
        else:
            with sampler(peer) as rss:
                outcome = smallops.replay(peer, "GET", paths, C, plan.seconds, work)
            smallops.record(report, phase.gets, OURS, outcome, rss)
            notes.append(f"{outcome.requests / outcome.seconds:,.0f} GET/s")
        after = lifecycle_metrics(peer)
        seconds = time.perf_counter() - begin
    if phase.expiry is not None:
        rate = (expired(after) - expired(before)) / seconds
        figure(report, phase.expiry, OURS, "obj/s").samples.append(rate)
        notes.append(f"the pass expired {rate:,.0f} objects/s")
        if not running(after):
            message = f"the pass ended before the {plan.seconds} s window did"
            if name in ("in pass", "pass alone"):  # sized to cover the window: a harness bug
                raise RuntimeError(f"{name}: {message}")
            notes.append(f"{message}: GETs partly without a pass")
    print(f"{name}: {', '.join(notes)}", flush=True)
    return expired(after)


def run(report: Report, *, quick: bool) -> None:
    plan = Plan(100, 2, rounds(quick)) if quick else Plan(1000, 5, rounds(quick))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        create(data_dir)
        expired_total = 0.0
        for round_ in range(plan.rounds):
            for phase in rotated(list(PHASES), round_):
                begin = time.perf_counter()
                refill(data_dir, plan.folders)
                print(
                    f"{plan.objects:,} objects due, filled in {time.perf_counter() - begin:.1f} s",
                    flush=True,
                )
                expired_total = measure(report, work, plan, phase, expired_total)
