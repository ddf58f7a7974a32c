"""Stream one large object up and down through S3 and watch the daemon's memory.

Prints throughput and the daemon's resident-memory growth over idle, measured in the same run.
``python -m bench.large_object [--mib N]`` (default 1024).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.daemon import Daemon, boto3_client
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


def measure(daemon: Daemon, mib: int) -> Result:
    boto3_client(daemon).create_bucket(Bucket="bench-large")
    time.sleep(0.5)
    idle = daemon.rss_bytes()
    sampler = RssSampler(daemon)
    sampler.start()
    started = time.monotonic()
    sent = upload(daemon, "bench-large", "object", mib)
    up = time.monotonic() - started
    started = time.monotonic()
    received = download(daemon, "bench-large", "object")
    down = time.monotonic() - started
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Daemon(Path(tmp) / "data").start()
        try:
            result = measure(daemon, args.mib)
        finally:
            daemon.stop()
    print(f"object: {result.mib} MiB through S3 (single stream, plain HTTP, payload unsigned)")
    print(f"upload:   {result.upload_mib_s:8.1f} MiB/s")
    print(f"download: {result.download_mib_s:8.1f} MiB/s")
    print(
        f"daemon RSS: idle {result.idle_rss_mib:.1f} MiB, peak {result.peak_rss_mib:.1f} MiB, "
        f"growth {result.growth_mib:.1f} MiB "
        f"({result.peak_rss_mib / result.idle_rss_mib:.2f}x idle)"
    )
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
