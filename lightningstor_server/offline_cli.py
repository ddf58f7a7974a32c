"""Commands on a store no daemon has open, all here: ``lightningstor fsck``, ``stats``, ``gc``
and ``lightningstor admin recover`` (a new admin key when none is left)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
import secrets
import sys
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag

from lightningstor.auth.credentials import (
    MASTER_KEY_BYTES,
    Credential,
    CredentialStore,
    new_access_key_id,
    new_secret_access_key,
    replace_durably,
    write_private,
)
from lightningstor.blobs.files import BlobStore
from lightningstor.meta.leveldb import LevelDBKV
from lightningstor.objects.multipart import STALE_UPLOAD_SECONDS
from lightningstor.objects.stats import gather
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from lightningstor.ops.fsck import check_store


def add_offline_parsers(sub: Any) -> None:
    fsck = sub.add_parser(
        "fsck",
        help="check (and repair) a stopped store's references, blobs and leftovers",
        description=(
            "Check a store no daemon has open. Exit status 0 when healthy, 1 when anything "
            "was wrong (also when --repair fixed all of it: run fsck again to confirm), "
            "2 when the store cannot be opened."
        ),
    )
    fsck.add_argument("--data-dir", type=Path, default=Path("./var/lightningstor"))
    fsck.add_argument(
        "--verify-content",
        action="store_true",
        help="also read every blob: SHA-256 against its name, each block against its CRC32C",
    )
    fsck.add_argument(
        "--repair",
        action="store_true",
        help=(
            "fix what can be fixed: reference counts, orphaned blobs, leftovers, missing or "
            "damaged block checksums of intact blobs (damaged bytes cannot be repaired)"
        ),
    )
    stats = sub.add_parser(
        "stats",
        help="bucket and store figures of a stopped store (table, or --json)",
        description="Counts and sizes per bucket and for the store: logical bytes, bytes stored "
        "after dedup, disk free. The daemon's /metrics shows the same figures while it runs.",
    )
    stats.add_argument("--data-dir", type=Path, default=Path("./var/lightningstor"))
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    gc = sub.add_parser(
        "gc",
        help="collect unreferenced blobs and sweep abandoned uploads of a stopped store now",
        description="What the daemon does in the background, at once and without the delay.",
    )
    gc.add_argument("--data-dir", type=Path, default=Path("./var/lightningstor"))
    gc.add_argument(
        "--stale-upload-seconds",
        type=float,
        default=STALE_UPLOAD_SECONDS,
        help="abort multipart uploads older than this (default 7 days)",
    )


def _unavailable(command: str, data_dir: Path) -> int | None:
    if not (data_dir / "meta").is_dir():
        print(f"lightningstor {command}: no store in {data_dir}", file=sys.stderr)
        return 2
    if (refusal := foreign_store(data_dir)) is not None:
        print(f"lightningstor {command}: {refusal}", file=sys.stderr)
        return 2
    return None


def foreign_store(data_dir: Path) -> str | None:
    """Why this process must not open ``data_dir``: it is another user's store. Files made
    here (a repaired checksum, a compacted table, a lock) would be this user's, mode 0600,
    and the store's own user (the service) could then not read them: every GET of a repaired
    object would fail. None when the store is ours (or does not exist yet)."""
    try:
        owner = data_dir.stat().st_uid
    except FileNotFoundError:
        return None
    if owner == os.geteuid():
        return None
    try:
        name = pwd.getpwuid(owner).pw_name
    except KeyError:
        name = str(owner)
    return (
        f"{data_dir} belongs to user {name} (uid {owner}), not to this one (uid "
        f"{os.geteuid()}); run this as its owner, e.g. `sudo -u {name} lightningstor ...`, "
        "so that every file it writes stays readable by the service"
    )


def run_stats(args: argparse.Namespace) -> int:
    if (code := _unavailable("stats", args.data_dir)) is not None:
        return code
    try:
        kv = LevelDBKV(args.data_dir / "meta")
    except OSError as exc:
        print(
            f"lightningstor stats: cannot open {args.data_dir} (is a daemon running?): {exc}",
            file=sys.stderr,
        )
        return 2
    try:
        stats = gather(kv, args.data_dir)
    finally:
        kv.close()
    if args.json:
        print(
            json.dumps(
                {
                    "buckets": stats.buckets,
                    "objects": stats.objects,
                    "logical_bytes": stats.logical_bytes,
                    "blobs": stats.blobs,
                    "stored_bytes": stats.stored_bytes,
                    "dedup_saved_bytes": max(0, stats.logical_bytes - stats.stored_bytes),
                    "disk_free_bytes": stats.disk_free_bytes,
                    "per_bucket": {
                        b: {"objects": n, "bytes": s} for b, (n, s) in stats.per_bucket.items()
                    },
                },
                indent=2,
            )
        )
        return 0
    print(f"{'BUCKET':40} {'OBJECTS':>10} {'BYTES':>16}")
    for bucket, (count, size) in sorted(stats.per_bucket.items()):
        print(f"{bucket:40} {count:>10} {size:>16}")
    saved = max(0, stats.logical_bytes - stats.stored_bytes)
    print(
        f"\n{stats.buckets} buckets, {stats.objects} objects, {stats.logical_bytes} bytes; "
        f"{stats.blobs} blobs storing {stats.stored_bytes} bytes (dedup saves {saved}); "
        f"{stats.disk_free_bytes} bytes free on disk"
    )
    return 0


def run_gc(args: argparse.Namespace) -> int:
    if (code := _unavailable("gc", args.data_dir)) is not None:
        return code
    offloader = Offloader(workers=4)
    try:
        store = ObjectStore.open(args.data_dir, offloader=offloader, gc_delay_seconds=0)
    except OSError as exc:
        print(
            f"lightningstor gc: cannot open {args.data_dir} (is a daemon running?): {exc}",
            file=sys.stderr,
        )
        offloader.shutdown()
        return 2

    async def collect() -> tuple[int, int]:
        swept = await store.uploads.sweep(older_than_seconds=args.stale_upload_seconds)
        return swept, await store.collect_garbage()

    try:
        swept, collected = asyncio.run(collect())
    finally:
        store.close()
        offloader.shutdown()
    print(f"swept {swept} abandoned uploads, collected {collected} unreferenced blobs")
    return 0


def add_recover_parser(admin: Any) -> None:
    recover = admin.add_parser(
        "recover",
        help="create a new admin key on a stopped store (when no admin key is left)",
        description="Opens the store of a stopped daemon and adds an admin key, sealed with "
        "the store's master key; prints it in the root-credentials.env format. The master "
        "key is never created here: a new one would not open the stored secrets.",
    )
    recover.add_argument("--data-dir", type=Path, default=Path("./var/lightningstor"))
    recover.add_argument(
        "--master-key-file",
        type=Path,
        help="the store's master key (default <data-dir>/master.key)",
    )
    recover.add_argument("--name", default="recovered-admin", help="the new key's name")


class _Refused(Exception):
    """A stopped-store command that cannot go on; its message is the one line printed."""


def _master_key(command: str, key_file: Path) -> bytes:
    try:
        master_key = key_file.read_bytes()
    except OSError as exc:
        raise _Refused(f"lightningstor {command}: cannot read {key_file}: {exc}") from exc
    if len(master_key) != MASTER_KEY_BYTES:
        raise _Refused(
            f"lightningstor {command}: {key_file} is not a master key ({MASTER_KEY_BYTES} bytes)"
        )
    return master_key


def _open_meta(command: str, data_dir: Path) -> LevelDBKV:
    try:
        return LevelDBKV(data_dir / "meta")
    except OSError as exc:
        raise _Refused(
            f"lightningstor {command}: cannot open {data_dir} (is a daemon running?): {exc}"
        ) from exc


def run_recover(args: argparse.Namespace) -> int:
    if (code := _unavailable("admin recover", args.data_dir)) is not None:
        return code
    key_file = args.master_key_file or args.data_dir / "master.key"
    try:
        master_key = _master_key("admin recover", key_file)
        kv = _open_meta("admin recover", args.data_dir)
    except _Refused as refused:
        print(refused, file=sys.stderr)
        return 2
    offloader = Offloader(workers=1)
    credentials = CredentialStore(kv=kv, offloader=offloader, master_key=master_key)
    try:
        made = asyncio.run(_recover(credentials, args.name))
    except InvalidTag:
        print(
            f"lightningstor admin recover: {key_file} does not open this store's credentials; "
            "give the store's own master key with --master-key-file",
            file=sys.stderr,
        )
        return 2
    finally:
        kv.close()
        offloader.shutdown()
    print(f"AWS_ACCESS_KEY_ID={made.access_key_id}")
    print(f"AWS_SECRET_ACCESS_KEY={made.secret_access_key}")
    return 0


def add_rotate_parser(admin: Any) -> None:
    rotate = admin.add_parser(
        "rotate-master-key",
        help="seal every secret with a new master key (on a stopped store)",
        description="Writes a new master key beside the current one (FILE.new), re-seals every "
        "access key's secret with it in one metadata commit, then puts it in the current one's "
        "place. Interrupted, it is run again to finish: the store opens with exactly one of "
        "the two files at every moment.",
    )
    rotate.add_argument("--data-dir", type=Path, default=Path("./var/lightningstor"))
    rotate.add_argument(
        "--master-key-file",
        type=Path,
        help="the store's master key, replaced (default <data-dir>/master.key; for a systemd "
        "credential, the file LoadCredential= names)",
    )


def run_rotate(args: argparse.Namespace) -> int:
    command = "admin rotate-master-key"
    if (code := _unavailable(command, args.data_dir)) is not None:
        return code
    key_file: Path = args.master_key_file or args.data_dir / "master.key"
    new_file = key_file.with_name(key_file.name + ".new")
    offloader = Offloader(workers=1)
    try:
        kv = _open_meta(command, args.data_dir)
        try:
            moved = _rotate(command, kv, offloader, key_file, new_file)
        finally:
            kv.close()
    except _Refused as refused:
        print(refused, file=sys.stderr)
        return 2
    finally:
        offloader.shutdown()
    print(f"re-sealed {moved} access keys with a new master key in {key_file}")
    return 0


def _rotate(
    command: str, kv: LevelDBKV, offloader: Offloader, key_file: Path, new_file: Path
) -> int | str:
    old = CredentialStore(kv=kv, offloader=offloader, master_key=_master_key(command, key_file))
    if not old.opens_store():
        # Either the wrong file, or a rotation that committed but did not get to rename.
        if new_file.exists():
            finished = CredentialStore(
                kv=kv, offloader=offloader, master_key=_master_key(command, new_file)
            )
            if finished.opens_store():
                replace_durably(new_file, key_file)
                return "all"  # the interrupted rotation had re-sealed them all
        raise _Refused(
            f"lightningstor {command}: {key_file} does not open this store's credentials"
        )
    new_key = secrets.token_bytes(MASTER_KEY_BYTES)
    write_private(new_file, new_key)  # durable before any secret depends on it
    moved = old.reseal(new_key)
    replace_durably(new_file, key_file)
    return moved


async def _recover(credentials: CredentialStore, name: str) -> Credential:
    await credentials.list()  # opens every stored secret: InvalidTag if the key is not theirs
    return await credentials.create(
        access_key_id=new_access_key_id(),
        secret_access_key=new_secret_access_key(),
        name=name,
        admin=True,
    )


def run_fsck(args: argparse.Namespace) -> int:
    data_dir, verify_content, repair = args.data_dir, args.verify_content, args.repair
    if (code := _unavailable("fsck", data_dir)) is not None:
        return code
    try:
        kv = LevelDBKV(data_dir / "meta")
    except OSError as exc:  # LevelDB's lock: one process at a time
        print(
            f"lightningstor fsck: cannot open {data_dir} (is a daemon running?): {exc}",
            file=sys.stderr,
        )
        return 2
    try:
        report = check_store(
            kv,
            BlobStore(data_dir),
            verify_content=verify_content,
            repair=repair,
            # Progress on stderr, so stdout stays the list of problems and the summary.
            progress=lambda note: print(f"fsck: {note}", file=sys.stderr, flush=True),
        )
    finally:
        kv.close()
    for problem in report.problems:
        print(problem)
    for repaired in report.repaired:
        print(f"repaired: {repaired}")
    verdict = "healthy" if report.healthy else f"{len(report.problems)} problems"
    if report.repaired:
        verdict += f", {len(report.repaired)} repairs made (run fsck again to confirm)"
    checked = f", {report.bytes_checked / 2**20:.1f} MiB verified" if verify_content else ""
    print(
        f"{report.objects} objects, {report.parts} parts, {report.blobs} blobs{checked}: {verdict}"
    )
    return 0 if report.healthy else 1
