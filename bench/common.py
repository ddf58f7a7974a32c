"""What the benchmark modules share: the systems they start, signed raw HTTP, cheap test data.

The load generator is this process, so its per-byte work is kept far below the server's: data
is cycled from a few precomputed blocks, downloads land in one reused buffer, and integrity is
checked with awscrt's CRC32C (~10 GB/s), never MD5, inside a timed section.
"""

from __future__ import annotations

import http.client
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from awscrt import checksums
from botocore.credentials import Credentials

from bench.peers import MotoServer, RssSampler, S3Peer
from bench.report import Figure, Report
from tests.daemon import Daemon

# tests/signing.py's sign() has our daemon's access key built in; its signer class takes any
# credentials, which moto needs.
from tests.signing import FixedPayloadSigner

MIB = 2**20
BLOCK = MIB
OURS, GRPC, MOTO, LIMIT = "lightningstor-s3", "lightningstor-grpc", "moto", "limit"
ASYNCIO = "lightningstor-s3 asyncio"  # the same daemon with event_loop = "asyncio"
Peer = Daemon | MotoServer
T = TypeVar("T")


def rounds(quick: bool) -> int:
    return 2 if quick else 3


def rotated(systems: list[T], round_: int, last: T | None = None) -> list[T]:
    """``systems`` in a different order each round, ``last`` after all of them.

    What runs right after moto (which frees gigabytes when its object is deleted) gets memory
    that was just in use, which this VM hands out far faster than memory it has not touched
    lately (README, Performance): with moto ``last``, the system that follows it is the next
    list's first, and that place rotates among the others.
    """
    others = [system for system in systems if system != last]
    shift = round_ % len(others)
    return others[shift:] + others[:shift] + ([last] if last is not None else [])


def started(stack: ExitStack, peer: Peer) -> Peer:
    """``peer`` started, and stopped when ``stack`` closes."""
    peer.start()
    stack.callback(peer.stop)
    return peer


def daemon(stack: ExitStack, workdir: Path, name: str = "data", **env: str) -> Daemon:
    """Our daemon with its defaults (verify_reads on) plus ``env`` (LIGHTNINGSTOR_... = ...)."""
    peer = Daemon(workdir / name, extra_env=dict(env))
    started(stack, peer)
    return peer


def moto(stack: ExitStack, workdir: Path) -> MotoServer:
    peer = MotoServer(workdir / "moto")
    started(stack, peer)
    return peer


def figure(report: Report, workload: str, system: str, unit: str) -> Figure:
    """The figure of ``workload`` on ``system``, added on first use (rounds append samples)."""
    return report.find(workload, system) or report.add(Figure(workload, system, unit))


def sampler(peer: S3Peer) -> RssSampler:
    return RssSampler(peer)


def measured(fig: Figure, peer: Peer | None, work: Callable[[], T]) -> tuple[float, T]:
    """Seconds ``work`` took, and what it returned; the peer's RSS goes into ``fig``."""
    if peer is None:
        begin = time.perf_counter()
        result = work()
        return time.perf_counter() - begin, result
    with sampler(peer) as rss:
        begin = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - begin
    note_rss(fig, rss)
    return seconds, result


def note_rss(fig: Figure, rss: RssSampler) -> None:
    """Over all rounds of a figure: the lowest idle RSS, the highest peak."""
    fig.idle_rss_mib = min(rss.idle_mib, fig.idle_rss_mib or rss.idle_mib)
    fig.peak_rss_mib = max(rss.peak_mib, fig.peak_rss_mib or rss.peak_mib)


# --- signed raw HTTP ----------------------------------------------------------------------------
def sign_for(
    peer: Peer, method: str, path: str, headers: Mapping[str, str] | None = None
) -> dict[str, str]:
    """SigV4 headers for ``method path`` on ``peer``, body unsigned (as large uploads send)."""
    from botocore.awsrequest import AWSRequest  # noqa: PLC0415 - botocore is slow to import

    request = AWSRequest(method=method, url=peer.endpoint + path, headers=dict(headers or {}))
    signer = FixedPayloadSigner(Credentials(peer.access_key, peer.secret_key), "UNSIGNED-PAYLOAD")
    signer.add_auth(request)
    return dict(request.headers.items())


def connect(peer: Peer) -> http.client.HTTPConnection:
    port = urlsplit(peer.endpoint).port
    assert port is not None
    return http.client.HTTPConnection("127.0.0.1", port, timeout=600)


def call(
    conn: http.client.HTTPConnection,
    peer: Peer,
    method: str,
    path: str,
    body: bytes = b"",
) -> bytes:
    """One signed request on a kept-alive connection; the response body, or an error if not 2xx."""
    headers = sign_for(peer, method, path, {"Content-Length": str(len(body))})
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    if response.status >= 300:
        raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
    return data


def create_bucket(peer: Peer, bucket: str) -> None:
    conn = connect(peer)
    call(conn, peer, "PUT", f"/{bucket}")
    conn.close()


def delete_object(peer: Peer, path: str) -> None:
    """Frees what a round stored (moto keeps everything in memory), outside any timing."""
    conn = connect(peer)
    call(conn, peer, "DELETE", path)
    conn.close()


# --- data --------------------------------------------------------------------------------------
_TAILS = [os.urandom(BLOCK - 8) for _ in range(4)]


class Payload:
    """``size`` bytes in 1 MiB blocks, each an 8-byte prefix (its index and ``salt``) and one
    of four random tails: cheap to produce, and no two uploads share a block, so a
    content-addressed store cannot deduplicate one round against another."""

    def __init__(self, size: int, salt: int) -> None:
        assert size % BLOCK == 0
        self.size = size
        self.salt = salt
        crc = 0
        for block in self.blocks():
            crc = checksums.crc32c(block, crc)
        self.crc32c = crc  # computed before any timing starts

    def block(self, index: int) -> bytes:
        prefix = ((self.salt << 32) | index).to_bytes(8, "big")
        return prefix + _TAILS[index % len(_TAILS)]

    def blocks(self, first: int = 0, count: int | None = None) -> Iterator[bytes]:
        end = self.size // BLOCK if count is None else first + count
        for index in range(first, end):
            yield self.block(index)

    def part_crc32c(self, first: int, count: int) -> int:
        crc = 0
        for block in self.blocks(first, count):
            crc = checksums.crc32c(block, crc)
        return crc


def put_stream(peer: Peer, path: str, size: int, blocks: Iterator[bytes]) -> str:
    """PUT ``size`` bytes from ``blocks`` on a new connection; the ETag answered."""
    conn = connect(peer)
    conn.putrequest("PUT", path, skip_accept_encoding=True)
    for name, value in sign_for(peer, "PUT", path, {"Content-Length": str(size)}).items():
        conn.putheader(name, value)
    conn.endheaders()
    for block in blocks:
        conn.send(block)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"PUT {path}: {response.status} {body[:300]!r}")
    return response.getheader("ETag") or ""


_buffer = bytearray(4 * MIB)  # downloads run one at a time per process: one buffer serves all


def get_crc32c(peer: Peer, path: str) -> tuple[int, int]:
    """GET ``path`` into a reused buffer: (bytes received, their CRC32C)."""
    conn = connect(peer)
    conn.request("GET", path, headers=sign_for(peer, "GET", path))
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {response.read()[:300]!r}")
    view = memoryview(_buffer)
    total = crc = 0
    while n := response.readinto(view):
        crc = checksums.crc32c(view[:n], crc)
        total += n
    conn.close()
    return total, crc
