"""``lightningstor admin``: manage access keys on a running daemon, and make dev certificates.

Credentials come from ``--access-key``/``--secret-key``, else the ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` environment, else a ``--credentials-file`` in the format of the
root-credentials.env the daemon writes. Output is a table for people, ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ipaddress
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lightningstor.client.admin import AdminClient
from lightningstor.errors import StorageError
from lightningstor.v1 import admin_pb2 as pb
from lightningstor_server.offline_cli import (
    add_recover_parser,
    add_rotate_parser,
    run_recover,
    run_rotate,
)

_ENV_LINE = re.compile(r"^(?:export\s+)?(AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY)=(.*)$")


def add_admin_parser(sub: Any) -> None:
    admin = sub.add_parser(
        "admin", help="manage access keys (on a running daemon, or recover on a stopped one)"
    )
    what = admin.add_subparsers(dest="admin_command", required=True)
    key = _connecting(
        what.add_parser("key", help="create, list, show, disable, enable, grant, delete keys")
    )
    action = key.add_subparsers(dest="key_command", required=True)
    create = action.add_parser("create", help="create a key; prints its secret once")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="may do everything")
    create.add_argument(
        "--canonical-id", default="", help="its canonical user id (default: derived from its id)"
    )
    create.add_argument(
        "--grant",
        action="append",
        default=[],
        metavar="BUCKET=LEVEL",
        help="read, write or readwrite",
    )
    action.add_parser("list", help="every key, without secrets")
    for name, text in (
        ("show", "one key, without its secret"),
        ("secret", "one key with its secret"),
        ("disable", "refuse the key from now on"),
        ("enable", "accept the key again"),
        ("delete", "remove the key for good"),
    ):
        action.add_parser(name, help=text).add_argument("access_key_id")
    grant = action.add_parser(
        "grant",
        help="replace ALL of a key's grants with these (none: it keeps no grant); "
        "to add one, list the key's grants and give them all",
    )
    grant.add_argument("access_key_id")
    grant.add_argument("grants", nargs="*", metavar="BUCKET=LEVEL")
    _json_anywhere(action)
    _add_bucket_parsers(what)
    add_recover_parser(what)
    add_rotate_parser(what)
    cert = what.add_parser("cert", help="write a self-signed certificate and key for development")
    cert.add_argument("--host", action="append", required=True, help="DNS name or IP (repeatable)")
    cert.add_argument(
        "--out", type=Path, default=Path("."), help="directory for tls.crt and tls.key"
    )
    cert.add_argument("--days", type=int, default=365)


def _connecting(parser: Any) -> Any:
    """The options every command that talks to a running daemon takes."""
    parser.add_argument(
        "--grpc", default="127.0.0.1:50051", metavar="HOST:PORT", help="daemon gRPC address"
    )
    parser.add_argument("--ca-file", type=Path, help="trust this CA (PEM) and use TLS")
    parser.add_argument("--access-key", help="admin access key id (default: $AWS_ACCESS_KEY_ID)")
    parser.add_argument("--secret-key", help="admin secret (default: $AWS_SECRET_ACCESS_KEY)")
    parser.add_argument("--credentials-file", type=Path, help="a root-credentials.env style file")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _json_anywhere(action: Any) -> None:
    """``--json`` after the subcommand too (``admin key list --json``), as people write it."""
    for parser in action.choices.values():
        parser.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
        )


def _add_bucket_parsers(what: Any) -> None:
    policy = _connecting(what.add_parser("policy", help="set, get or delete a bucket policy"))
    action = policy.add_subparsers(dest="policy_command", required=True)
    put = action.add_parser("set", help="replace a bucket's policy with FILE's (JSON; - is stdin)")
    put.add_argument("bucket")
    put.add_argument("file", type=Path)
    for name in ("get", "delete"):
        action.add_parser(name, help=f"{name} a bucket's policy").add_argument("bucket")
    _json_anywhere(action)
    owner = _connecting(what.add_parser("owner", help="give a bucket to another key"))
    owner.add_argument("bucket")
    owner.add_argument("canonical_id", help="the new owner's canonical id (admin key show)")


def run_admin(args: argparse.Namespace) -> int:
    if args.admin_command == "cert":
        return _write_cert(args.host, args.out, args.days)
    if args.admin_command == "recover":
        return run_recover(args)
    if args.admin_command == "rotate-master-key":
        return run_rotate(args)
    try:
        key_id, secret = _credentials(args)
        return asyncio.run(_key_command(args, key_id, secret))
    except (StorageError, ValueError) as exc:
        code = getattr(exc, "code", "InvalidArgument")
        print(f"lightningstor admin: {code}: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    except grpc.aio.AioRpcError as exc:
        print(f"lightningstor admin: cannot reach {args.grpc}: {exc.details()}", file=sys.stderr)
        return 1


def _credentials(args: argparse.Namespace) -> tuple[str, str]:
    key_id, secret = args.access_key, args.secret_key
    if args.credentials_file is not None:
        found = {}
        for line in args.credentials_file.read_text().splitlines():
            match = _ENV_LINE.match(line.strip())
            if match:
                found[match[1]] = match[2].strip().strip("'\"")
        key_id = key_id or found.get("AWS_ACCESS_KEY_ID")
        secret = secret or found.get("AWS_SECRET_ACCESS_KEY")
    key_id = key_id or os.environ.get("AWS_ACCESS_KEY_ID")
    secret = secret or os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not key_id or not secret:
        raise ValueError(
            "admin credentials needed: --access-key/--secret-key, the AWS_* environment "
            "or --credentials-file"
        )
    return key_id, secret


def _grants(items: Sequence[str]) -> dict[str, str]:
    grants = {}
    for item in items:
        bucket, sep, level = item.partition("=")
        if not sep or not bucket:
            raise ValueError(f"grant {item!r} is not BUCKET=LEVEL")
        grants[bucket] = level
    return grants


async def _key_command(args: argparse.Namespace, key_id: str, secret: str) -> int:
    tls = grpc.ssl_channel_credentials(args.ca_file.read_bytes()) if args.ca_file else None
    async with AdminClient(
        args.grpc, access_key_id=key_id, secret_access_key=secret, channel_credentials=tls
    ) as admin:
        if args.admin_command != "key":
            return await _bucket_command(args, admin)
        command = args.key_command
        if command == "create":
            made = await admin.create(
                args.name,
                admin=args.admin,
                grants=_grants(args.grant),
                canonical_id=args.canonical_id,
            )
            _show([made.key], args.json, secret=made.secret_access_key, first=True)
        elif command == "list":
            _show(await admin.list(), args.json)
        elif command == "show":
            _show([await admin.show(args.access_key_id)], args.json)
        elif command == "secret":
            revealed = await admin.secret(args.access_key_id)
            _show([revealed.key], args.json, secret=revealed.secret_access_key)
        elif command in ("disable", "enable"):
            _show([await admin.set_active(args.access_key_id, command == "enable")], args.json)
        elif command == "grant":
            _show([await admin.grant(args.access_key_id, _grants(args.grants))], args.json)
            if not args.json:
                print("(the grants above replaced all the key's earlier ones)")
        elif command == "delete":
            await admin.delete(args.access_key_id)
            print(
                json.dumps({"deleted": args.access_key_id})
                if args.json
                else f"deleted {args.access_key_id}"
            )
    return 0


async def _bucket_command(args: argparse.Namespace, admin: AdminClient) -> int:
    if args.admin_command == "owner":
        bucket = await admin.set_owner(args.bucket, args.canonical_id)
        print(json.dumps({"bucket": bucket.name, "owner": bucket.owner, "name": bucket.owner_name}))
        return 0
    command = args.policy_command
    if command == "set":
        text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text()
        await admin.set_policy(args.bucket, text)
        print(f"policy of {args.bucket} set")
    elif command == "get":
        print(await admin.get_policy(args.bucket))
    else:
        await admin.delete_policy(args.bucket)
        print(f"policy of {args.bucket} deleted")
    return 0


def _show(
    keys: Sequence[pb.AccessKey], as_json: bool, *, secret: str | None = None, first: bool = False
) -> None:
    rows: list[dict[str, Any]] = [
        {
            "access_key_id": k.access_key_id,
            "name": k.name,
            "active": k.active,
            "admin": k.admin,
            "grants": dict(k.grants),
            "canonical_id": k.canonical_id,
            "created": datetime.datetime.fromtimestamp(
                k.created_unix_nanos / 1e9, datetime.UTC
            ).isoformat(timespec="seconds"),
        }
        for k in keys
    ]
    if secret is not None:
        rows[0]["secret_access_key"] = secret
    if as_json:
        print(json.dumps(rows if len(rows) != 1 or secret is None else rows[0], indent=2))
        return
    print(f"{'ACCESS KEY ID':22} {'NAME':20} {'ACTIVE':6} {'ADMIN':5} {'CREATED':25} GRANTS")
    for row in rows:
        grants = ",".join(f"{b}={lv}" for b, lv in sorted(row["grants"].items())) or "-"
        print(
            f"{row['access_key_id']:22} {row['name'][:20]:20} {row['active']!s:6} "
            f"{row['admin']!s:5} {row['created']:25} {grants}"
        )
    if len(rows) == 1:
        print(f"canonical id: {rows[0]['canonical_id']}")
    if secret is not None:
        # A new key's secret is shown here once; `key secret` shows it again on request.
        print(f"secret access key{' (keep it: shown once)' if first else ''}: {secret}")


def _write_cert(hosts: Sequence[str], out: Path, days: int) -> int:
    """A self-signed ECDSA P-256 certificate for development TLS (both listeners)."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = out / "tls.key"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    print(
        f"wrote {out / 'tls.crt'} and {key_path} (0600) for {', '.join(hosts)}, valid {days} days"
    )
    return 0
