"""Prometheus metrics, and the /health and /ready probes, on their own listener.

Request metrics are labelled by protocol, operation (the S3 operation or gRPC method, also
when it failed), status and code. ``status`` means the same on both doors: ``ok``,
``client_error`` (the caller's request was refused), ``server_error`` (ours: 5xx in S3) or
``cancelled`` (the client went away); ``code`` is the S3 error code both doors answer with
("" on success). Store figures (objects, buckets, blobs, stored bytes, dedup savings, disk
free) come from a scan of the keyspace on the thread pool, cached for a minute so frequent
scrapes of a large store stay cheap. The background workers' progress (scrub, gc, lifecycle)
and the process's own figures (CPU, memory, open files) are there too.
"""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from lightningstor.blobs.scrub import ScrubResults
from lightningstor.meta.lifecycle_record import LifecycleState
from lightningstor.objects.stats import StoreStats

PROTOCOLS = ("s3", "grpc")
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "lightningstor_requests_total",
            "Requests by protocol, operation, status (ok, client_error, server_error, "
            "cancelled) and S3 error code.",
            ("protocol", "operation", "status", "code"),
            registry=r,
        )
        self.latency = Histogram(
            "lightningstor_request_seconds",
            "Request duration by protocol and operation.",
            ("protocol", "operation"),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.bytes_in = Counter(
            "lightningstor_bytes_received_total",
            "Object bytes received.",
            ("protocol",),
            registry=r,
        )
        self.bytes_out = Counter(
            "lightningstor_bytes_sent_total", "Object bytes sent.", ("protocol",), registry=r
        )
        self._bytes_in = {p: self.bytes_in.labels(p) for p in PROTOCOLS}
        self._bytes_out = {p: self.bytes_out.labels(p) for p in PROTOCOLS}
        self._children: dict[tuple[str, str, str, str], tuple[Counter, Histogram]] = {}
        self.auth_failures = Counter(
            "lightningstor_auth_failures_total",
            "Failed authentications by protocol.",
            ("protocol",),
            registry=r,
        )
        self.objects = Gauge("lightningstor_objects", "Objects stored.", registry=r)
        self.buckets = Gauge("lightningstor_buckets", "Buckets.", registry=r)
        self.blobs = Gauge("lightningstor_blobs", "Distinct content blobs stored.", registry=r)
        self.logical_bytes = Gauge(
            "lightningstor_logical_bytes", "Sum of object sizes.", registry=r
        )
        self.stored_bytes = Gauge(
            "lightningstor_stored_bytes", "Bytes of distinct blobs.", registry=r
        )
        self.dedup_saved_bytes = Gauge(
            "lightningstor_dedup_saved_bytes",
            "Logical bytes not stored thanks to dedup.",
            registry=r,
        )
        self.disk_free_bytes = Gauge(
            "lightningstor_disk_free_bytes", "Free bytes on the data disk.", registry=r
        )
        self.lifecycle = LifecycleFigures()
        r.register(self.lifecycle)
        self.workers = WorkerFigures()
        r.register(self.workers)
        Info("lightningstor_build", "The running build.", registry=r).info(
            {"version": _version(), "python": platform.python_version()}
        )
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)

    def observe(
        self, protocol: str, operation: str, status: str, code: str, seconds: float
    ) -> None:
        # Label children are looked up once per label set (a bounded set: operations, error
        # codes and statuses are fixed lists), not on every request.
        key = (protocol, operation, status, code)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(*key), self.latency.labels(protocol, operation))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def traffic(self, protocol: str, received: int, sent: int) -> None:
        """Body bytes received and sent by ``protocol``."""
        if received:
            self._bytes_in[protocol].inc(received)
        if sent:
            self._bytes_out[protocol].inc(sent)


@dataclass
class WorkerState:
    """What the daemon's other background work has done, for /metrics."""

    corrupt_reads: Callable[[], int] = lambda: 0
    scrub: Callable[[], ScrubResults | None] = lambda: None
    gc_collected: int = 0  # blobs collected since start
    gc_runs: int = 0
    uploads_swept: int = 0


class WorkerFigures(Collector):
    """Counters the store and the workers keep themselves, read at each scrape."""

    def __init__(self) -> None:
        self.state = WorkerState()

    def collect(self) -> Iterator[Metric]:
        s = self.state
        yield CounterMetricFamily(
            "lightningstor_corrupt_reads",
            "Reads refused because a block failed its checksum.",
            value=s.corrupt_reads(),
        )
        yield CounterMetricFamily(
            "lightningstor_gc_collected_blobs",
            "Unreferenced blobs collected.",
            value=s.gc_collected,
        )
        yield CounterMetricFamily("lightningstor_gc_runs", "Collection rounds.", value=s.gc_runs)
        yield CounterMetricFamily(
            "lightningstor_uploads_swept",
            "Abandoned multipart uploads swept (stale_upload_seconds).",
            value=s.uploads_swept,
        )
        scrub = s.scrub()
        if scrub is None:
            return
        yield CounterMetricFamily(
            "lightningstor_scrub_passes", "Scrub passes completed.", value=scrub.passes_completed
        )
        yield CounterMetricFamily(
            "lightningstor_scrub_checked_bytes", "Bytes re-verified.", value=scrub.bytes_checked
        )
        yield CounterMetricFamily(
            "lightningstor_scrub_checked_blobs", "Blobs re-verified.", value=scrub.blobs_checked
        )
        yield GaugeMetricFamily(
            "lightningstor_scrub_pass_bytes", "Bytes checked in the pass under way.",
            value=scrub.pass_bytes,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "lightningstor_scrub_damaged_blobs", "Blobs whose bytes are damaged.",
            value=len(scrub.corrupt),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "lightningstor_scrub_checksum_problems",
            "Blobs with intact bytes but missing or damaged block checksums.",
            value=len(scrub.checksums),
        )
        if scrub.last_pass_finished_ns is not None:
            yield GaugeMetricFamily(
                "lightningstor_scrub_last_pass_finished_seconds",
                "When the last scrub pass finished (Unix time).",
                value=scrub.last_pass_finished_ns / 1e9,
            )


def _version() -> str:
    try:
        return importlib.metadata.version("lightningstor")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class LifecycleFigures(Collector):
    """The lifecycle worker's totals, as it keeps them in the store: they count every action
    once, across restarts (a process-local counter would start again at 0)."""

    def __init__(self) -> None:
        self.state: Callable[[], LifecycleState] | None = None

    def collect(self) -> Iterator[Metric]:
        if self.state is None:
            return
        s = self.state()
        for name, doc, value in (
            ("expired_objects", "Current versions expired by lifecycle rules.", s.expired_objects),
            ("expired_bytes", "Bytes of versions lifecycle rules removed.", s.expired_bytes),
            ("noncurrent_expired", "Noncurrent versions expired.", s.noncurrent_expired),
            ("delete_markers_removed", "Expired delete markers removed.", s.markers_removed),
            ("uploads_aborted", "Incomplete multipart uploads aborted.", s.uploads_aborted),
            ("locked_skipped", "Due versions kept by object lock.", s.locked_skipped),
            ("passes", "Lifecycle passes completed.", s.passes),
        ):
            yield CounterMetricFamily(f"lightningstor_lifecycle_{name}", doc, value=value)
        yield GaugeMetricFamily(
            "lightningstor_lifecycle_last_pass_seconds",
            "Duration of the last completed lifecycle pass.",
            value=s.last_pass_seconds,
        )
        yield GaugeMetricFamily(
            "lightningstor_lifecycle_pass_running",
            "1 while a lifecycle pass is under way.",
            value=1 if s.pass_started_ns else 0,
        )


def metrics_app(
    metrics: Metrics,
    *,
    figures: Callable[[], Awaitable[StoreStats]],
    ready: Callable[[], bool],
) -> web.Application:
    async def scrape(request: web.Request) -> web.Response:
        current = await figures()
        metrics.objects.set(current.objects)
        metrics.buckets.set(current.buckets)
        metrics.blobs.set(current.blobs)
        metrics.logical_bytes.set(current.logical_bytes)
        metrics.stored_bytes.set(current.stored_bytes)
        metrics.dedup_saved_bytes.set(max(0, current.logical_bytes - current.stored_bytes))
        metrics.disk_free_bytes.set(current.disk_free_bytes)
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")  # the process answers: alive

    async def readiness(request: web.Request) -> web.Response:
        if ready():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready\n")

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", readiness)
    return app


# The process-wide metrics both doors report to (one daemon per process).
METRICS = Metrics()


def observe_request(protocol: str, operation: str, status: str, code: str, seconds: float) -> None:
    METRICS.observe(protocol, operation, status, code, seconds)
