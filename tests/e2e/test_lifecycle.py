"""Lifecycle rules that run, on a real daemon through boto3: a rule expiring ``logs/`` after one
"day" (``lifecycle_day_seconds = 1``) and aborting its uploads; the daemon killed in the middle
of the pass and restarted; afterwards the objects and the upload are gone, their blobs
collected, everything else untouched, fsck clean, and /metrics counted each action once."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.daemon import Daemon, boto3_client

BUCKET = "lifecycle-e2e"
EXPIRING = 1200  # small (kept in their records) ...
BIG = 10  # ... and large enough to be blobs
KEPT = 20
SETTINGS = {
    "LIGHTNINGSTOR_LIFECYCLE_DAY_SECONDS": "1",
    "LIGHTNINGSTOR_LIFECYCLE_INTERVAL_SECONDS": "0.5",
    # Slow enough that the pass over logs/ takes a few seconds: time to kill it half-way.
    "LIGHTNINGSTOR_LIFECYCLE_OBJECTS_PER_SECOND": "300",
    "LIGHTNINGSTOR_GC_DELAY_SECONDS": "0",
    "LIGHTNINGSTOR_GC_INTERVAL_SECONDS": "0.5",
}


def metrics(daemon: Daemon) -> dict[str, float]:
    url = f"http://127.0.0.1:{daemon.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    found = re.findall(r"^(lightningstor_lifecycle_\w+) (\S+)$", text, re.MULTILINE)
    return {name: float(value) for name, value in found}


def wait_for(what: str, check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def blob_files(data_dir: Path) -> set[str]:
    return {p.name for p in (data_dir / "blobs").rglob("*") if p.is_file()}


def test_a_rule_expires_its_prefix_and_survives_a_restart_mid_pass(fresh_daemon: Daemon) -> None:
    fresh_daemon.extra_env.update(SETTINGS)
    fresh_daemon.start()
    s3 = boto3_client(fresh_daemon)
    s3.create_bucket(Bucket=BUCKET)
    big = {f"logs/big-{i}": os.urandom(64 * 1024) for i in range(BIG)}
    kept = {f"keep/{i:03d}": os.urandom(8 * 1024 if i % 2 else 100) for i in range(KEPT)}

    def put(item: tuple[str, bytes]) -> None:
        s3.put_object(Bucket=BUCKET, Key=item[0], Body=item[1])

    small = {f"logs/{i:05d}": b"log line %d" % i for i in range(EXPIRING)}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, [*small.items(), *big.items(), *kept.items()]))
    expiring_blobs = {hashlib.sha256(body).hexdigest() for body in big.values()}
    assert expiring_blobs <= blob_files(fresh_daemon.data_dir)
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="logs/upload")["UploadId"]
    part = os.urandom(32 * 1024)
    s3.upload_part(Bucket=BUCKET, Key="logs/upload", UploadId=upload, PartNumber=1, Body=part)
    kept_upload = s3.create_multipart_upload(Bucket=BUCKET, Key="keep/upload")["UploadId"]
    s3.put_bucket_lifecycle_configuration(
        Bucket=BUCKET,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "logs",
                    "Filter": {"Prefix": "logs/"},
                    "Status": "Enabled",
                    "Expiration": {"Days": 1},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                }
            ]
        },
    )
    head = s3.head_object(Bucket=BUCKET, Key="logs/00000")
    assert 'rule-id="logs"' in head["ResponseMetadata"]["HTTPHeaders"]["x-amz-expiration"]

    # Half-way through the pass, the daemon dies without a chance to save anything.
    wait_for(
        "the pass to be half-way",
        lambda: metrics(fresh_daemon)["lightningstor_lifecycle_expired_objects_total"] >= 300,
    )
    fresh_daemon.stop(signal.SIGKILL)
    fresh_daemon.start()
    assert "lifecycle pass resumed" in fresh_daemon.log_text()
    s3 = boto3_client(fresh_daemon)

    def logs_gone() -> bool:
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="logs/")
        uploads = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
        return listed["KeyCount"] == 0 and [u["UploadId"] for u in uploads] == [kept_upload]

    wait_for("logs/ to expire", logs_gone)
    wait_for(
        "the pass to finish",
        lambda: metrics(fresh_daemon)["lightningstor_lifecycle_pass_running"] == 0,
    )
    counted = metrics(fresh_daemon)
    assert counted["lightningstor_lifecycle_expired_objects_total"] == EXPIRING + BIG
    assert counted["lightningstor_lifecycle_uploads_aborted_total"] == 1
    expected_bytes = sum(map(len, small.values())) + sum(map(len, big.values()))
    assert counted["lightningstor_lifecycle_expired_bytes_total"] == expected_bytes
    assert counted["lightningstor_lifecycle_passes_total"] >= 1

    # Everything else is as it was, and the expired bodies' blobs (the part's too) are gone.
    listed = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert [o["Key"] for o in listed] == sorted(kept)
    for key, body in kept.items():
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body
    gone = expiring_blobs | {hashlib.sha256(part).hexdigest()}
    wait_for("the blobs to be collected", lambda: not gone & blob_files(fresh_daemon.data_dir))
    assert fresh_daemon.stop() == 0
    checked = subprocess.run(
        [sys.executable, "-m", "lightningstor_server.cli", "fsck", "--data-dir",
         str(fresh_daemon.data_dir), "--verify-content"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
