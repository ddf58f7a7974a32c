"""aws-chunked uploads against a real daemon: boto3 and the aws-cli over TLS (where they send
STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 trailer by default), and hand-framed signed
bodies over plain HTTP, including every way to get one wrong."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from botocore.exceptions import ClientError

from lightningstor.client import Client
from tests.daemon import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    Daemon,
    aws_env_of,
    boto3_client,
    self_signed_cert,
)
from tests.s3.test_chunked import botocore_body, crc32_b64, derive_key, signed_body
from tests.signing import sign

VENV_AWS = str(Path(sys.executable).with_name("aws"))
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def tls_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    base = tmp_path_factory.mktemp("tls")
    d = Daemon(base / "data", tls=self_signed_cert(base / "tls")).start()
    yield d
    if d.proc is not None:
        assert d.stop() == 0, d.log_text()


@pytest.fixture(scope="module")
def tls_s3(tls_daemon: Daemon) -> Any:
    client = boto3_client(tls_daemon)
    client.create_bucket(Bucket="tls")
    return client


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket="chunked")
    return "chunked"


def sent_headers(client: Any) -> list[dict[str, str]]:
    """Records the headers of every request ``client`` sends from now on."""
    captured: list[dict[str, str]] = []

    def capture(request: Any, **_: Any) -> None:
        captured.append(
            {
                name.lower(): value.decode() if isinstance(value, bytes) else value
                for name, value in request.headers.items()
            }
        )

    client.meta.events.register("before-send.s3", capture)
    return captured


def _checksum_trailer_form(headers: dict[str, str]) -> bool:
    return (
        headers.get("x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
        and headers.get("x-amz-trailer") == "x-amz-checksum-crc32"
        and "aws-chunked" in headers.get("content-encoding", "")
        and "content-length" not in headers
    )


# --- real clients over TLS ---------------------------------------------------------------------
def test_boto3_put_object_over_https(tls_s3: Any) -> None:
    data = os.urandom(3 * MiB + 5)
    captured = sent_headers(tls_s3)
    put = tls_s3.put_object(Bucket="tls", Key="put", Body=data)
    assert _checksum_trailer_form(captured[-1]), captured[-1]
    assert put["ChecksumCRC32"] == crc32_b64(data)
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert tls_s3.get_object(Bucket="tls", Key="put")["Body"].read() == data
    head = tls_s3.head_object(Bucket="tls", Key="put", ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(data)
    assert "ContentEncoding" not in head  # aws-chunked described the transfer, not the object
    assert head["ChecksumCRC32"] == crc32_b64(data)


def test_boto3_upload_fileobj_single_part_over_https(tls_s3: Any) -> None:
    data = os.urandom(5 * MiB + 3)  # below s3transfer's 8 MiB multipart threshold
    captured = sent_headers(tls_s3)
    tls_s3.upload_fileobj(io.BytesIO(data), "tls", "fileobj")
    puts = [h for h in captured if _checksum_trailer_form(h)]
    assert len(puts) == 1, captured
    assert tls_s3.get_object(Bucket="tls", Key="fileobj")["Body"].read() == data
    head = tls_s3.head_object(Bucket="tls", Key="fileobj", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32_b64(data)
    assert "ContentEncoding" not in head


def test_a_users_content_encoding_is_kept_without_aws_chunked(tls_s3: Any) -> None:
    captured = sent_headers(tls_s3)
    tls_s3.put_object(Bucket="tls", Key="gz", Body=b"\x1f\x8b pretend", ContentEncoding="gzip")
    assert captured[-1]["content-encoding"] == "gzip,aws-chunked"
    assert tls_s3.head_object(Bucket="tls", Key="gz")["ContentEncoding"] == "gzip"


def test_empty_object_over_https(tls_s3: Any) -> None:
    put = tls_s3.put_object(Bucket="tls", Key="empty", Body=b"")
    assert put["ChecksumCRC32"] == crc32_b64(b"")
    assert tls_s3.get_object(Bucket="tls", Key="empty")["Body"].read() == b""


def test_awscli_cp_round_trip_over_https(tls_daemon: Daemon, tmp_path: Path) -> None:
    assert tls_daemon.tls is not None
    ca_bundle = str(tls_daemon.tls.cert)
    src, back = tmp_path / "up.bin", tmp_path / "down.bin"
    src.write_bytes(os.urandom(3 * MiB + 17))

    def aws(*args: str) -> None:
        done = subprocess.run(
            [VENV_AWS, "--endpoint-url", tls_daemon.endpoint, "--ca-bundle", ca_bundle, *args],
            env=aws_env_of(tls_daemon),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"aws {' '.join(args)}:\n{done.stdout}\n{done.stderr}"

    aws("s3", "mb", "s3://cli-tls")
    aws("s3", "cp", str(src), "s3://cli-tls/file.bin")
    aws("s3", "cp", "s3://cli-tls/file.bin", str(back))
    assert back.read_bytes() == src.read_bytes()
    head = boto3_client(tls_daemon).head_object(Bucket="cli-tls", Key="file.bin")
    assert "ContentEncoding" not in head


def test_grpc_over_tls_reads_what_s3_wrote(tls_daemon: Daemon, tls_s3: Any) -> None:
    assert tls_daemon.tls is not None
    tls_s3.put_object(Bucket="tls", Key="parity", Body=b"same bytes both ways")
    credentials = grpc.ssl_channel_credentials(tls_daemon.tls.cert.read_bytes())

    async def read() -> bytes:
        async with Client(
            tls_daemon.grpc_target,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
            channel_credentials=credentials,
        ) as client:
            return await client.get_object("tls", "parity")

    assert asyncio.run(read()) == b"same bytes both ways"


# --- hand-framed bodies over plain HTTP ---------------------------------------------------------
def _put(
    daemon: Daemon,
    path: str,
    body: bytes,
    *,
    payload_hash: str,
    headers: dict[str, str],
    chunked_transfer: bool = False,
    build: Callable[[dict[str, str]], bytes] | None = None,
) -> tuple[int, bytes, http.client.HTTPResponse]:
    """Signs the headers (the seed), then sends ``body``, or ``build(seed headers)``."""
    to_sign = dict(headers)
    if not chunked_transfer:
        to_sign["Content-Length"] = str(len(body))
    signed = sign("PUT", daemon.endpoint + path, headers=to_sign, payload_hash=payload_hash)
    if build is not None:
        body = build(signed)
        if not chunked_transfer:
            assert len(body) == int(signed["Content-Length"])
    conn = http.client.HTTPConnection("127.0.0.1", daemon.s3_port, timeout=30)
    if chunked_transfer:
        signed["Transfer-Encoding"] = "chunked"
        pieces = iter([body[i : i + 50_000] for i in range(0, len(body), 50_000)])
        conn.request("PUT", path, body=pieces, headers=signed, encode_chunked=True)
    else:
        conn.request("PUT", path, body=body, headers=signed)
    response = conn.getresponse()
    reply = response.read()
    conn.close()
    return response.status, reply, response


def _signer_for(
    parts: list[bytes], trailer: tuple[str, str] | None = None, corrupt_at: int | None = None
) -> Callable[[dict[str, str]], bytes]:
    """Builds the signed body once the seed signature (the Authorization header) exists."""

    def build(headers: dict[str, str]) -> bytes:
        amz_date = headers["X-Amz-Date"]
        seed = re.search(r"Signature=([0-9a-f]{64})", headers["Authorization"])
        assert seed is not None
        body = signed_body(
            parts,
            key=derive_key(SECRET_KEY, amz_date[:8], REGION),
            seed=seed[1],
            trailer=trailer,
            amz_date=amz_date,
            scope=f"{amz_date[:8]}/{REGION}/s3/aws4_request",
        )
        if corrupt_at is None:
            return body
        damaged = bytearray(body)
        damaged[corrupt_at] ^= 0x20
        return bytes(damaged)

    return build


def _framed_length(parts: list[bytes], trailer: tuple[str, str] | None = None) -> int:
    dummy = signed_body(parts, key=b"k", seed="0" * 64, trailer=trailer)
    return len(dummy)


SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
PARTS = [os.urandom(64 * 1024) for _ in range(4)] + [os.urandom(1000)]
DATA = b"".join(PARTS)


def _chunked_headers(*, trailer: bool = False) -> dict[str, str]:
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(DATA))}
    if trailer:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    return headers


def _signed_put(
    daemon: Daemon,
    key: str,
    *,
    payload_hash: str = SIGNED,
    trailer: tuple[str, str] | None = None,
    corrupt_at: int | None = None,
    chunked_transfer: bool = False,
) -> tuple[int, bytes, http.client.HTTPResponse]:
    framed = b"\0" * _framed_length(PARTS, trailer)  # the real body is signed after the seed
    return _put(
        daemon,
        f"/chunked/{key}",
        framed,
        payload_hash=payload_hash,
        headers=_chunked_headers(trailer=trailer is not None),
        chunked_transfer=chunked_transfer,
        build=_signer_for(PARTS, trailer, corrupt_at),
    )


def _object(s3: Any, key: str) -> bytes | None:
    try:
        reply = s3.get_object(Bucket="chunked", Key=key)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchKey"
        return None
    body: bytes = reply["Body"].read()
    return body


@pytest.mark.parametrize("chunked_transfer", [False, True])
def test_signed_streaming_put_round_trips(
    daemon: Daemon, s3: Any, bucket: str, chunked_transfer: bool
) -> None:
    key = f"signed-{chunked_transfer}"
    status, reply, response = _signed_put(daemon, key, chunked_transfer=chunked_transfer)
    assert status == 200, reply
    assert response.getheader("ETag") == f'"{hashlib.md5(DATA).hexdigest()}"'
    assert _object(s3, key) == DATA
    assert "ContentEncoding" not in s3.head_object(Bucket=bucket, Key=key)


def test_signed_trailer_put_echoes_its_checksum(daemon: Daemon, s3: Any, bucket: str) -> None:
    trailer = ("x-amz-checksum-crc32", crc32_b64(DATA))
    status, reply, response = _signed_put(
        daemon,
        "signed-trailer",
        payload_hash=SIGNED_TRAILER,
        trailer=trailer,
    )
    assert status == 200, reply
    assert response.getheader("x-amz-checksum-crc32") == crc32_b64(DATA)
    assert _object(s3, "signed-trailer") == DATA


def test_wrong_chunk_signature_keeps_the_old_object(daemon: Daemon, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="victim", Body=b"old object")
    corrupt_at = _framed_length(PARTS) - 500  # data of the last chunk: earlier ones were staged
    status, reply, _ = _signed_put(daemon, "victim", corrupt_at=corrupt_at)
    assert status == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in reply
    assert _object(s3, "victim") == b"old object"


def test_wrong_trailer_checksum_is_bad_digest(daemon: Daemon, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="victim-crc", Body=b"old object")
    trailer = ("x-amz-checksum-crc32", crc32_b64(b"something else"))  # correctly signed, wrong
    status, reply, _ = _signed_put(
        daemon,
        "victim-crc",
        payload_hash=SIGNED_TRAILER,
        trailer=trailer,
    )
    assert status == 400
    assert b"<Code>BadDigest</Code>" in reply
    assert _object(s3, "victim-crc") == b"old object"


def test_unsigned_trailer_over_plain_http(daemon: Daemon, s3: Any, bucket: str) -> None:
    # A TLS proxy in front makes clients send this over what the daemon sees as plain HTTP.
    data = os.urandom(2 * MiB + 1)
    good = botocore_body(data)
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    payload_hash = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    status, reply, response = _put(
        daemon, "/chunked/unsigned", good, payload_hash=payload_hash, headers=headers
    )
    assert status == 200, reply
    assert response.getheader("x-amz-checksum-crc32") == crc32_b64(data)
    bad = good.replace(crc32_b64(data).encode(), crc32_b64(b"x").encode())
    status, reply, _ = _put(
        daemon, "/chunked/unsigned", bad, payload_hash=payload_hash, headers=headers
    )
    assert (status, b"<Code>BadDigest</Code>" in reply) == (400, True)
    assert _object(s3, "unsigned") == data


def test_truncated_body_stores_nothing(daemon: Daemon, s3: Any, bucket: str) -> None:
    body = botocore_body(DATA, chunk_size=65536)
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(DATA)),
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    status, reply, _ = _put(
        daemon,
        "/chunked/truncated",
        body[: len(body) // 2],
        payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        headers=headers,
    )
    assert status == 400
    assert b"<Code>IncompleteBody</Code>" in reply
    assert _object(s3, "truncated") is None
    assert list((daemon.data_dir / "tmp").iterdir()) == []


def test_truncated_signed_body_stores_nothing(daemon: Daemon, s3: Any, bucket: str) -> None:
    def build(headers: dict[str, str]) -> bytes:
        return _signer_for(PARTS)(headers)[:100_000]

    status, reply, _ = _put(
        daemon,
        "/chunked/truncated-signed",
        b"",
        payload_hash=SIGNED,
        headers=_chunked_headers(),
        chunked_transfer=True,
        build=build,
    )
    assert status == 400
    assert b"<Code>IncompleteBody</Code>" in reply
    assert _object(s3, "truncated-signed") is None


@pytest.mark.parametrize(
    ("payload_hash", "headers", "body", "status", "code"),
    [
        (  # no chunk signatures and no checksum: nothing would protect the bytes
            "STREAMING-UNSIGNED-PAYLOAD",
            {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": "5"},
            b"5\r\nhello\r\n0\r\n\r\n",
            400,
            "InvalidRequest",
        ),
        (
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            {"Content-Encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32"},
            b"5\r\nhello\r\n0\r\n\r\n",
            411,
            "MissingContentLength",
        ),
        (  # garbage framing in a signed body: a framing error, never an auth error
            SIGNED,
            {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": "5"},
            b"hello world, no framing at all\r\n",
            400,
            "InvalidRequest",
        ),
    ],
)
def test_refusals_are_precise(
    daemon: Daemon,
    s3: Any,
    bucket: str,
    payload_hash: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
    code: str,
) -> None:
    got, reply, _ = _put(
        daemon, "/chunked/refused", body, payload_hash=payload_hash, headers=headers
    )
    assert (got, f"<Code>{code}</Code>".encode() in reply) == (status, True), reply
    assert _object(s3, "refused") is None


def test_the_readmes_tls_example_for_the_python_client(
    tls_daemon: Daemon, tls_s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's example, run as written against a TLS daemon (only its address and its
    certificate's file differ)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("Over TLS (`tls_cert_file`") :]
    example = section[section.index("```python\n") + 10 : section.index("```\n", 10)]
    assert tls_daemon.tls is not None
    shutil.copy(tls_daemon.tls.cert, tmp_path / "tls.crt")
    monkeypatch.chdir(tmp_path)
    printed: list[object] = []
    code = example.replace('"127.0.0.1:50051"', repr(tls_daemon.grpc_target))
    exec(
        code,
        {"key_id": tls_daemon.access_key, "secret": tls_daemon.secret_key, "print": printed.append},
    )
    assert "tls" in [b.name for b in printed[0]]  # type: ignore[attr-defined]
