"""Multipart at scale.

1. Completing a 10,000-part upload: one metadata commit, timed in the core. The parts are tiny
   because ``min_part_bytes`` (a documented setting) is lowered to 1 for this run.
2. ``aws s3 cp`` of a 1 GiB file up and down (multipart both ways, default aws-cli
   concurrency) against a real daemon, sampling the daemon's resident memory.

``python -m bench.multipart [--parts N] [--mib M]``
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from bench.large_object import RssSampler
from lightningstor.fsck import check_store
from lightningstor.multipart import CompletedPart, MultipartUploads
from lightningstor.offload import Offloader
from lightningstor.store import ObjectStore
from tests.daemon import Daemon, aws_env

MIB = 1024 * 1024


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _many_parts(store: ObjectStore, parts: int) -> tuple[float, float, int]:
    uploads = MultipartUploads(store, min_part_bytes=1)
    await store.create_bucket("bench-parts", owner="bench")
    upload = await uploads.create("bench-parts", "object")
    semaphore = asyncio.Semaphore(32)

    async def part(n: int) -> CompletedPart:
        async with semaphore:
            info = await uploads.upload_part(
                "bench-parts", "object", upload.upload_id, n, _one(n.to_bytes(4, "big") * 4)
            )
            return CompletedPart(number=n, etag=info.etag)

    started = time.perf_counter()
    listed = await asyncio.gather(*(part(n) for n in range(1, parts + 1)))
    uploaded = time.perf_counter() - started
    started = time.perf_counter()
    head = await uploads.complete("bench-parts", "object", upload.upload_id, listed)
    completed = time.perf_counter() - started
    return uploaded, completed, len(head.segments)


def bench_completion(parts: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        offloader = Offloader(workers=16)
        store = ObjectStore.open(Path(tmp) / "data", offloader=offloader)
        uploaded, completed, segments = asyncio.run(_many_parts(store, parts))
        report = check_store(store.kv, store.blobs)
        store.close()
        offloader.shutdown()
    print(f"{parts} parts uploaded in {uploaded:.1f} s ({parts / uploaded:.0f} parts/s)")
    print(f"completion of {segments} parts: {completed * 1000:.0f} ms, one metadata commit")
    print(f"store check after completion: {'healthy' if report.healthy else report.problems[:3]}")


def bench_aws_cli(mib: int) -> None:
    aws = str(Path(sys.executable).with_name("aws"))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "big.bin"
        with src.open("wb") as f:
            for i in range(mib):
                f.write(hashlib.sha256(i.to_bytes(8, "big")).digest() * (MIB // 32))
        daemon = Daemon(Path(tmp) / "data").start()
        try:
            env = aws_env(daemon)
            endpoint = ["--endpoint-url", daemon.endpoint]
            subprocess.run(
                [aws, *endpoint, "s3", "mb", "s3://bench-cp"],
                env=env,
                check=True,
                capture_output=True,
            )
            time.sleep(0.5)
            idle = daemon.rss_bytes()
            sampler = RssSampler(daemon)
            sampler.start()
            started = time.perf_counter()
            subprocess.run(
                [aws, *endpoint, "s3", "cp", str(src), "s3://bench-cp/big.bin"],
                env=env,
                check=True,
                capture_output=True,
            )
            up = time.perf_counter() - started
            back = Path(tmp) / "back.bin"
            started = time.perf_counter()
            subprocess.run(
                [aws, *endpoint, "s3", "cp", "s3://bench-cp/big.bin", str(back)],
                env=env,
                check=True,
                capture_output=True,
            )
            down = time.perf_counter() - started
            peak = sampler.stop()
            same = _file_md5(src) == _file_md5(back)
        finally:
            daemon.stop()
    print(
        f"aws s3 cp {mib} MiB: up {mib / up:.1f} MiB/s, down {mib / down:.1f} MiB/s, "
        f"identical: {same}"
    )
    print(
        f"daemon RSS: idle {idle / MIB:.1f} MiB, peak {peak / MIB:.1f} MiB, "
        f"growth {(peak - idle) / MIB:.1f} MiB ({peak / idle:.2f}x idle)"
    )


def _file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parts", type=int, default=10_000)
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    bench_completion(args.parts)
    bench_aws_cli(args.mib)


if __name__ == "__main__":
    main()
