"""Stream one large object up and down through S3 and watch the daemon's memory.

Prints throughput and the daemon's resident-memory growth over idle, measured in the same run,
then what verifying every block's CRC32C on read costs: the same S3 GET from two daemons with
identical settings but ``verify_reads`` on and off, alternated, best of ``--rounds``.
``python -m bench.large_object [--mib N] [--rounds R] [--verify-only]`` (default 1024, 3).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import json
import statistics
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path

from lightningstor.client import Client
from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon, boto3_client
from tests.signing import sign

CHUNK = 1024 * 1024


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


class RssSampler(threading.Thread):
    def __init__(self, daemon: Daemon) -> None:
        super().__init__(daemon=True)
        self._daemon = daemon
        self.peak = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, self._daemon.rss_bytes())
            time.sleep(0.02)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak


def _pattern(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big")).digest() * (CHUNK // 32)


def upload(daemon: Daemon, bucket: str, key: str, mib: int) -> str:
    path = f"/{bucket}/{key}"
    headers = sign("PUT", daemon.endpoint + path, headers={"Content-Length": str(mib * CHUNK)})
    conn = http.client.HTTPConnection("127.0.0.1", daemon.s3_port, timeout=300)
    conn.putrequest("PUT", path, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    md5 = hashlib.md5()
    for i in range(mib):
        block = _pattern(i)
        md5.update(block)
        conn.send(block)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"upload failed: {response.status} {body!r}")
    etag = response.getheader("ETag")
    if etag != f'"{md5.hexdigest()}"':
        raise RuntimeError(f"ETag {etag} does not match the bytes sent")
    return md5.hexdigest()


def download(daemon: Daemon, bucket: str, key: str) -> str:
    path = f"/{bucket}/{key}"
    conn = http.client.HTTPConnection("127.0.0.1", daemon.s3_port, timeout=300)
    conn.request("GET", path, headers=sign("GET", daemon.endpoint + path))
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"download failed: {response.status}")
    md5 = hashlib.md5()
    while block := response.read(CHUNK):
        md5.update(block)
    conn.close()
    return md5.hexdigest()


def measure(daemon: Daemon, mib: int, door: str = "s3") -> Result:
    """Upload then download ``mib`` MiB through ``door`` ("s3" or "grpc"), sampling RSS."""
    bucket = f"bench-large-{door}"
    boto3_client(daemon).create_bucket(Bucket=bucket)
    time.sleep(0.5)
    idle = daemon.rss_bytes()
    sampler = RssSampler(daemon)
    sampler.start()
    if door == "s3":
        started = time.monotonic()
        sent = upload(daemon, bucket, "object", mib)
        up = time.monotonic() - started
        started = time.monotonic()
        received = download(daemon, bucket, "object")
        down = time.monotonic() - started
    else:
        sent, up, received, down = asyncio.run(_grpc_round_trip(daemon, bucket, mib))
    peak = sampler.stop()
    if sent != received:
        raise RuntimeError("downloaded bytes differ from uploaded bytes")
    return Result(
        mib=mib,
        idle_rss_mib=idle / CHUNK,
        peak_rss_mib=peak / CHUNK,
        upload_mib_s=mib / up,
        download_mib_s=mib / down,
    )


async def _grpc_round_trip(daemon: Daemon, bucket: str, mib: int) -> tuple[str, float, str, float]:
    md5 = hashlib.md5()

    async def blocks() -> AsyncIterator[bytes]:
        for i in range(mib):
            block = _pattern(i)
            md5.update(block)
            yield block

    async with Client(
        daemon.grpc_target, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
    ) as ls:
        started = time.monotonic()
        written = await ls.put_object(bucket, "object", blocks())
        up = time.monotonic() - started
        if written.etag != md5.hexdigest():
            raise RuntimeError("gRPC ETag does not match the bytes sent")
        received = hashlib.md5()
        started = time.monotonic()
        async for chunk in ls.iter_object(bucket, "object"):
            received.update(chunk)
        down = time.monotonic() - started
    return md5.hexdigest(), up, received.hexdigest(), down


@dataclass
class VerifyCost:
    mib: int
    on_mib_s: list[float]
    off_mib_s: list[float]

    @property
    def ratio(self) -> float:
        """Best verified GET throughput over best unverified (1.0: verification is free)."""
        return max(self.on_mib_s) / max(self.off_mib_s)


def measure_verify_cost(mib: int, rounds: int) -> VerifyCost:
    """The same GET from a verifying and a non-verifying daemon, alternated ``rounds`` times
    so both see the same machine state (page cache warm for both: the object is read from
    memory, which is where a CRC's cost shows most)."""
    on_speeds: list[float] = []
    off_speeds: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        daemons = {
            verify: Daemon(
                Path(tmp) / f"verify-{verify}",
                extra_env={"LIGHTNINGSTOR_VERIFY_READS": "true" if verify else "false"},
            ).start()
            for verify in (True, False)
        }
        try:
            sent: dict[bool, str] = {}
            for verify, daemon in daemons.items():
                boto3_client(daemon).create_bucket(Bucket="bench-verify")
                sent[verify] = upload(daemon, "bench-verify", "object", mib)
            for _ in range(rounds):
                for verify, daemon in daemons.items():
                    started = time.monotonic()
                    received = download(daemon, "bench-verify", "object")
                    speed = mib / (time.monotonic() - started)
                    if received != sent[verify]:
                        raise RuntimeError("downloaded bytes differ from uploaded bytes")
                    (on_speeds if verify else off_speeds).append(speed)
        finally:
            for daemon in daemons.values():
                daemon.stop()
    return VerifyCost(mib=mib, on_mib_s=on_speeds, off_mib_s=off_speeds)


def report_verify_cost(cost: VerifyCost) -> None:
    for name, speeds in (("on", cost.on_mib_s), ("off", cost.off_mib_s)):
        print(
            f"verify_reads {name:3s}: S3 GET best {max(speeds):7.1f} MiB/s, "
            f"median {statistics.median(speeds):7.1f} MiB/s over {len(speeds)} rounds"
        )
    print(f"verify on / off: {cost.ratio:.3f}x (best of each)")
    print(json.dumps({"verify_cost": {**asdict(cost), "ratio": cost.ratio}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3, help="GETs per verify_reads setting")
    parser.add_argument("--verify-only", action="store_true", help="only the verify cost run")
    args = parser.parse_args()
    if not args.verify_only:
        compare_doors(args.mib)
    report_verify_cost(measure_verify_cost(args.mib, args.rounds))


def compare_doors(mib: int) -> None:
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # Alternate the doors on one daemon so both see the same machine state.
        daemon = Daemon(Path(tmp) / "data").start()
        try:
            for door in ("s3", "grpc"):
                results[door] = measure(daemon, mib, door)
        finally:
            daemon.stop()
    s3, grpc_ = results["s3"], results["grpc"]
    print(f"object: {mib} MiB, single stream, plain HTTP / insecure gRPC, payload unsigned")
    for door, r in results.items():
        print(
            f"{door:5s} upload {r.upload_mib_s:7.1f} MiB/s  "
            f"download {r.download_mib_s:7.1f} MiB/s  "
            f"RSS idle {r.idle_rss_mib:.0f} MiB peak {r.peak_rss_mib:.0f} MiB "
            f"(+{r.growth_mib:.0f} MiB)"
        )
    print(
        f"gRPC / S3: upload {grpc_.upload_mib_s / s3.upload_mib_s:.2f}x, "
        f"download {grpc_.download_mib_s / s3.download_mib_s:.2f}x"
    )
    print(json.dumps({door: asdict(r) for door, r in results.items()}))


if __name__ == "__main__":
    main()
