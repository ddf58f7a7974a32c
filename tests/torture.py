"""Crash torture: a real daemon under mixed load, killed with SIGKILL at random moments.

Each round starts the daemon on the same data directory, runs S3 workers (boto3, in threads)
and a gRPC worker (the async client) doing puts of many sizes, overwrites, deletes, copies and
multipart completions, and a versioned worker (overwrites that keep every version, delete
markers, deletes of chosen versions, copies from old versions) in a versioned bucket, kills the
daemon mid-flight, restarts it and checks:
- every acknowledged write reads back with exactly its bytes (and every acknowledged delete
  stays deleted); an operation in flight at the kill shows its old or its new state, whole;
- listings agree with reads (every listed key reads, every readable key is listed);
- every acknowledged version is still listed and reads back exactly, every acknowledged
  version delete stays deleted, and only the operation in flight may have added one version
  (or delete marker) or removed the one it named;
- after a clean stop, ``lightningstor fsck`` finds nothing wrong.

Seeded and reproducible in what it asks for (the kill lands wherever the daemon is then).
``python -m tests.torture --rounds 500`` is the soak mode (``make soak``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from lightningstor.client import Client
from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon, boto3_client

BUCKET = "torture"
VERSIONED = "torture-versions"
KEYS_PER_WORKER = 6
S3_WORKERS = 3
SIZES = (0, 1, 1000, 64 * 1024, 300 * 1024, 1024 * 1024 + 7, 3 * 1024 * 1024)
Digest = tuple[str, int] | None  # (sha256, size) of the bytes, or None: absent


def payload(seed: int, size: int) -> bytes:
    block = hashlib.sha256(seed.to_bytes(8, "big")).digest()
    return (block * (size // 32 + 1))[:size]


def digest_of(data: bytes) -> tuple[str, int]:
    return hashlib.sha256(data).hexdigest(), len(data)


@dataclass
class KeyState:
    """What a key must hold: ``acked``, or while an operation is in flight, one of ``maybe``."""

    acked: Digest = None
    maybe: list[Digest] = field(default_factory=list)

    def allowed(self) -> list[Digest]:
        return [self.acked, *self.maybe]


@dataclass
class Model:
    keys: dict[str, KeyState] = field(default_factory=dict)
    acked_ops: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, key: str, new: Digest) -> None:
        with self.lock:
            self.keys.setdefault(key, KeyState()).maybe = [new]

    def ack(self, key: str, new: Digest) -> None:
        with self.lock:
            state = self.keys[key]
            state.acked, state.maybe = new, []
            self.acked_ops += 1

    def refused(self, key: str) -> None:
        """The server answered with an error: the operation did not happen."""
        with self.lock:
            self.keys[key].maybe = []


@dataclass
class VersionedKey:
    """A key's acknowledged versions (version id -> digest, None for a delete marker) and the
    operation in flight: ("add", digest or None) may add one version, ("remove", id) may
    remove that one."""

    versions: dict[str, Digest] = field(default_factory=dict)
    flight: tuple[str, object] | None = None


@dataclass
class VersionModel:
    keys: dict[str, VersionedKey] = field(default_factory=dict)
    acked_ops: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, key: str, flight: tuple[str, object]) -> None:
        with self.lock:
            self.keys.setdefault(key, VersionedKey()).flight = flight

    def added(self, key: str, version_id: str, digest: Digest) -> None:
        with self.lock:
            state = self.keys[key]
            state.versions[version_id], state.flight = digest, None
            self.acked_ops += 1

    def removed(self, key: str, version_id: str) -> None:
        with self.lock:
            state = self.keys[key]
            state.versions.pop(version_id, None)
            state.flight = None
            self.acked_ops += 1

    def refused(self, key: str) -> None:
        with self.lock:
            self.keys[key].flight = None

    def readable(self, key: str) -> list[tuple[str, Digest]]:
        """The key's acknowledged versions with bytes, when nothing is in flight on it."""
        with self.lock:
            state = self.keys.get(key)
            if state is None or state.flight is not None:
                return []
            return [(v, d) for v, d in state.versions.items() if d is not None]


def _s3_worker(daemon: Daemon, model: Model, worker: int, seed: int, stop: threading.Event) -> None:
    rng = random.Random(seed)
    s3 = boto3_client(daemon)
    keys = [f"w{worker}/k{i}" for i in range(KEYS_PER_WORKER)]
    try:
        while not stop.is_set():
            key = rng.choice(keys)
            action = rng.random()
            try:
                if action < 0.55:
                    data = payload(rng.getrandbits(32), rng.choice(SIZES))
                    model.begin(key, digest_of(data))
                    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
                    model.ack(key, digest_of(data))
                elif action < 0.75:
                    model.begin(key, None)
                    s3.delete_object(Bucket=BUCKET, Key=key)
                    model.ack(key, None)
                elif action < 0.9:
                    source = rng.choice(keys)
                    with model.lock:
                        state = model.keys.get(source)
                        copied = state.acked if state and not state.maybe else None
                    if copied is None or source == key:
                        continue
                    model.begin(key, copied)
                    s3.copy_object(
                        Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": source}
                    )
                    model.ack(key, copied)
                else:
                    parts = [
                        payload(rng.getrandbits(32), 70_000 + rng.randrange(1000)) for _ in range(3)
                    ]
                    whole = b"".join(parts)
                    model.begin(key, digest_of(whole))
                    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
                    listed = [
                        {
                            "PartNumber": n,
                            "ETag": s3.upload_part(
                                Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=n, Body=p
                            )["ETag"],
                        }
                        for n, p in enumerate(parts, start=1)
                    ]
                    s3.complete_multipart_upload(
                        Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": listed}
                    )
                    model.ack(key, digest_of(whole))
            except ClientError:
                model.refused(key)
            except (BotoCoreError, OSError):
                return  # the daemon is gone: this key's operation stays in doubt
    finally:
        s3.close()


def _versioned_worker(
    daemon: Daemon, model: VersionModel, seed: int, stop: threading.Event
) -> None:
    rng = random.Random(seed)
    s3 = boto3_client(daemon)
    keys = [f"v/k{i}" for i in range(KEYS_PER_WORKER // 2)]
    try:
        while not stop.is_set():
            key = rng.choice(keys)
            action = rng.random()
            try:
                if action < 0.5:
                    data = payload(rng.getrandbits(32), rng.choice(SIZES[:5]))
                    model.begin(key, ("add", digest_of(data)))
                    put = s3.put_object(Bucket=VERSIONED, Key=key, Body=data)
                    model.added(key, put["VersionId"], digest_of(data))
                elif action < 0.65:
                    model.begin(key, ("add", None))
                    marker = s3.delete_object(Bucket=VERSIONED, Key=key)
                    model.added(key, marker["VersionId"], None)
                elif action < 0.85:
                    with model.lock:
                        known = list(model.keys.get(key, VersionedKey()).versions)
                    if not known:
                        continue
                    version = rng.choice(known)
                    model.begin(key, ("remove", version))
                    s3.delete_object(Bucket=VERSIONED, Key=key, VersionId=version)
                    model.removed(key, version)
                else:
                    source = rng.choice(keys)
                    old = model.readable(source)
                    if not old or source == key:
                        continue
                    version, digest = rng.choice(old)
                    model.begin(key, ("add", digest))
                    copied = s3.copy_object(
                        Bucket=VERSIONED,
                        Key=key,
                        CopySource={"Bucket": VERSIONED, "Key": source, "VersionId": version},
                    )
                    model.added(key, copied["VersionId"], digest)
            except ClientError:
                model.refused(key)
            except (BotoCoreError, OSError):
                return
    finally:
        s3.close()


def _grpc_worker(daemon: Daemon, model: Model, seed: int, stop: threading.Event) -> None:
    async def run() -> None:
        rng = random.Random(seed)
        keys = [f"grpc/k{i}" for i in range(KEYS_PER_WORKER)]
        async with Client(
            daemon.grpc_target, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
        ) as ls:
            while not stop.is_set():
                key = rng.choice(keys)
                try:
                    if rng.random() < 0.75:
                        data = payload(rng.getrandbits(32), rng.choice(SIZES))
                        model.begin(key, digest_of(data))
                        await ls.put_object(BUCKET, key, data)
                        model.ack(key, digest_of(data))
                    else:
                        model.begin(key, None)
                        await ls.delete_object(BUCKET, key)
                        model.ack(key, None)
                except Exception as exc:
                    if type(exc).__module__ == "lightningstor.errors":
                        model.refused(key)
                        continue
                    return  # the daemon is gone

    asyncio.run(run())


def load_then_kill(
    daemon: Daemon, model: Model, versions: VersionModel, rng: random.Random
) -> None:
    stop = threading.Event()
    workers = [
        threading.Thread(target=_s3_worker, args=(daemon, model, w, rng.getrandbits(32), stop))
        for w in range(S3_WORKERS)
    ]
    workers.append(
        threading.Thread(target=_grpc_worker, args=(daemon, model, rng.getrandbits(32), stop))
    )
    workers.append(
        threading.Thread(
            target=_versioned_worker, args=(daemon, versions, rng.getrandbits(32), stop)
        )
    )
    for worker in workers:
        worker.start()
    time.sleep(rng.uniform(0.3, 1.5))
    daemon.kill()
    stop.set()
    for worker in workers:
        worker.join(60)


def check(daemon: Daemon, model: Model) -> None:
    s3 = boto3_client(daemon)
    try:
        listed = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            listed |= {o["Key"] for o in page.get("Contents", [])}
        for key, state in sorted(model.keys.items()):
            try:
                found: Digest = digest_of(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "NoSuchKey":
                    raise
                found = None
            assert found in state.allowed(), f"{key}: found {found}, allowed {state.allowed()}"
            assert (found is not None) == (key in listed), f"{key}: listing and read disagree"
            # Whatever the in-flight operation did is now a fact for the next round.
            state.acked, state.maybe = found, []
        assert listed <= set(model.keys), f"unexpected keys listed: {listed - set(model.keys)}"
    finally:
        s3.close()


def check_versions(daemon: Daemon, model: VersionModel) -> None:
    s3 = boto3_client(daemon)
    try:
        found: dict[str, list[tuple[str, bool]]] = {}
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=VERSIONED):
            for entry in page.get("Versions", []):
                found.setdefault(entry["Key"], []).append((entry["VersionId"], False))
            for entry in page.get("DeleteMarkers", []):
                found.setdefault(entry["Key"], []).append((entry["VersionId"], True))
        assert set(found) <= set(model.keys), f"unexpected keys: {set(found) - set(model.keys)}"
        for key, state in sorted(model.keys.items()):
            state.versions = _check_key(s3, key, state, dict(found.get(key, [])))
            state.flight = None
    finally:
        s3.close()


def _check_key(
    s3: Any, key: str, state: VersionedKey, listed: dict[str, bool]
) -> dict[str, Digest]:
    """The key's versions as found, after checking them against what was acknowledged."""
    flight = state.flight
    for version in set(state.versions) - set(listed):
        assert flight == ("remove", version), f"{key}: acknowledged version {version} lost"
    new = set(listed) - set(state.versions)
    assert len(new) <= 1 and (not new or (flight and flight[0] == "add")), (
        f"{key}: versions nobody wrote: {new}"
    )
    now: dict[str, Digest] = {}
    for version, marker in listed.items():
        if marker:
            now[version] = None
            expected: list[Digest] = [None]
        else:
            body = s3.get_object(Bucket=VERSIONED, Key=key, VersionId=version)
            now[version] = digest_of(body["Body"].read())
            expected = [state.versions.get(version)] if version not in new else []
        if version in new:
            assert flight is not None
            expected = [cast(Digest, flight[1])]
        assert now[version] in expected, f"{key} {version}: found {now[version]}, want {expected}"
    return now


def fsck(data_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lightningstor_server.cli", "fsck", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"fsck found problems:\n{done.stdout}{done.stderr}"


def torture(data_dir: Path, *, rounds: int, seed: int, report: bool = False) -> Model:
    rng = random.Random(seed)
    model, versions = Model(), VersionModel()
    # The documented setting that lowers the minimum part size keeps multipart parts small.
    daemon = Daemon(data_dir, extra_env={"LIGHTNINGSTOR_MIN_PART_BYTES": "65536"})
    daemon.start()
    s3 = boto3_client(daemon)
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=VERSIONED)
    s3.put_bucket_versioning(Bucket=VERSIONED, VersioningConfiguration={"Status": "Enabled"})
    s3.close()
    for number in range(1, rounds + 1):
        load_then_kill(daemon, model, versions, rng)
        daemon.start()
        check(daemon, model)
        check_versions(daemon, versions)
        assert daemon.stop(signal.SIGTERM) == 0, daemon.log_text()[-2000:]
        fsck(data_dir)
        daemon.start()
        if report:
            done = model.acked_ops + versions.acked_ops
            print(f"round {number}: {done} acknowledged operations so far", flush=True)
    daemon.stop()
    model.acked_ops += versions.acked_ops
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = torture(Path(tmp) / "data", rounds=args.rounds, seed=args.seed, report=True)
    print(
        f"{args.rounds} kill rounds, {model.acked_ops} acknowledged operations, 0 lost or corrupt"
    )


if __name__ == "__main__":
    main()
