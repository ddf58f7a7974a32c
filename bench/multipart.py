"""Multipart at scale.

1. ``multipart 8x parallel``: one 1 GiB object as 8 equal parts, all UploadPart requests at
   once (a thread and connection each, signed raw HTTP), then CompleteMultipartUpload; timed
   from CreateMultipartUpload to the completion's answer, for our S3 door and moto.
2. ``complete 10k parts``: completing a 10,000-part upload, one metadata commit, timed in the
   core. The parts are tiny because ``min_part_bytes`` (a documented setting) is lowered to 1.
3. ``aws s3 cp 1 GiB`` (not with --quick): aws-cli's own multipart upload (default concurrency)
   to our daemon.

``python -m bench --only multipart [--quick]`` (quick: 256 MiB, 1,000 parts, no aws-cli).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from bench.common import (
    BLOCK,
    MIB,
    MOTO,
    OURS,
    Payload,
    Peer,
    call,
    connect,
    create_bucket,
    daemon,
    delete_object,
    figure,
    get_crc32c,
    measured,
    moto,
    put_stream,
    rounds,
)
from bench.report import Report
from lightningstor.model import Owner
from lightningstor.objects.multipart import CompletedPart
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from lightningstor.ops.fsck import check_store
from tests.daemon import Daemon, aws_env_of

BUCKET = "bench-multipart"
PARTS = 8


# --- 8 parts in parallel over S3 ---------------------------------------------------------------
def upload_parallel(peer: Peer, key: str, payload: Payload) -> None:
    """CreateMultipartUpload, the 8 UploadParts at once, CompleteMultipartUpload."""
    path = f"/{BUCKET}/{key}"
    conn = connect(peer)
    created = call(conn, peer, "POST", f"{path}?uploads")
    found = re.search(rb"<UploadId>([^<]+)</UploadId>", created)
    if found is None:
        raise RuntimeError(f"no UploadId in {created[:300]!r}")
    upload_id = found.group(1).decode()
    per_part = payload.size // BLOCK // PARTS

    def part(number: int) -> str:
        blocks = payload.blocks((number - 1) * per_part, per_part)
        query = f"?partNumber={number}&uploadId={upload_id}"
        return put_stream(peer, path + query, per_part * BLOCK, blocks)

    with ThreadPoolExecutor(PARTS) as pool:
        etags = list(pool.map(part, range(1, PARTS + 1)))
    listed = "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
        for n, etag in enumerate(etags, 1)
    )
    body = f"<CompleteMultipartUpload>{listed}</CompleteMultipartUpload>".encode()
    call(conn, peer, "POST", f"{path}?uploadId={upload_id}", body)
    conn.close()


def parallel_round(report: Report, system: str, peer: Peer, payload: Payload) -> None:
    fig = figure(report, "multipart 8x parallel", system, "MiB/s")
    key = f"object-{payload.salt}"
    seconds, _ = measured(fig, peer, lambda: upload_parallel(peer, key, payload))
    # Checked outside the timing: the completed object is exactly the bytes of the 8 parts.
    if get_crc32c(peer, f"/{BUCKET}/{key}") != (payload.size, payload.crc32c):
        raise RuntimeError(f"{system}: the completed object differs from the parts sent")
    fig.samples.append(payload.size / MIB / seconds)
    delete_object(peer, f"/{BUCKET}/{key}")


# --- completing many parts, in the core --------------------------------------------------------
async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _many_parts(store: ObjectStore, parts: int) -> float:
    """Seconds the completion of a ``parts``-part upload takes (the uploads are not timed)."""
    uploads = store.uploads
    uploads.min_part_bytes = 1
    await store.create_bucket("bench-parts", owner=Owner("bench"))
    upload = await uploads.create("bench-parts", "object")
    semaphore = asyncio.Semaphore(32)

    async def part(n: int) -> CompletedPart:
        async with semaphore:
            info = await uploads.upload_part(
                "bench-parts", "object", upload.upload_id, n, _one(n.to_bytes(4, "big") * 4)
            )
            return CompletedPart(number=n, etag=info.etag)

    listed = await asyncio.gather(*(part(n) for n in range(1, parts + 1)))
    loop = asyncio.get_running_loop()
    begin = loop.time()
    head = await uploads.complete("bench-parts", "object", upload.upload_id, listed)
    seconds = loop.time() - begin
    if len(head.segments) != parts:
        raise RuntimeError(f"completed {len(head.segments)} segments of {parts} parts")
    return seconds


def completion_ms(workdir: Path, parts: int) -> float:
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        offloader = Offloader(workers=16)
        store = ObjectStore.open(Path(tmp) / "data", offloader=offloader)
        try:
            seconds = asyncio.run(_many_parts(store, parts))
            health = check_store(store.kv, store.blobs)
        finally:
            store.close()
            offloader.shutdown()
    if not health.healthy:
        raise RuntimeError(f"store unhealthy after completion: {health.problems[:3]}")
    return seconds * 1000


# --- aws-cli -----------------------------------------------------------------------------------
def aws_cp(peer: Daemon, source: Path, key: str) -> None:
    aws = str(Path(sys.executable).with_name("aws"))
    subprocess.run(
        [aws, "--endpoint-url", peer.endpoint, "s3", "cp", str(source), f"s3://{BUCKET}/{key}"],
        env=aws_env_of(peer),
        check=True,
        capture_output=True,
    )


def aws_round(report: Report, peer: Daemon, workdir: Path, payload: Payload) -> None:
    source = workdir / "big.bin"
    with source.open("wb") as f:
        for block in payload.blocks():
            f.write(block)
    fig = figure(report, "aws s3 cp 1 GiB", OURS, "MiB/s")
    key = f"aws-{payload.salt}"
    seconds, _ = measured(fig, peer, lambda: aws_cp(peer, source, key))
    if get_crc32c(peer, f"/{BUCKET}/{key}") != (payload.size, payload.crc32c):
        raise RuntimeError("aws s3 cp stored other bytes than the file's")
    fig.samples.append(payload.size / MIB / seconds)
    delete_object(peer, f"/{BUCKET}/{key}")
    source.unlink()


def run(report: Report, *, quick: bool) -> None:
    size = (256 if quick else 1024) * MIB
    parts = 1_000 if quick else 10_000
    completion = f"complete {parts // 1000}k parts"
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        ours = daemon(stack, work)
        peers: dict[str, Peer] = {OURS: ours, MOTO: moto(stack, work)}
        for peer in peers.values():
            create_bucket(peer, BUCKET)
        for round_number in range(1, rounds(quick) + 1):
            for system, peer in peers.items():
                parallel_round(report, system, peer, Payload(size, salt=round_number))
            figure(report, completion, OURS, "ms").samples.append(completion_ms(work, parts))
            if not quick:
                # A fresh salt each round: the store must not find last round's blocks.
                aws_round(report, ours, work, Payload(size, salt=100 + round_number))
