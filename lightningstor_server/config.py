"""Daemon settings: embedded defaults < TOML file < ``LIGHTNINGSTOR_*`` environment < flags.

Every setting is a field of :class:`Config`; a TOML key or environment variable that names no
field, or a value of the wrong type, stops start-up with a message naming it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "LIGHTNINGSTOR_"
# Inline bodies share LevelDB with all metadata; beyond this they would bloat its compactions.
MAX_INLINE_BYTES = 64 * 1024


class ConfigError(Exception):
    """A setting is unknown or its value is invalid; the message names it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    data_dir: Path = Path("./var/lightningstor")
    s3_listen: str = "127.0.0.1:9000"
    grpc_listen: str = "127.0.0.1:50051"
    # The region S3 clients are told about; signatures for any region are accepted (the region
    # is bound into the signature), which spares users of a self-hosted store a guessing game.
    region: str = "us-east-1"
    log_level: str = "info"
    # "text" (readable) or "json" (one object per line, for log shippers).
    log_format: str = "text"
    io_workers: int = 16
    # "uvloop" (libuv: cheaper per request and per received chunk; it has no sendfile, which
    # the verified read path does not use) or "asyncio" (the standard loop). Chosen by
    # measurement: see the README's Performance section.
    event_loop: str = "uvloop"
    gc_delay_seconds: float = 60.0
    gc_interval_seconds: float = 30.0
    shutdown_grace_seconds: float = 10.0
    master_key_file: Path | None = None
    # Multipart: every part but the last must be at least this large (S3: 5 MiB). Lowering it
    # is for benchmarks and special deployments; clients such as aws-cli use 8 MiB parts.
    min_part_bytes: int = 5 * 1024 * 1024
    # Multipart uploads neither completed nor aborted after this long are swept.
    stale_upload_seconds: float = 7 * 24 * 3600.0
    # Host names under which buckets are addressed virtual-hosted style
    # (<bucket>.<domain>); any other Host is path-style. TOML list or comma-separated env.
    virtual_host_domains: tuple[str, ...] = ()
    # Failed authentications a source address may make per minute with one key id (all
    # unknown key ids count as one), through any door, before further failures of that pair
    # are answered with SlowDown; a valid signature is never refused. 0 turns the limit off.
    auth_failures_per_minute: int = 20
    # Prometheus /metrics and the /health and /ready probes; empty turns the listener off.
    metrics_listen: str = "127.0.0.1:9101"
    # HTTP connections idle this long between requests are closed.
    http_keepalive_seconds: float = 75.0
    # Longest request line or header line accepted (aiohttp's own default; S3 allows 8 KiB).
    http_max_header_bytes: int = 8190
    # Concurrent gRPC calls served; more wait in line. 0: no limit.
    grpc_max_concurrent_calls: int = 1000
    # Of those, how many may be unauthenticated (health, reflection) at once; more are
    # refused with RESOURCE_EXHAUSTED, so open streams cannot crowd out keyed callers.
    grpc_max_open_calls: int = 32
    # PEM certificate (chain) and private key: both set, and both listeners speak TLS. Over
    # HTTPS the AWS SDKs send aws-chunked bodies with trailing checksums, which is why the
    # e2e tests run the daemon this way too.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Check every block read against its CRC32C before serving it (refuse bit rot). Off only
    # to measure what it costs, or for a store whose disks verify reads themselves.
    verify_reads: bool = True
    # Objects up to this size are kept inside their metadata record (one synced metadata write
    # per PUT, shared by concurrent writers) instead of a blob file; 0 stores every body as a
    # blob. Measured in bench/smallops.py; see the README's Performance section.
    inline_max_bytes: int = 4096
    # The background scrub re-reads every blob (SHA-256 and block CRCs) at this rate, a pass
    # every scrub_interval_seconds (counted from the end of the last); 0 in either disables it.
    scrub_bytes_per_second: int = 50 * 1024 * 1024
    scrub_interval_seconds: float = 24 * 3600.0
    # The lifecycle worker applies buckets' lifecycle rules in a pass over the keyspace every
    # lifecycle_interval_seconds (counted from the end of the last; 0 turns it off), examining
    # at most lifecycle_objects_per_second versions and uploads (0: no limit).
    lifecycle_interval_seconds: float = 3600.0
    lifecycle_objects_per_second: int = 2000
    # How long a lifecycle "day" is. For tests and demos only: a rule's days then pass in
    # seconds. Anything but 86400 also drops S3's rounding up to midnight UTC.
    lifecycle_day_seconds: float = 86400.0
    # New data (PUTs, parts, uploads) is refused with 507 InsufficientStorage while the data
    # disk has less free than this, so deletes and metadata writes keep room to work in.
    min_free_bytes: int = 64 * 1024 * 1024
    # Access policies (README "Access control"). Server-wide Block Public Access, as an AWS
    # account's: while on, no ACL or bucket policy can make anything public (public ones are
    # refused and ignored). Turning it off lets bucket owners open buckets on purpose.
    block_public_access: bool = True
    # New buckets as AWS makes them since April 2023 (false: Object Ownership
    # BucketOwnerEnforced, ACLs off, and a public access block with all four flags on), or as
    # AWS made them before and Ceph RGW still does (true: ACLs on, no block). A CreateBucket's
    # x-amz-object-ownership header chooses for itself either way.
    legacy_bucket_defaults: bool = False
    # Whether keys that are not admin may create buckets (each then owns what it creates).
    keys_create_buckets: bool = True
    # Used only when the store has no credential yet (first start).
    root_access_key: str | None = field(default=None, repr=False)
    root_secret_key: str | None = field(default=None, repr=False)


_FIELDS = {f.name: f for f in fields(Config)}


def _convert(name: str, value: Any, source: str) -> Any:
    kind = str(_FIELDS[name].type)
    try:
        if "Path" in kind:
            return Path(value)
        if kind == "bool":
            return _boolean(value)
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind == "float":
            return float(value)
        if kind.startswith("tuple"):
            items = value.split(",") if isinstance(value, str) else list(value)
            if not all(isinstance(item, str) for item in items):
                raise ValueError(value)
            return tuple(item.strip().lower() for item in items if item.strip())
        if not isinstance(value, str):
            raise ValueError(value)
        return value
    except (TypeError, ValueError):
        raise ConfigError(
            f"{source}: invalid value {value!r} for setting '{name}' ({kind})"
        ) from None


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _boolean(value: Any) -> bool:
    """TOML booleans as they are; strings (the environment) spelled the usual ways."""
    if isinstance(value, bool):
        return value
    text = value.strip().lower() if isinstance(value, str) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(value)


def _apply(
    values: dict[str, Any],
    updates: Mapping[str, Any],
    source: str,
    sources: dict[str, str],
    *,
    each: Callable[[str], str] | None = None,
) -> None:
    for name, value in updates.items():
        if name not in _FIELDS:
            raise ConfigError(f"{source}: unknown setting '{name}'")
        values[name] = _convert(name, value, source)
        sources[name] = each(name) if each else source


def load_config(
    *,
    file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    sources: dict[str, str] | None = None,
) -> Config:
    """The settings: defaults < ``file`` < environment < ``overrides``. ``sources``, when
    given, is filled with where each setting that is not a default came from."""
    values: dict[str, Any] = {}
    sources = {} if sources is None else sources
    if file is not None:
        try:
            table = tomllib.loads(file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{file}: {exc}") from None
        _apply(values, table, str(file), sources)
    environ = os.environ if environ is None else environ
    from_env = {
        name[len(ENV_PREFIX) :].lower(): value
        for name, value in environ.items()
        if name.startswith(ENV_PREFIX) and name != f"{ENV_PREFIX}CONFIG"
    }
    _apply(values, from_env, "environment", sources, each=lambda n: ENV_PREFIX + n.upper())
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    _apply(values, flags, "command line", sources, each=lambda n: "--" + n.replace("_", "-"))
    config = Config(**values)
    _validate(config)
    return config


_CHOICES = {"event_loop": ("asyncio", "uvloop"), "log_format": ("text", "json")}


def _validate(config: Config) -> None:
    for name in ("s3_listen", "grpc_listen"):
        parse_listen(getattr(config, name), name)
    if config.metrics_listen:
        parse_listen(config.metrics_listen, "metrics_listen")
    _check_numbers(config)
    for name, choices in _CHOICES.items():
        if getattr(config, name) not in choices:
            expected = " or ".join(choices)
            raise ConfigError(
                f"setting '{name}': expected {expected}, got {getattr(config, name)!r}"
            )
    if config.event_loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise ConfigError("setting 'event_loop' = uvloop needs the uvloop package installed")
    if config.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"setting 'log_level': unknown level {config.log_level!r}")
    if (config.root_access_key is None) != (config.root_secret_key is None):
        raise ConfigError("settings 'root_access_key' and 'root_secret_key' go together")
    if (config.tls_cert_file is None) != (config.tls_key_file is None):
        raise ConfigError("settings 'tls_cert_file' and 'tls_key_file' go together")


def _check_numbers(config: Config) -> None:
    if not 0 <= config.inline_max_bytes <= MAX_INLINE_BYTES:
        raise ConfigError(f"setting 'inline_max_bytes' must be 0 to {MAX_INLINE_BYTES}")
    if config.min_part_bytes < 1:
        raise ConfigError("setting 'min_part_bytes' must be at least 1")
    for name in (
        "scrub_bytes_per_second",
        "scrub_interval_seconds",
        "lifecycle_interval_seconds",
        "lifecycle_objects_per_second",
    ):
        if getattr(config, name) < 0:
            raise ConfigError(f"setting '{name}' must be 0 (off) or more")
    if config.lifecycle_day_seconds <= 0:
        raise ConfigError("setting 'lifecycle_day_seconds' must be more than 0")
    if config.io_workers < 1:
        raise ConfigError("setting 'io_workers' must be at least 1")


def parse_listen(value: str, name: str = "listen") -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"setting '{name}': expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def replace(config: Config, **changes: Any) -> Config:
    return dataclasses.replace(config, **changes)


_SECRET_SETTINGS = frozenset({"root_secret_key"})


def render_toml(config: Config, sources: Mapping[str, str] | None = None) -> str:
    """The effective settings as TOML a --config file accepts (secrets shown as hidden),
    each set one followed by where it came from (``sources``, see load_config)."""
    lines = ["# Effective LightningSTOR settings (defaults < file < environment < flags)"]
    for item in fields(Config):
        if sources and item.name in sources:
            lines.append(f"# {item.name}: from {sources[item.name]}")
        value = getattr(config, item.name)
        if value is None:
            lines.append(f"# {item.name} = (unset)")
        elif item.name in _SECRET_SETTINGS:
            lines.append(f"# {item.name} = (set, hidden)")
        elif isinstance(value, bool):
            lines.append(f"{item.name} = {'true' if value else 'false'}")
        elif isinstance(value, int | float):
            lines.append(f"{item.name} = {value}")
        elif isinstance(value, tuple):
            lines.append(f"{item.name} = {json.dumps([str(v) for v in value])}")
        else:  # a JSON string is a valid TOML basic string
            lines.append(f"{item.name} = {json.dumps(str(value))}")
    return "\n".join(lines)
