"""Requests exactly as botocore signs them, captured before they are sent, so a test can send
them (or a mutation of them) byte for byte over a raw socket."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon
from tests.raw import Reply, exchange


class _Captured(Exception):
    pass


@dataclass(frozen=True)
class Prepared:
    """One signed request: what goes on the request line, in the headers and in the body."""

    method: str
    host: str
    target: str
    headers: dict[str, str]
    body: bytes = b""

    def wire(self, *, target: str | None = None, host: str | None = None) -> bytes:
        """The request's bytes, optionally with another target or Host (the attacker's edit)."""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host",)}
        headers["Host"] = host or self.host
        headers["Content-Length"] = str(len(self.body))
        headers["Connection"] = "close"
        head = f"{self.method} {target or self.target} HTTP/1.1\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return head.encode("utf-8", "surrogateescape") + b"\r\n" + self.body

    def send(self, daemon: Daemon, **edit: str) -> Reply:
        reply = exchange(daemon, self.wire(**edit))
        assert reply is not None, "the daemon closed the connection without an answer"
        return reply


def s3_client(
    daemon: Daemon,
    *,
    region: str = "eu-central-1",
    signature_version: str | None = None,
    endpoint: str | None = None,
    addressing_style: str = "path",
) -> Any:
    """A boto3 client; SigV4 outside us-east-1, SigV2 with ``signature_version="s3"``."""
    config: dict[str, Any] = {
        "retries": {"max_attempts": 1},
        "s3": {"addressing_style": addressing_style},
        "request_checksum_calculation": "when_required",
    }
    if signature_version:
        config["signature_version"] = signature_version
    return boto3.client(
        "s3",
        endpoint_url=endpoint or daemon.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=region,
        config=Config(**config),
    )


def captured(client: Any, operation: str, **params: Any) -> Prepared:
    """The request ``client.<operation>(**params)`` would send, signed, without sending it."""
    box: list[Any] = []

    def grab(request: Any, **_: Any) -> None:
        box.append(request)
        raise _Captured

    client.meta.events.register_first("before-send.s3", grab)
    try:
        with contextlib.suppress(_Captured):
            getattr(client, operation)(**params)
    finally:
        client.meta.events.unregister("before-send.s3", grab)
    (request,) = box
    return _prepared(request.method, request.url, dict(request.headers), request.body)


def presigned(client: Any, operation: str, method: str = "GET", **params: Any) -> Prepared:
    url = client.generate_presigned_url(operation, Params=params, ExpiresIn=600)
    return from_url(url, method)


def from_url(url: str, method: str = "GET") -> Prepared:
    """A presigned URL as the request that uses it."""
    return _prepared(method, url, {})


def _prepared(method: str, url: str, headers: dict[str, Any], body: Any = b"") -> Prepared:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    text_headers = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in headers.items()}
    data = body if isinstance(body, bytes) else (body or b"")
    if not isinstance(data, bytes):
        data = data.read()
    return Prepared(
        method=method, host=parts.netloc, target=target, headers=text_headers, body=data
    )
