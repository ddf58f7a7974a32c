"""Raw HTTP for tests that must send what clients never would: exact bytes over a socket, forms
built by hand, and the daemon's metrics and staging area read back."""

from __future__ import annotations

import http.client
import re
import socket
import time
import urllib.request
from dataclasses import dataclass

from tests.daemon import Daemon
from tests.signing import sign

UNSIGNED = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def code(self) -> str | None:
        """The S3 error code, or None for a reply that is not an S3 error (aiohttp's own)."""
        match = re.search(rb"<Code>([^<]*)</Code>", self.body)
        return match[1].decode() if match else None


def connect(daemon: Daemon, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", daemon.s3_port), timeout=timeout)


def read_reply(sock: socket.socket, method: str = "GET") -> Reply | None:
    """The next response on ``sock``; None when the server closed without one."""
    response = http.client.HTTPResponse(sock, method=method)
    try:
        response.begin()
        return Reply(response.status, response.headers, response.read())
    except (http.client.RemoteDisconnected, ConnectionResetError):
        return None
    finally:
        response.close()  # its file object would keep the socket open after sock.close()


def exchange(daemon: Daemon, data: bytes, *, half_close: bool = False) -> Reply | None:
    with connect(daemon) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return read_reply(sock, data.split(b" ", 1)[0].decode("latin-1"))


def signed(
    daemon: Daemon,
    method: str,
    target: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    payload_hash: str = UNSIGNED,
) -> bytes:
    """The bytes of a request to ``target`` (sent exactly as given), signed as botocore would."""
    fields = sign(method, daemon.endpoint + target, headers=headers, payload_hash=payload_hash)
    fields["Host"] = f"127.0.0.1:{daemon.s3_port}"
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return head.encode() + b"\r\n" + body


def form_body(parts: list[tuple[str, str | bytes]], boundary: str = "lsform") -> bytes:
    """A multipart/form-data body of ``parts`` (the last one named "file" is sent as a file)."""
    out = bytearray()
    for name, value in parts:
        data = value.encode() if isinstance(value, str) else value
        disposition = f'form-data; name="{name}"'
        if name == "file":
            disposition += '; filename="upload.bin"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += data + b"\r\n"
    return bytes(out + f"--{boundary}--\r\n".encode())


def post_form(daemon: Daemon, bucket: str, body: bytes, boundary: str = "lsform") -> Reply | None:
    """POST ``body`` as a form to ``/bucket`` (Content-Type names ``boundary``)."""
    head = (
        f"POST /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{daemon.s3_port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return exchange(daemon, head.encode() + body)


def metric(daemon: Daemon, name: str, **labels: str) -> float:
    """The value of one sample of the daemon's /metrics (0 if it has none yet)."""
    url = f"http://127.0.0.1:{daemon.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample == (f"{name}{{{wanted}}}" if labels else name):
            return float(value)
    return 0.0


def wait_for_staged_file(daemon: Daemon, min_bytes: int) -> None:
    """Until an upload in progress has at least ``min_bytes`` in <data>/tmp: the test then
    knows the daemon is mid-body (the deadline only guards against a hang)."""
    tmp = daemon.data_dir / "tmp"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any(p.stat().st_size >= min_bytes for p in tmp.iterdir()):
            return
        time.sleep(0.02)
    raise AssertionError("the upload never reached the staging area")
