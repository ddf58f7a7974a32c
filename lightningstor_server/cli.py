"""The ``lightningstor`` command."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import logging
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

from lightningstor import __version__
from lightningstor.errors import StorageError
from lightningstor_server.admin_cli import add_admin_parser, run_admin
from lightningstor_server.config import ConfigError, load_config, render_toml
from lightningstor_server.daemon import serve
from lightningstor_server.logs import configure_logging
from lightningstor_server.offline_cli import (
    add_offline_parsers,
    foreign_store,
    run_fsck,
    run_gc,
    run_stats,
)

OFFLINE_COMMANDS = {"stats": run_stats, "gc": run_gc, "fsck": run_fsck}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightningstor", description="LightningSTOR object store")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="run the daemon (S3 and gRPC on one process)",
        description=(
            "Run the daemon. Settings: flags > LIGHTNINGSTOR_* environment > --config file "
            "(or LIGHTNINGSTOR_CONFIG) > defaults."
        ),
    )
    serve.add_argument("--config", type=Path, help="TOML settings file")
    serve.add_argument(
        "--data-dir", type=Path, help="where metadata and blobs live (default ./var/lightningstor)"
    )
    serve.add_argument(
        "--s3-listen", metavar="HOST:PORT", help="S3 listener (default 127.0.0.1:9000)"
    )
    serve.add_argument(
        "--grpc-listen", metavar="HOST:PORT", help="gRPC listener (default 127.0.0.1:50051)"
    )
    serve.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="Prometheus /metrics and probes (default 127.0.0.1:9101; '' turns it off)",
    )
    serve.add_argument("--region", help="region reported to S3 clients (default us-east-1)")
    serve.add_argument("--log-level", help="debug, info, warning or error (default info)")
    serve.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective settings (secrets hidden) as TOML and exit",
    )
    add_admin_parser(sub)
    add_offline_parsers(sub)
    sub.add_parser("version", help="print the version")
    return parser


def tune_malloc() -> None:
    """glibc malloc, set for a daemon that allocates and frees MiB-sized chunk buffers all day.
    A no-op off glibc.

    - Two arenas instead of one per pool thread (up to 8 per core): each thread's arena kept
      the chunk buffers it freed, and 8 parallel part uploads grew the daemon by 93 MiB; with
      two, 62 MiB, and no slower (bench/multipart.py).
    - Freed buffers stay mapped (trim threshold 128 MiB, chunk-sized blocks never mmap'd of
      their own): returned to the kernel, each next buffer was faulted in again page by page.
      perf during a 1 GiB GET: 12% of the daemon's CPU in page faults from reads into fresh
      buffers; 512 MiB GET, alternating daemons: 3,541 -> 3,784 MiB/s (medians of 4).
    """
    if platform.libc_ver()[0] != "glibc":
        return
    mallopt = ctypes.CDLL(None).mallopt
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8  # from glibc's malloc.h
    mallopt(m_arena_max, 2)
    mallopt(m_trim_threshold, 128 * 1024 * 1024)
    mallopt(m_mmap_threshold, 16 * 1024 * 1024)


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop the config names (None: asyncio's default)."""
    if name == "uvloop":
        import uvloop  # noqa: PLC0415 - loaded only when chosen

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(__version__)
        return 0
    if args.command == "admin":
        return run_admin(args)
    if args.command in OFFLINE_COMMANDS:
        return OFFLINE_COMMANDS[args.command](args)
    return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    env_file = os.environ.get("LIGHTNINGSTOR_CONFIG")
    sources: dict[str, str] = {}
    try:
        config = load_config(
            sources=sources,
            file=args.config or (Path(env_file) if env_file else None),
            overrides={
                "data_dir": args.data_dir,
                "s3_listen": args.s3_listen,
                "grpc_listen": args.grpc_listen,
                "metrics_listen": args.metrics_listen,
                "region": args.region,
                "log_level": args.log_level,
            },
        )
    except ConfigError as exc:
        print(f"lightningstor: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(render_toml(config, sources))
        return 0
    configure_logging(config.log_level, config.log_format)
    if (refusal := foreign_store(config.data_dir)) is not None:
        logging.getLogger("lightningstor").error("cannot start: %s", refusal)
        return 1
    tune_malloc()  # before the thread pool starts any thread
    try:
        with asyncio.Runner(loop_factory=loop_factory(config.event_loop)) as runner:
            runner.run(serve(config))
    except StorageError as exc:
        logging.getLogger("lightningstor").error("cannot start: %s", exc.message)
        return 1
    except OSError as exc:
        logging.getLogger("lightningstor").error("cannot start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
