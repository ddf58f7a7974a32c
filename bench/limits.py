"""This machine's limits, the yardsticks the daemon's figures are judged against.

- MD5+SHA-256 on one core: what a single PUT stream must compute (ETag and content address);
- sequential disk write + fsync, on the filesystem the data directories live on;
- loopback TCP: one sender, one receiver that only copies bytes into a buffer;
- fsync of a new 4 KiB file: the durability cost of one small PUT.

``python -m bench --only limits [--quick]``
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import LIMIT, MIB, Payload, figure, rounds
from bench.report import Report

SOCKET_BUFFER = 4 * MIB


def hash_rate(size: int) -> float:
    """MiB/s of MD5 and SHA-256 both over the same bytes, one thread, as a PUT stream does."""
    blocks = list(Payload(16 * MIB, salt=0).blocks())  # cycled: the hashes don't care
    md5, sha = hashlib.md5(), hashlib.sha256()
    begin = time.perf_counter()
    for i in range(size // MIB):
        block = blocks[i % len(blocks)]
        md5.update(block)
        sha.update(block)
    return size / MIB / (time.perf_counter() - begin)


def disk_rate(size: int) -> float:
    """MiB/s of writing ``size`` bytes in 1 MiB blocks then fsync, in the default temp dir
    (the same filesystem as the benchmarks' data directories)."""
    block = os.urandom(MIB)
    with tempfile.TemporaryDirectory() as tmp:
        fd = os.open(Path(tmp) / "disk.bin", os.O_WRONLY | os.O_CREAT)
        begin = time.perf_counter()
        for _ in range(size // MIB):
            os.write(fd, block)
        os.fsync(fd)
        seconds = time.perf_counter() - begin
        os.close(fd)
    return size / MIB / seconds


def small_fsync_rate(seconds: float) -> float:
    """New 4 KiB files written, fsynced and closed per second, for about ``seconds``."""
    data = os.urandom(4096)
    with tempfile.TemporaryDirectory() as tmp:
        count = 0
        begin = time.perf_counter()
        while (elapsed := time.perf_counter() - begin) < seconds:
            fd = os.open(Path(tmp) / f"f{count}", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            count += 1
    return count / elapsed


def loopback_rate(size: int) -> float:
    """MiB/s over 127.0.0.1: a sender thread and a receiver that only fills one buffer."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        sender = threading.Thread(target=_send, args=(server.getsockname()[1], size))
        sender.start()
        conn, _ = server.accept()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        view = memoryview(bytearray(SOCKET_BUFFER))
        received = 0
        begin = time.perf_counter()
        while received < size:
            n = conn.recv_into(view)
            if n == 0:
                raise RuntimeError("loopback sender closed early")
            received += n
        seconds = time.perf_counter() - begin
        conn.close()
        sender.join()
    return size / MIB / seconds


def _send(port: int, size: int) -> None:
    data = memoryview(os.urandom(SOCKET_BUFFER))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        for _ in range(size // SOCKET_BUFFER):
            sock.sendall(data)


def run(report: Report, *, quick: bool) -> None:
    gib = 2**30
    workloads: list[tuple[str, str, Callable[[], float]]] = [
        ("MD5+SHA-256 one core", "MiB/s", lambda: hash_rate(64 * MIB if quick else 256 * MIB)),
        ("disk write+fsync", "MiB/s", lambda: disk_rate(256 * MIB)),
        ("loopback TCP", "MiB/s", lambda: loopback_rate(256 * MIB if quick else gib)),
        ("fsync 4 KiB file", "ops/s", lambda: small_fsync_rate(1.0 if quick else 2.0)),
    ]
    for _ in range(rounds(quick)):
        for workload, unit, measure in workloads:
            figure(report, workload, LIMIT, unit).samples.append(measure())
