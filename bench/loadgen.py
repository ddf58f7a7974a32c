"""A lean HTTP/1.1 load generator for what wrk cannot send: HEAD (wrk waits for a body the
size of Content-Length that a HEAD response never carries, then times out).

``python -m bench.loadgen HOST PORT PATHS_FILE METHOD CONCURRENCY SECONDS`` replays one line of
PATHS_FILE per request over CONCURRENCY keep-alive connections and prints wrk-like JSON
(``requests``, ``duration_us``, ``status_errors``, ``socket_errors``). Raw asyncio protocols
on uvloop when it is installed: a request costs the client a few microseconds of Python.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import cast


class Connection(asyncio.Protocol):
    """Sends one request at a time and recognises the end of each bodiless response."""

    def __init__(self, requests: list[bytes], run: Run) -> None:
        self.requests = requests
        self.run = run
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        self.send_next()

    def send_next(self) -> None:
        assert self.transport is not None
        if time.monotonic() >= self.run.deadline:
            self.transport.close()
            return
        self.transport.write(self.requests[self.run.next_index()])

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            status = int(head[9:12])
            self.run.done += 1
            self.run.status_errors += status >= 400
            if b"connection: close" in head.lower():  # the server is done with it
                assert self.transport is not None
                self.transport.close()
                return
            self.send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.socket_errors += exc is not None
        if not self.closed.done():
            self.closed.set_result(None)


class Run:
    def __init__(self, count: int, seconds: float) -> None:
        self.count = count
        self.index = 0
        self.deadline = time.monotonic() + seconds
        self.done = self.status_errors = self.socket_errors = 0

    def next_index(self) -> int:
        self.index = (self.index + 1) % self.count
        return self.index


async def main(host: str, port: int, paths: list[str], method: str, c: int, s: float) -> None:
    requests = [f"{method} {p} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode() for p in paths]
    run = Run(len(requests), s)
    loop = asyncio.get_running_loop()

    async def worker() -> None:
        # A server may close after any response (moto's does after every HEAD): reconnect,
        # as wrk does, until the time is up.
        while time.monotonic() < run.deadline:
            _transport, protocol = await loop.create_connection(
                lambda: Connection(requests, run), host, port
            )
            await protocol.closed

    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(c))), s + 30)
    elapsed = time.monotonic() - started
    print(
        json.dumps(
            {
                "requests": run.done,
                "duration_us": int(elapsed * 1e6),
                "status_errors": run.status_errors,
                "socket_errors": run.socket_errors,
            }
        )
    )


if __name__ == "__main__":
    host, port, paths_file, method, concurrency, seconds = sys.argv[1:7]
    if method != "HEAD":
        raise SystemExit("only HEAD: responses with bodies are wrk's job")
    lines = Path(paths_file).read_text().split()
    coroutine = main(host, int(port), lines, method, int(concurrency), float(seconds))
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)
    else:
        uvloop.run(coroutine)
