"""1 KiB PUT, GET, HEAD and DELETE ops/s at concurrency 1, 16 and 64.

S3: wrk (C, epoll; Debian package ``wrk``) replays pre-signed requests, one distinct key per
request, against our daemon and moto's server mode alternately, so the client is not what is
measured. wrk cannot do HEAD (it waits for a body that never comes), so HEAD goes through
``bench/loadgen.py``, a raw-protocol Python client. gRPC: the shipped async ``Client``, ``c``
calls in flight on one channel; a Python client, so that figure is bounded by the client as
much as by the daemon. ``python -m bench --only smallops [--quick]``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bench.common import (
    ASYNCIO,
    GRPC,
    MOTO,
    OURS,
    Peer,
    create_bucket,
    daemon,
    figure,
    moto,
    note_rss,
    rotated,
    sampler,
)
from bench.peers import RssSampler, S3Peer
from bench.report import Report
from lightningstor.client import Client
from tests.daemon import REGION, Daemon

BUCKET = "bench-small"
OPS = ("PUT", "GET", "HEAD", "DELETE")
CONCURRENCY = (1, 16, 64)
BODY = b"x" * 1024
SCRIPT = Path(__file__).with_name("replay.lua")
# Enough distinct keys for the fastest PUT rate a run could reach (beyond, keys repeat).
KEYS_PER_SECOND = 6000


@dataclass(frozen=True)
class Plan:
    seconds: int
    rounds: int

    @property
    def keys(self) -> int:
        return self.seconds * KEYS_PER_SECOND


@dataclass(frozen=True)
class Outcome:
    requests: int
    seconds: float
    errors: int


def presigned_paths(peer: S3Peer, method: str, keys: list[str]) -> list[str]:
    """Path and query of a pre-signed ``method`` request per key (valid for an hour)."""
    signer = S3SigV4QueryAuth(
        Credentials(peer.access_key, peer.secret_key), "s3", REGION, expires=3600
    )
    paths = []
    for key in keys:
        request = AWSRequest(method=method, url=f"{peer.endpoint}/{BUCKET}/{key}")
        signer.add_auth(request)
        url: str = request.url
        paths.append(url[len(peer.endpoint) :])
    return paths


def replay(
    peer: S3Peer, method: str, paths: list[str], c: int, seconds: int, work: Path
) -> Outcome:
    listing = work / f"{method}-{c}.paths"
    listing.write_text("\n".join(paths) + "\n")
    if method == "HEAD":
        address = urlsplit(peer.endpoint)
        command = [sys.executable, "-m", "bench.loadgen", str(address.hostname),
                   str(address.port), str(listing), method, str(c), str(seconds)]  # fmt: skip
    else:
        wrk = shutil.which("wrk")
        if wrk is None:
            raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
        command = [wrk, "-t1", f"-c{c}", f"-d{seconds}s", "--timeout", "10s", "-s",
                   str(SCRIPT), peer.endpoint, "--", str(listing), method]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return Outcome(
        requests=result["requests"],
        seconds=result["duration_us"] / 1e6,
        errors=result["status_errors"] + result["socket_errors"],
    )


def record(report: Report, workload: str, system: str, outcome: Outcome, rss: RssSampler) -> None:
    fig = figure(report, workload, system, "ops/s")
    fig.samples.append(outcome.requests / outcome.seconds)
    fig.errors += outcome.errors
    note_rss(fig, rss)


def measure_s3(report: Report, peers: dict[str, Peer], plan: Plan, work: Path) -> None:
    for round_ in range(plan.rounds):
        for c in CONCURRENCY:
            keys = [f"r{round_}-c{c}/key-{i:07d}" for i in range(plan.keys)]
            written: dict[str, int] = {}
            for op in OPS:
                order = rotated(list(peers.items()), round_, last=(MOTO, peers[MOTO]))
                for system, peer in order:
                    # Reads and deletes address only keys the PUT run surely stored (wrk
                    # takes the first request from the script without sending it).
                    usable = keys if op == "PUT" else keys[1 : max(written[system] - c, 2)]
                    paths = presigned_paths(peer, op, usable)
                    with sampler(peer) as rss:
                        outcome = replay(peer, op, paths, c, plan.seconds, work)
                    if op == "PUT":
                        written[system] = min(outcome.requests, len(keys))
                    record(report, f"1 KiB {op} c{c}", system, outcome, rss)


async def grpc_calls(daemon: Daemon, op: str, keys: list[str], c: int, seconds: float) -> Outcome:
    done = failed = 0
    cursor = iter(keys)
    deadline = time.monotonic() + seconds
    async with Client(
        daemon.grpc_target, access_key_id=daemon.access_key, secret_access_key=daemon.secret_key
    ) as client:
        calls: dict[str, Callable[[str], Awaitable[object]]] = {
            "PUT": lambda key: client.put_object(BUCKET, key, BODY),
            "GET": lambda key: client.get_object(BUCKET, key),
            "HEAD": lambda key: client.head_object(BUCKET, key),
            "DELETE": lambda key: client.delete_object(BUCKET, key),
        }

        async def worker() -> None:
            nonlocal done, failed
            for key in cursor:
                if time.monotonic() >= deadline:
                    return
                try:
                    await calls[op](key)
                    done += 1
                except Exception:
                    failed += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(c)))
        return Outcome(requests=done, seconds=time.monotonic() - started, errors=failed)


def measure_grpc(report: Report, daemon: Daemon, plan: Plan) -> None:
    for round_ in range(plan.rounds):
        for c in CONCURRENCY:
            keys = [f"g{round_}-c{c}/key-{i:07d}" for i in range(plan.keys)]
            written = len(keys)
            for op in OPS:
                usable = keys if op == "PUT" else keys[:written]
                with sampler(daemon) as rss:
                    outcome = asyncio.run(grpc_calls(daemon, op, usable, c, plan.seconds))
                if op == "PUT":
                    written = outcome.requests
                record(report, f"1 KiB {op} c{c}", GRPC, outcome, rss)


def run(report: Report, *, quick: bool) -> None:
    plan = Plan(seconds=2, rounds=1) if quick else Plan(seconds=5, rounds=3)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        ours = daemon(stack, work)
        on_asyncio = daemon(stack, work, "asyncio", LIGHTNINGSTOR_EVENT_LOOP="asyncio")
        peers: dict[str, Peer] = {OURS: ours, MOTO: moto(stack, work), ASYNCIO: on_asyncio}
        for peer in peers.values():
            create_bucket(peer, BUCKET)
        measure_s3(report, peers, plan, work)
        measure_grpc(report, ours, plan)
