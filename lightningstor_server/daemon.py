"""Process lifecycle: open the store, serve both doors on one loop, stop gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from aiohttp import web

from lightningstor.auth.access import AccessSettings
from lightningstor.auth.credentials import (
    CredentialStore,
    load_or_create_master_key,
    new_access_key_id,
    new_secret_access_key,
    write_private,
)
from lightningstor.auth.identities import Identities
from lightningstor.blobs.scrub import SCRUB_STATE_FILE
from lightningstor.objects.stats import StoreStats
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from lightningstor_server.config import Config, parse_listen
from lightningstor_server.grpc.server import GrpcDoor, start_grpc_door
from lightningstor_server.metrics import METRICS, metrics_app
from lightningstor_server.notify import Notifier
from lightningstor_server.ratelimit import FailedAuthLimiter
from lightningstor_server.s3.app import S3App, make_gateway

log = logging.getLogger("lightningstor.daemon")

FIGURES_TTL_SECONDS = 60.0
# After the grace period: the pool drains and the store closes (seconds, generously).
_CLOSE_SECONDS = 10.0
_CUT_OFF_SECONDS = 0.1
# Set once both doors serve and the store is open; cleared as shutdown begins (/ready).
READY = asyncio.Event()

ROOT_CREDENTIALS_FILE = "root-credentials.env"


@dataclass(slots=True)
class Running:
    """A serving daemon: what tests and ``serve`` need to reach and stop it."""

    store: ObjectStore
    offloader: Offloader
    runner: web.AppRunner
    gateway: S3App
    grpc_door: GrpcDoor
    s3_port: int
    gc_task: asyncio.Task[None]
    grace_seconds: float
    scrub_task: asyncio.Task[None] | None = None
    lifecycle_task: asyncio.Task[None] | None = None
    metrics_runner: web.AppRunner | None = None

    async def stop(self) -> None:
        log.info("shutting down: refusing new requests, finishing in-flight ones")
        for task in (self.gc_task, self.scrub_task, self.lifecycle_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # a scrub saves its place first
        await self.grpc_door.not_serving()
        await asyncio.gather(self.grpc_door.server.stop(self.grace_seconds), self._stop_s3())
        # Requests cut off after the grace period may still have work on the pool; LevelDB
        # must outlive all of it, so the pool drains first and the store closes after.
        await asyncio.get_running_loop().run_in_executor(None, self.offloader.shutdown)
        if self.metrics_runner is not None:
            await self.metrics_runner.cleanup()
        self.store.close()
        log.info("store closed cleanly")

    async def _stop_s3(self) -> None:
        for site in list(self.runner.sites):
            await site.stop()  # stop listening; open connections stay for in-flight requests
        left = await self.gateway.drain(self.grace_seconds)
        if left:
            log.warning("grace period over: cutting off %d S3 requests", left)
        await self.runner.cleanup()


async def ensure_root_credential(
    config: Config, credentials: CredentialStore, offloader: Offloader
) -> Path | None:
    """Create the root key on first start; returns the file holding it, if we wrote one."""
    path = config.data_dir / ROOT_CREDENTIALS_FILE
    if await credentials.any_exists():
        return path if path.exists() else None
    access_key = config.root_access_key or new_access_key_id()
    secret = config.root_secret_key or new_secret_access_key()
    written = None
    if config.root_secret_key is None:  # an operator-supplied secret is never echoed to a file
        # The file first: a crash before the credential commits leaves a file for a key that
        # does not exist yet (the next start writes a new one), never a key nobody can read.
        text = (
            f"export AWS_ACCESS_KEY_ID={access_key}\n"
            f"export AWS_SECRET_ACCESS_KEY={secret}\n"
            f"export AWS_DEFAULT_REGION={config.region}\n"
        )
        await offloader.run(write_private, path, text.encode())
        written = path
    await credentials.create(
        access_key_id=access_key, secret_access_key=secret, name="root", admin=True
    )
    log.info("created root credential %s", access_key)
    return written


def master_key_location(config: Config, environ: Mapping[str, str]) -> Path:
    """The configured file, else a systemd credential (``LoadCredential=master.key:...``, kept
    off the data disk), else ``<data_dir>/master.key`` (created on first start)."""
    if config.master_key_file is not None:
        return config.master_key_file
    credentials = environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / "master.key").is_file():
        return Path(credentials) / "master.key"
    return config.data_dir / "master.key"


def wrong_master_key(path: Path, data_dir: Path) -> str:
    """What to do about a master key that does not open the store: the daemon would otherwise
    report READY and answer every signed request with 500."""
    return (
        f"the master key {path} does not open the credentials of the store in {data_dir}: they "
        "were sealed with another key. Give the daemon the store's own key (made on its first "
        f"start as {data_dir / 'master.key'}; master_key_file or systemd's "
        "LoadCredential=master.key name the file it reads), or, if a rotate-master-key was "
        f"interrupted, run `lightningstor admin rotate-master-key --data-dir {data_dir}` again "
        "to finish it. Do not generate a new key: it cannot open the stored secrets."
    )


async def _maintain_forever(store: ObjectStore, config: Config) -> None:
    """Sweep abandoned multipart uploads, then collect unreferenced blobs, periodically."""
    while True:
        try:
            swept = await store.uploads.sweep(older_than_seconds=config.stale_upload_seconds)
            METRICS.workers.state.uploads_swept += swept
            if swept:
                log.info(
                    "swept %d multipart uploads older than %.0f s",
                    swept,
                    config.stale_upload_seconds,
                )
            collected = await store.collect_garbage()
            METRICS.workers.state.gc_collected += collected
            METRICS.workers.state.gc_runs += 1
            if collected:
                log.info("collected %d unreferenced blobs", collected)
        except Exception:
            log.exception("maintenance failed; will retry")
        await asyncio.sleep(config.gc_interval_seconds)


@dataclass(frozen=True, slots=True)
class _Tls:
    """One certificate and key, in the form each listener wants them."""

    http: ssl.SSLContext
    grpc: grpc.ServerCredentials


def _load_tls(config: Config) -> _Tls | None:
    if config.tls_cert_file is None or config.tls_key_file is None:
        return None
    try:
        cert = config.tls_cert_file.read_bytes()
        key = config.tls_key_file.read_bytes()
        # Server-side defaults of the standard library: TLS 1.2+, no compression, good ciphers.
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    except OSError as exc:  # ssl.SSLError (a bad PEM, a key not matching) is one too
        # The CLI reports an OSError at start-up as "cannot start: ..." and exits 1.
        raise OSError(_tls_problem(config.tls_cert_file, config.tls_key_file, exc)) from exc
    return _Tls(http=context, grpc=grpc.ssl_server_credentials([(key, cert)]))


def _tls_problem(cert: Path, key: Path, exc: OSError) -> str:
    """Which of the two files is wrong: ssl only says "PEM lib"."""
    if not isinstance(exc, ssl.SSLError):
        return f"tls_cert_file {cert} / tls_key_file {key}: {exc}"
    try:
        ssl.create_default_context().load_verify_locations(cafile=cert)
    except ssl.SSLError:
        return f"tls_cert_file {cert}: not a PEM certificate ({exc})"
    return f"tls_key_file {key}: not a PEM private key of the certificate in {cert} ({exc})"


async def start(config: Config) -> Running:
    """Open the store and serve both doors and the metrics listener. What a start-up that
    fails half way had opened is closed again (in reverse), and "serving" is logged only once
    every listener is bound."""
    async with contextlib.AsyncExitStack() as opened:
        offloader = Offloader(workers=config.io_workers)
        opened.push_async_callback(_shut_down_pool, offloader)
        # Before anything is created: a bad certificate stops start-up with no side effects.
        tls = await offloader.run(_load_tls, config)
        store = await offloader.run(
            functools.partial(
                ObjectStore.open,
                config.data_dir,
                offloader=offloader,
                gc_delay_seconds=config.gc_delay_seconds,
                inline_max_bytes=config.inline_max_bytes,
                min_part_bytes=config.min_part_bytes,
                verify_reads=config.verify_reads,
                min_free_bytes=config.min_free_bytes,
            )
        )
        opened.callback(store.close)  # after the pool has drained (callbacks run in reverse)
        master_key_path = master_key_location(config, os.environ)
        master_key = await offloader.run(load_or_create_master_key, master_key_path)
        credentials = store.credential_store(master_key)
        if not await offloader.run(credentials.opens_store):
            raise OSError(wrong_master_key(master_key_path, config.data_dir))
        cred_file = await ensure_root_credential(config, credentials, offloader)
        # One failed-authentication budget per (source address, key id), shared by both doors.
        limiter = FailedAuthLimiter(failures=config.auth_failures_per_minute)
        access = AccessSettings(
            block_public_access=config.block_public_access,
            keys_create_buckets=config.keys_create_buckets,
            legacy_bucket_defaults=config.legacy_bucket_defaults,
        )
        gateway = make_gateway(
            store,
            offloader=offloader,
            region=config.region,
            lookup=credentials.lookup,
            virtual_host_domains=config.virtual_host_domains,
            limiter=limiter,
            access=access,
            identities=Identities(credentials),
        )
        runner, s3_host, s3_port = await _start_s3(config, gateway, tls)
        opened.push_async_callback(runner.cleanup)
        grpc_door = await start_grpc_door(
            store=store,
            credentials=credentials,
            listen=config.grpc_listen,
            server_credentials=tls.grpc if tls is not None else None,
            limiter=limiter,
            max_concurrent_calls=config.grpc_max_concurrent_calls,
            max_open_calls=config.grpc_max_open_calls,
            access=access,
        )
        opened.push_async_callback(grpc_door.server.stop, None)
        lifecycle = store.lifecycle_worker(
            interval_seconds=config.lifecycle_interval_seconds,
            objects_per_second=config.lifecycle_objects_per_second,
            day_seconds=config.lifecycle_day_seconds,
        )
        METRICS.lifecycle.state = lambda: lifecycle.state
        metrics_runner = await _start_metrics(config, store)
        if metrics_runner is not None:
            opened.push_async_callback(metrics_runner.cleanup)
        gc_task = asyncio.create_task(_maintain_forever(store, config))
        scrubber = store.scrubber(
            bytes_per_second=config.scrub_bytes_per_second,
            interval_seconds=config.scrub_interval_seconds,
            state_path=config.data_dir / SCRUB_STATE_FILE,
        )
        # Low priority by its rate alone: one block at a time through the same pool as requests.
        scrub_task = asyncio.create_task(scrubber.run_forever()) if scrubber.enabled else None
        METRICS.workers.state.corrupt_reads = lambda: store.corrupt_reads
        METRICS.workers.state.scrub = lambda: scrubber.results if scrubber.enabled else None
        lifecycle_task = asyncio.create_task(lifecycle.run_forever()) if lifecycle.enabled else None
        _log_serving(
            config,
            tls=tls is not None,
            host=s3_host,
            s3_port=s3_port,
            grpc_port=grpc_door.port,
            cred_file=cred_file,
        )
        opened.pop_all()  # started: from now on Running.stop closes everything, in order
        return Running(
            store=store,
            offloader=offloader,
            runner=runner,
            gateway=gateway,
            grpc_door=grpc_door,
            s3_port=s3_port,
            gc_task=gc_task,
            grace_seconds=config.shutdown_grace_seconds,
            scrub_task=scrub_task,
            lifecycle_task=lifecycle_task,
            metrics_runner=metrics_runner,
        )
    raise AssertionError("unreachable: the block returns or raises")


async def _shut_down_pool(offloader: Offloader) -> None:
    await asyncio.get_running_loop().run_in_executor(None, offloader.shutdown)


async def _start_s3(
    config: Config, gateway: S3App, tls: _Tls | None
) -> tuple[web.AppRunner, str, int]:
    runner = web.AppRunner(
        gateway.build(),
        access_log=None,
        handle_signals=False,
        # Our drain (Running._stop_s3) is the one grace period; whatever is still running
        # after it is cut off at once, not given aiohttp's own timeout on top (0 would be
        # aiohttp's "no timeout": wait forever).
        shutdown_timeout=_CUT_OFF_SECONDS,
        keepalive_timeout=config.http_keepalive_seconds,
        max_line_size=config.http_max_header_bytes,
        max_field_size=config.http_max_header_bytes,
    )
    await runner.setup()
    try:
        host, port = parse_listen(config.s3_listen, "s3_listen")
        site = web.TCPSite(
            runner,
            host,
            port,
            ssl_context=tls.http if tls is not None else None,
        )
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(f"s3_listen {config.s3_listen}: {exc.strerror or exc}") from exc
    except BaseException:
        await runner.cleanup()
        raise
    return runner, host, runner.addresses[0][1]


def _log_serving(
    config: Config, *, tls: bool, host: str, s3_port: int, grpc_port: int, cred_file: Path | None
) -> None:
    scheme = "https" if tls else "http"
    log.info(
        "LightningSTOR serving S3 on %s://%s:%d and gRPC%s on %s:%d (metrics: %s), data in %s, "
        "%s loop",
        scheme,
        host,
        s3_port,
        " (TLS)" if tls else "",
        parse_listen(config.grpc_listen)[0],
        grpc_port,
        config.metrics_listen or "off",
        config.data_dir,
        type(asyncio.get_running_loop()).__module__.split(".")[0],
    )
    if cred_file is not None:
        log.info(
            "root credentials are in %s: run `. %s` then `aws --endpoint-url %s://%s:%d s3 ls`",
            cred_file,
            cred_file,
            scheme,
            host,
            s3_port,
        )


async def _start_metrics(config: Config, store: ObjectStore) -> web.AppRunner | None:
    """The Prometheus and probe listener, apart from the S3 door so it can stay private."""
    if not config.metrics_listen:
        return None
    cache: dict[str, tuple[float, StoreStats]] = {}

    async def figures() -> StoreStats:
        # A full keyspace pass: at most once a minute, on the pool.
        cached = cache.get("figures")
        if cached is None or time.monotonic() - cached[0] > FIGURES_TTL_SECONDS:
            cached = (time.monotonic(), await store.stats(config.data_dir))
            cache["figures"] = cached
        return cached[1]

    app = metrics_app(
        METRICS,
        figures=figures,
        ready=READY.is_set,
    )
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        host, port = parse_listen(config.metrics_listen, "metrics_listen")
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(f"metrics_listen {config.metrics_listen}: {exc}") from exc
    log.info("metrics and probes on http://%s:%d/metrics (/health, /ready)", host, port)
    return runner


async def serve(config: Config) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    notifier = Notifier()
    running = await start(config)
    READY.set()
    notifier.ready(f"serving S3 on {config.s3_listen}, gRPC on {config.grpc_listen}")
    watchdog_seconds = notifier.watchdog_seconds or 0.0
    watchdog = asyncio.create_task(
        notifier.watchdog(lambda: running.offloader.answers(within_seconds=watchdog_seconds))
    )
    await stop.wait()
    READY.clear()
    # One grace period for the requests, then the pool and the store: more than enough.
    notifier.stopping(within_seconds=config.shutdown_grace_seconds + _CLOSE_SECONDS)
    await running.stop()
    watchdog.cancel()
