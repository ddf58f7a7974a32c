"""One large object up then down, single stream: our S3 door, our gRPC door, and moto.

Each round every system PUTs a fresh object (no block shared with any other upload, so nothing
deduplicates) and GETs it back while the page cache still holds it; the GET's CRC32C must match
what was sent. The largest size is also read from a second daemon with ``verify_reads`` off, in
the same rotation, which prices the per-block CRC check on reads.
``python -m bench --only large [--quick]`` (quick: 256 MiB only, 2 rounds).
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from awscrt import checksums

from bench.common import (
    ASYNCIO,
    GRPC,
    MIB,
    MOTO,
    OURS,
    Payload,
    Peer,
    create_bucket,
    daemon,
    delete_object,
    figure,
    get_crc32c,
    measured,
    moto,
    put_stream,
    rotated,
    rounds,
)
from bench.report import Figure, Report
from lightningstor.client import Client
from tests.daemon import Daemon

BUCKET = "bench-large"
SIZES = {"256 MiB": 256 * MIB, "1 GiB": 1024 * MIB}


@dataclass
class Door:
    """One way to store and fetch objects, and the figures it reports under."""

    system: str
    peer: Peer
    put: Callable[[str, Payload], object]
    get: Callable[[str], tuple[int, int]]  # (bytes, CRC32C)
    delete: Callable[[str], object]
    get_suffix: str = ""  # " verify off" for the unverifying daemon
    reports_put: bool = True
    close: Callable[[], object] = field(default=lambda: None)


def s3_door(
    system: str, peer: Peer, bucket: str = BUCKET, get_suffix: str = "", *, reports_put: bool = True
) -> Door:
    def put(key: str, payload: Payload) -> object:
        return put_stream(peer, f"/{bucket}/{key}", payload.size, payload.blocks())

    return Door(
        system,
        peer,
        put,
        lambda key: get_crc32c(peer, f"/{bucket}/{key}"),
        lambda key: delete_object(peer, f"/{bucket}/{key}"),
        get_suffix,
        reports_put,
    )


def grpc_door(runner: asyncio.Runner, peer: Daemon, bucket: str = BUCKET) -> Door:
    """Our gRPC client, kept in one event loop so each call reuses one channel."""

    async def connect() -> Client:
        return Client(
            peer.grpc_target, access_key_id=peer.access_key, secret_access_key=peer.secret_key
        )

    client = runner.run(connect())

    async def blocks(payload: Payload) -> AsyncIterator[bytes]:
        for block in payload.blocks():
            yield block

    async def get(key: str) -> tuple[int, int]:
        total = crc = 0
        async for chunk in client.iter_object(bucket, key):
            crc = checksums.crc32c(chunk, crc)
            total += len(chunk)
        return total, crc

    return Door(
        GRPC,
        peer,
        lambda key, payload: runner.run(client.put_object(bucket, key, blocks(payload))),
        lambda key: runner.run(get(key)),
        lambda key: runner.run(client.delete_object(bucket, key)),
        close=lambda: runner.run(client.close()),
    )


def round_trip(report: Report, label: str, door: Door, payload: Payload) -> None:
    """PUT then GET ``payload`` through ``door``: one sample for each figure."""
    mib = payload.size / MIB
    key = f"object-{payload.salt}"
    put_work = f"{label} PUT"
    # The verify-off daemon's PUT repeats lightningstor-s3's: measured, but not reported.
    put_figure = (
        figure(report, put_work, door.system, "MiB/s")
        if door.reports_put
        else Figure(put_work, door.system, "MiB/s")
    )
    seconds, _ = measured(put_figure, door.peer, lambda: door.put(key, payload))
    put_figure.samples.append(mib / seconds)
    get_figure = figure(report, f"{label} GET{door.get_suffix}", door.system, "MiB/s")
    seconds, (size, crc) = measured(get_figure, door.peer, lambda: door.get(key))
    if (size, crc) != (payload.size, payload.crc32c):
        raise RuntimeError(f"{door.system}: {label} GET returned other bytes than were PUT")
    get_figure.samples.append(mib / seconds)
    door.delete(key)  # keeps disk and moto's memory bounded across rounds


def run(report: Report, *, quick: bool) -> None:
    sizes = {"256 MiB": SIZES["256 MiB"]} if quick else SIZES
    verify_label = list(sizes)[-1]
    salts = itertools.count(1)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack, asyncio.Runner() as runner:
        ours = daemon(stack, Path(tmp))
        unverified = daemon(stack, Path(tmp), "unverified", LIGHTNINGSTOR_VERIFY_READS="false")
        peer_moto = moto(stack, Path(tmp))
        on_asyncio = daemon(stack, Path(tmp), "asyncio", LIGHTNINGSTOR_EVENT_LOOP="asyncio")
        doors = [
            s3_door(OURS, ours),
            grpc_door(runner, ours),
            s3_door(MOTO, peer_moto),  # doors[2]: always last in a round (see rotated)
            s3_door(ASYNCIO, on_asyncio),
        ]
        verify_off = s3_door(OURS, unverified, get_suffix=" verify off", reports_put=False)
        for door in [*doors, verify_off]:
            create_bucket(door.peer, BUCKET)
        for round_ in range(rounds(quick)):
            for label, size in sizes.items():
                extra = [verify_off] if label == verify_label else []
                for door in rotated([*doors, *extra], round_, last=doors[2]):
                    round_trip(report, label, door, Payload(size, next(salts)))
        for door in doors:
            door.close()
    get = f"{verify_label} GET"
    report.ratio(f"{get}: verify on / off", (get, OURS), (f"{get} verify off", OURS))


@dataclass
class Result:
    mib: int
    idle_rss_mib: float
    peak_rss_mib: float
    upload_mib_s: float
    download_mib_s: float

    @property
    def growth_mib(self) -> float:
        return self.peak_rss_mib - self.idle_rss_mib


def measure(daemon: Daemon, mib: int, door: str = "s3") -> Result:
    """Upload then download ``mib`` MiB through ``door`` ("s3" or "grpc"), sampling the
    daemon's RSS: tests/e2e/test_memory.py bounds its growth with this."""
    bucket = f"bench-large-{door}"
    create_bucket(daemon, bucket)
    payload = Payload(mib * MIB, salt=0)
    memory = Figure(f"{mib} MiB {door}", OURS, "MiB/s")
    with asyncio.Runner() as runner:
        way = s3_door(OURS, daemon, bucket) if door == "s3" else grpc_door(runner, daemon, bucket)
        up, _ = measured(memory, daemon, lambda: way.put("object", payload))
        down, received = measured(memory, daemon, lambda: way.get("object"))
        way.close()
    if received != (payload.size, payload.crc32c):
        raise RuntimeError("downloaded bytes differ from uploaded bytes")
    assert memory.idle_rss_mib is not None and memory.peak_rss_mib is not None
    return Result(mib, memory.idle_rss_mib, memory.peak_rss_mib, mib / up, mib / down)
