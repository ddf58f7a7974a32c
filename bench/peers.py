"""The systems a benchmark drives: our daemon (tests' :class:`Daemon`) and moto's server mode.

Both expose the same small surface the benchmarks use: an S3 endpoint, credentials, the
process's resident memory, and stop().
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Protocol

from lightningstor.testing import free_port, wait_for_port

MOTO_ACCESS_KEY = "testing"
MOTO_SECRET_KEY = "testing"


class S3Peer(Protocol):
    @property
    def endpoint(self) -> str: ...

    access_key: str
    secret_key: str

    def rss_bytes(self) -> int: ...


def rss_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class MotoServer:
    """``moto_server`` (moto's standalone S3 emulator, all in memory) on a free port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.access_key = MOTO_ACCESS_KEY
        self.secret_key = MOTO_SECRET_KEY
        self.tls = None  # plain HTTP, as boto3_client expects to read

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        exe = shutil.which("moto_server", path=str(Path(sys.executable).parent))
        if exe is None:
            raise RuntimeError("moto_server not installed: make bench installs the bench extra")
        self.port = free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        log_path = self.workdir / "moto.log"
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [exe, "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port, self.proc, log_path)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None

    def rss_bytes(self) -> int:
        assert self.proc is not None
        return rss_of(self.proc.pid)


class RssSampler(threading.Thread):
    """Samples a peer's resident memory every 20 ms until stopped; keeps the peak."""

    def __init__(self, peer: S3Peer) -> None:
        super().__init__(daemon=True)
        self._peer = peer
        self.idle = peer.rss_bytes()
        self.peak = self.idle
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, self._peer.rss_bytes())
            time.sleep(0.02)

    def __enter__(self) -> RssSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()
        self.join()

    @property
    def idle_mib(self) -> float:
        return self.idle / 2**20

    @property
    def peak_mib(self) -> float:
        return self.peak / 2**20
