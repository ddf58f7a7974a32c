"""Real LightningSTOR daemons for tests, and the pytest plugin that hands them out.

Python teams test S3 code against moto; this gives them the real thing, as cheap to use. With
the package installed, pytest loads this plugin (entry point ``pytest11``), and a test asks for:

- ``aws_env``: the environment of code that makes its own clients: ``AWS_ENDPOINT_URL`` and
  credentials point at the session's daemon, so ``boto3.client("s3")`` just works (what
  ``@mock_aws`` gave);
- ``lightningstor_s3``: a boto3 S3 client of it (boto3 must be installed);
- ``lightningstor_grpc``: a :class:`lightningstor.client.SyncClient` of it (no event loop needed);
- ``lightningstor_client``: a factory of the async :class:`lightningstor.client.Client`;
- ``lightningstor``: the daemon itself (one per session, on a temp dir and free ports), with
  ``.endpoint`` (S3 URL), ``.grpc_target``, ``.access_key`` and ``.secret_key``;
- ``lightningstor_daemon``: a daemon of the test's own (a second or so to start), for tests
  that leave what cannot be removed (COMPLIANCE retention) or restart it.

Every test that uses one of the first four starts with no bucket, as under moto: after it,
the store is emptied (every version, delete marker and upload, then every bucket). The
daemon starts once per session, so a test pays for the reset, not for a start.

Our own test suite uses the same :class:`Daemon`.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lightningstor.client import Client, SyncClient

# Fixed credentials for this project's own suite; the plugin's daemons get random ones.
ACCESS_KEY = "LSTESTROOTKEY0000001"
SECRET_KEY = "test-secret-key-0123456789abcdef"  # noqa: S105 - a test fixture
REGION = "us-east-1"
START_TIMEOUT_SECONDS = 30.0
_START_ATTEMPTS = 3
_PORT_TAKEN = re.compile(r"cannot start: \w+_listen \S+: (cannot bind|.*address already in use)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {proc.returncode}:\n{log.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"daemon did not listen on {port}:\n{log.read_text()}")


@dataclass(frozen=True)
class TlsFiles:
    """A PEM certificate and its key; the certificate doubles as the clients' CA bundle."""

    cert: Path
    key: Path


def self_signed_cert(directory: Path) -> TlsFiles:
    """A fresh self-signed certificate for 127.0.0.1 and localhost, written under ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lightningstor test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(cert=directory / "cert.pem", key=directory / "key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@dataclass
class Daemon:
    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    tls: TlsFiles | None = None  # both listeners speak TLS with this certificate
    # The root credential the daemon creates on first start.
    access_key: str = ACCESS_KEY
    secret_key: str = field(default=SECRET_KEY, repr=False)
    s3_port: int = 0
    grpc_port: int = 0
    metrics_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def endpoint(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.s3_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTNINGSTOR_", "AWS_"))}
        env.update(
            LIGHTNINGSTOR_ROOT_ACCESS_KEY=self.access_key,
            LIGHTNINGSTOR_ROOT_SECRET_KEY=self.secret_key,
            LIGHTNINGSTOR_IO_WORKERS="8",
            LIGHTNINGSTOR_SHUTDOWN_GRACE_SECONDS="5",
            # Every test shares 127.0.0.1 and many fail on purpose; test_ratelimit sets its own.
            LIGHTNINGSTOR_AUTH_FAILURES_PER_MINUTE="0",
            LIGHTNINGSTOR_METRICS_LISTEN=f"127.0.0.1:{self.metrics_port}",
        )
        if self.tls is not None:
            env.update(
                LIGHTNINGSTOR_TLS_CERT_FILE=str(self.tls.cert),
                LIGHTNINGSTOR_TLS_KEY_FILE=str(self.tls.key),
            )
        env.update(self.extra_env)
        return env

    def start(self) -> Daemon:
        """Start the daemon on free ports. A port free when chosen can be taken before the
        daemon binds it (by another test's daemon, or as a client connection's local port);
        the daemon then refuses to start, and is started again on other ports."""
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-daemon.log"
        for attempt in range(_START_ATTEMPTS):
            logged = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                return self._start_once()
            except RuntimeError:
                with self.log_path.open("rb") as log:
                    log.seek(logged)
                    tail = log.read().decode(errors="replace")
                if attempt + 1 == _START_ATTEMPTS or not _PORT_TAKEN.search(tail):
                    raise
        raise AssertionError("unreachable")

    def _start_once(self) -> Daemon:
        assert self.log_path is not None
        self.s3_port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "lightningstor_server.cli",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--s3-listen",
                f"127.0.0.1:{self.s3_port}",
                "--grpc-listen",
                f"127.0.0.1:{self.grpc_port}",
            ],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for_port(self.s3_port, self.proc, self.log_path)
        wait_for_port(self.grpc_port, self.proc, self.log_path)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def rss_bytes(self) -> int:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path else ""


def boto3_client(daemon: Daemon, *, region: str = REGION, **config: Any) -> Any:
    import boto3  # noqa: PLC0415 - optional: only tests that ask for S3 clients need it
    from botocore.config import Config  # noqa: PLC0415

    return boto3.client(
        "s3",
        endpoint_url=daemon.endpoint,
        aws_access_key_id=daemon.access_key,
        aws_secret_access_key=daemon.secret_key,
        region_name=region,
        # A TLS daemon's self-signed certificate is the CA bundle: verified, never skipped.
        verify=str(daemon.tls.cert) if daemon.tls is not None else None,
        config=Config(retries={"max_attempts": 1}, **config),
    )


def client_env(daemon: Daemon) -> dict[str, str]:
    """What an AWS SDK or aws-cli needs in its environment to use ``daemon`` by itself."""
    env = {
        "AWS_ENDPOINT_URL": daemon.endpoint,
        "AWS_ACCESS_KEY_ID": daemon.access_key,
        "AWS_SECRET_ACCESS_KEY": daemon.secret_key,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    if daemon.tls is not None:
        env["AWS_CA_BUNDLE"] = str(daemon.tls.cert)
    return env


def aws_env_of(daemon: Daemon) -> dict[str, str]:
    """This process's environment, its AWS settings replaced by ``daemon``'s (for the
    subprocesses of our own tests)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return env | client_env(daemon)


def sync_client(daemon: Daemon) -> SyncClient:
    """A synchronous gRPC client of ``daemon``, with its root key (TLS if it speaks TLS)."""
    tls = daemon.tls
    return SyncClient(
        daemon.grpc_target,
        access_key_id=daemon.access_key,
        secret_access_key=daemon.secret_key,
        channel_credentials=(
            grpc.ssl_channel_credentials(root_certificates=tls.cert.read_bytes()) if tls else None
        ),
    )


def wipe(daemon: Daemon) -> None:
    """Remove every bucket the daemon holds and everything in them, as an admin (GOVERNANCE
    retention bypassed); a version under COMPLIANCE retention or a legal hold cannot go, and
    fails the reset with the bucket's name."""
    with sync_client(daemon) as ls:
        for bucket in ls.list_buckets():
            for version in ls.list_object_versions(bucket.name):
                ls.delete_object(
                    bucket.name,
                    version.key,
                    version_id=version.version_id,
                    bypass_governance_retention=True,
                )
            ls.delete_bucket(bucket.name)  # uploads in progress end with it


# --- the pytest plugin ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def lightningstor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A running LightningSTOR daemon for the test session, with its own root credential."""
    yield from _running(tmp_path_factory.mktemp("lightningstor") / "data")


@pytest.fixture
def lightningstor_clean(lightningstor: Daemon) -> Iterator[Daemon]:
    """The session's daemon, emptied after the test (see the module's docstring)."""
    yield lightningstor
    try:
        wipe(lightningstor)
    except Exception as exc:
        raise RuntimeError(
            f"lightningstor: the store could not be emptied after the test ({exc}); a test "
            "that locks objects for good needs the lightningstor_daemon fixture"
        ) from exc


@pytest.fixture
def lightningstor_s3(lightningstor_clean: Daemon) -> Iterator[Any]:
    """A boto3 S3 client of the session's daemon; no bucket before the test, none after."""
    client = boto3_client(lightningstor_clean)
    yield client
    client.close()


@pytest.fixture
def aws_env(lightningstor_clean: Daemon, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Points the AWS SDKs' environment at the session's daemon for the test (and nowhere
    else: profiles and config files are ignored); no bucket before the test, none after.
    Returns what it set."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    values = client_env(lightningstor_clean)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def lightningstor_grpc(lightningstor_clean: Daemon) -> Iterator[SyncClient]:
    """A synchronous gRPC client of the session's daemon; no bucket before the test."""
    with sync_client(lightningstor_clean) as client:
        yield client


@pytest.fixture
def lightningstor_daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A daemon of the test's own, stopped after it."""
    yield from _running(tmp_path / "lightningstor-data")


def _running(data_dir: Path) -> Iterator[Daemon]:
    """A daemon on ``data_dir`` with a root credential of its own, while the caller needs it."""
    daemon = Daemon(
        data_dir,
        access_key="LS" + secrets.token_hex(9).upper(),
        secret_key=secrets.token_urlsafe(30),
    ).start()
    yield daemon
    if daemon.proc is not None:
        daemon.stop()


@pytest.fixture
def lightningstor_client(lightningstor: Daemon) -> Callable[[], Client]:
    """Makes :class:`lightningstor.client.Client` for the session's daemon; use it inside the
    test's event loop: ``async with lightningstor_client() as ls: ...``."""

    def make() -> Client:
        return Client(
            lightningstor.grpc_target,
            access_key_id=lightningstor.access_key,
            secret_access_key=lightningstor.secret_key,
        )

    return make
