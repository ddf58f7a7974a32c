"""Stream one large object up and down through S3 and watch the daemon's memory.

Prints throughput and the daemon's resident-memory growth over idle, measured in the same run.
``python -m bench.large_object [--mib N]`` (default 1024).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # Alternate the doors on one daemon so both see the same machine state.
        daemon = Daemon(Path(tmp) / "data").start()
        try:
            for door in ("s3", "grpc"):
                results[door] = measure(daemon, args.mib, door)
        finally:
            daemon.stop()
    s3, grpc_ = results["s3"], results["grpc"]
    print(f"object: {args.mib} MiB, single stream, plain HTTP / insecure gRPC, payload unsigned")
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
