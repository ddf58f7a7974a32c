"""Stored record formats. Every record is compact JSON with a format version ``"v"``.

Each record type decodes through exactly one function here; when a format changes, the decoder
gains an explicit migration from the older version rather than guessing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lightningstor.errors import InternalError
from lightningstor.meta import keyspace as ks
from lightningstor.meta.keyspace import legacy_version_sort
from lightningstor.meta.kv import OrderedKV, scan_all
from lightningstor.meta.lifecycle_record import decode_rules, encode_rules
from lightningstor.model import (
    BUCKET_OWNER_ENFORCED,
    NULL_VERSION,
    Acl,
    BucketInfo,
    ContentHeaders,
    DefaultRetention,
    Grant,
    ObjectHead,
    ObjectLock,
    Owner,
    Protection,
    PublicAccessBlock,
    Retention,
    Segment,
    derived_canonical_id,
    key_owner,
)

SCHEMA_VERSION = 1
RECORD_VERSION = 1


def _dump(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _load(raw: bytes, what: str) -> dict[str, Any]:
    data = json.loads(raw)
    if not isinstance(data, dict) or data.get("v") != RECORD_VERSION:
        raise InternalError(f"unsupported {what} record format: {raw[:40]!r}")
    return data


# --- schema ---------------------------------------------------------------------------------
def encode_schema() -> bytes:
    return _dump({"v": RECORD_VERSION, "schema": SCHEMA_VERSION})


def decode_schema(raw: bytes) -> int:
    schema = _load(raw, "schema")["schema"]
    if not isinstance(schema, int):
        raise InternalError("schema record holds no version")
    return schema


# --- buckets --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class BucketRecord:
    info: BucketInfo
    # "deleting" while a DeleteBucket checks emptiness: writes that read "active" then fail
    # their expectation, so no object can land in a bucket being deleted.
    state: str = "active"


def encode_bucket(record: BucketRecord) -> bytes:
    info = record.info
    lock = info.object_lock
    pab = info.public_access_block
    return _dump(
        {
            "v": RECORD_VERSION,
            "created_ns": info.created_ns,
            "owner_id": info.owner.id,
            "owner_name": info.owner.name,
            "state": record.state,
            # Added with versioning; absent in older records means unversioned, no lock.
            **({"versioning": info.versioning} if info.versioning else {}),
            **({"lock": _encode_lock(lock)} if lock is not None else {}),
            # Added with access policies (see decode_bucket for records without them).
            "oc": info.ownership,
            **({"acl": encode_acl(info.acl)} if info.acl is not None else {}),
            **({"policy": info.policy} if info.policy else {}),
            **({"pab": _encode_pab(pab)} if pab is not None else {}),
            **({"tags": list(info.tags.items())} if info.tags is not None else {}),
            **({"lc": encode_rules(info.lifecycle)} if info.lifecycle is not None else {}),
        }
    )


def decode_bucket(name: str, raw: bytes) -> BucketRecord:
    data = _load(raw, "bucket")
    info = BucketInfo(
        name=name,
        created_ns=data["created_ns"],
        owner=_decode_bucket_owner(data),
        versioning=data.get("versioning", ""),
        object_lock=_decode_lock(data["lock"]) if "lock" in data else None,
        # Buckets made before access policies refused every ACL: BucketOwnerEnforced.
        ownership=data.get("oc", BUCKET_OWNER_ENFORCED),
        acl=decode_acl(data["acl"]) if "acl" in data else None,
        policy=data.get("policy", ""),
        public_access_block=_decode_pab(data["pab"]) if "pab" in data else None,
        tags=dict(data["tags"]) if "tags" in data else None,
        lifecycle=decode_rules(data["lc"]) if "lc" in data else None,
    )
    return BucketRecord(info=info, state=data["state"])


def _decode_bucket_owner(data: dict[str, Any]) -> Owner:
    if "owner_id" in data:
        return Owner(data["owner_id"], data["owner_name"])
    # Older records name the creating key; its canonical id is derived from the key id.
    return Owner(derived_canonical_id(data["owner"]), data["owner"])


def encode_acl(acl: Acl) -> list[list[str]]:
    """[permission, user id, user name, group URI] per grant."""
    return [
        [g.permission, g.user.id if g.user else "", g.user.name if g.user else "", g.group]
        for g in acl
    ]


def decode_acl(data: list[list[str]]) -> Acl:
    return tuple(
        Grant(permission=p, user=Owner(uid, uname) if uid else None, group=group)
        for p, uid, uname, group in data
    )


_PAB_FIELDS = (
    "block_public_acls",
    "ignore_public_acls",
    "block_public_policy",
    "restrict_public_buckets",
)


def _encode_pab(pab: PublicAccessBlock) -> list[bool]:
    return [getattr(pab, name) for name in _PAB_FIELDS]


def _decode_pab(data: list[bool]) -> PublicAccessBlock:
    return PublicAccessBlock(**dict(zip(_PAB_FIELDS, data, strict=True)))


def _encode_lock(lock: ObjectLock) -> dict[str, Any]:
    default = lock.default
    if default is None:
        return {}
    return {"mode": default.mode, "days": default.days, "years": default.years}


def _decode_lock(data: dict[str, Any]) -> ObjectLock:
    if not data:
        return ObjectLock()
    return ObjectLock(
        default=DefaultRetention(mode=data["mode"], days=data["days"], years=data["years"])
    )


# --- objects --------------------------------------------------------------------------------
_HEADER_FIELDS = (
    "content_type",
    "content_encoding",
    "content_disposition",
    "content_language",
    "cache_control",
    "expires",
)


def encode_object(head: ObjectHead) -> bytes:
    headers = {name: getattr(head.headers, name) for name in _HEADER_FIELDS}
    inline = {} if head.inline is None else {"data": base64.b64encode(head.inline).decode()}
    return _dump(
        {
            "v": RECORD_VERSION,
            "vid": head.version_id,
            "vs": head.version_sort,
            **({"dm": True} if head.delete_marker else {}),
            **({"ret": _encode_retention(head.retention)} if head.retention else {}),
            **({"hold": True} if head.legal_hold else {}),
            **({"own": [head.owner.id, head.owner.name]} if head.owner else {}),
            **({"acl": encode_acl(head.acl)} if head.acl is not None else {}),
            **({"tags": list(head.tags.items())} if head.tags else {}),
            "size": head.size,
            "md5": head.md5_hex,
            "etag": head.etag,
            "mtime_ns": head.mtime_ns,
            "headers": {k: v for k, v in headers.items() if v},
            "meta": dict(head.user_metadata),
            "sums": dict(head.checksums),
            "segs": [[s.sha256_hex, s.size] for s in head.segments],
            **({"psums": [dict(p) for p in head.part_checksums]} if head.part_checksums else {}),
            **inline,
        }
    )


def decode_object(bucket: str, key: str, raw: bytes) -> ObjectHead:
    data = _load(raw, "object")
    headers = ContentHeaders(**data["headers"])
    return ObjectHead(
        bucket=bucket,
        key=key,
        size=data["size"],
        md5_hex=data["md5"],
        etag=data["etag"],
        mtime_ns=data["mtime_ns"],
        headers=headers,
        user_metadata=data["meta"],
        checksums=data["sums"],
        segments=tuple(Segment(sha256_hex=s, size=n) for s, n in data["segs"]),
        part_checksums=tuple(data.get("psums", ())),  # optional: multipart objects only
        inline=base64.b64decode(data["data"]) if "data" in data else None,
        # Records written before versions existed are the null version, sorted by mtime.
        version_id=data.get("vid", NULL_VERSION),
        version_sort=data.get("vs") or legacy_version_sort(data["mtime_ns"]),
        delete_marker=data.get("dm", False),
        retention=_decode_retention(data["ret"]) if "ret" in data else None,
        legal_hold=data.get("hold", False),
        owner=Owner(*data["own"]) if "own" in data else None,
        acl=decode_acl(data["acl"]) if "acl" in data else None,
        tags=dict(data.get("tags", ())),  # [key, value] pairs, in order
    )


def is_delete_marker(raw: bytes) -> bool:
    """Whether an object record is a delete marker, decoding it only when its bytes could be
    one (a listing asks this of every key it would otherwise skip past undecoded)."""
    return b'"dm"' in raw and _load(raw, "object").get("dm", False) is True


def stored_versions(kv: OrderedKV) -> Iterator[ObjectHead]:
    """Every version the keyspace holds, current (``o/``) and noncurrent (``v/``), delete
    markers included; for maintenance passes (blocking)."""
    for prefix in (ks.OBJECT_PREFIX, ks.VERSION_PREFIX):
        for raw_key, raw in scan_all(kv, prefix, ks.prefix_end(prefix)):
            bucket, _, rest = raw_key[len(prefix) :].partition(b"\x00")
            key = rest.rpartition(b"\x00")[0] if prefix == ks.VERSION_PREFIX else rest
            yield decode_object(bucket.decode(), key.decode(), raw)


def _encode_retention(retention: Retention) -> list[Any]:
    return [retention.mode, retention.until_ns]


def _decode_retention(data: list[Any]) -> Retention:
    return Retention(mode=data[0], until_ns=data[1])


def encode_protection(protection: Protection) -> dict[str, Any]:
    retention = protection.retention
    return {
        **({"ret": _encode_retention(retention)} if retention else {}),
        **({"hold": protection.legal_hold} if protection.legal_hold is not None else {}),
    }


def decode_protection(data: dict[str, Any]) -> Protection:
    return Protection(
        retention=_decode_retention(data["ret"]) if "ret" in data else None,
        legal_hold=data.get("hold"),
    )


# --- blob references ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class RefRecord:
    """How many objects reference a blob, and how often it was collected.

    ``generation`` grows each time the blob file is collected, so a writer that observed a
    record before a collection can never commit against the record left after it (no ABA).
    ``collecting`` marks the window in which the collector is removing the file.
    """

    refs: int = 0
    generation: int = 0
    collecting: bool = False


def encode_ref(record: RefRecord) -> bytes:
    return _dump(
        {
            "v": RECORD_VERSION,
            "refs": record.refs,
            "gen": record.generation,
            "collecting": record.collecting,
        }
    )


def decode_ref(raw: bytes | None) -> RefRecord:
    if raw is None:
        return RefRecord()
    data = _load(raw, "reference")
    return RefRecord(refs=data["refs"], generation=data["gen"], collecting=data["collecting"])


def encode_garbage(since_ns: int) -> bytes:
    return _dump({"v": RECORD_VERSION, "since_ns": since_ns})


def decode_garbage(raw: bytes) -> int:
    since: int = _load(raw, "garbage")["since_ns"]
    return since


# --- credentials ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialRecord:
    access_key_id: str
    sealed_secret: str  # base64(nonce || AES-GCM ciphertext), see credentials.py
    name: str
    created_ns: int
    status: str = "active"
    admin: bool = False
    # Bucket name -> "read", "write" or "readwrite"; ignored for admin keys.
    grants: dict[str, str] = field(default_factory=dict)
    canonical_id: str = ""  # given at creation; "" = derived from the key id

    @property
    def owner_id(self) -> str:
        return key_owner(self.access_key_id, self.canonical_id, self.name).id


def encode_credential(record: CredentialRecord) -> bytes:
    return _dump(
        {
            "v": RECORD_VERSION,
            "sealed": record.sealed_secret,
            "name": record.name,
            "created_ns": record.created_ns,
            "status": record.status,
            "admin": record.admin,
            "grants": record.grants,
            **({"cid": record.canonical_id} if record.canonical_id else {}),
        }
    )


def decode_credential(access_key_id: str, raw: bytes) -> CredentialRecord:
    data = _load(raw, "credential")
    return CredentialRecord(
        access_key_id=access_key_id,
        sealed_secret=data["sealed"],
        name=data["name"],
        created_ns=data["created_ns"],
        status=data["status"],
        admin=data["admin"],
        # Added after the first records were written: absent means no grants (compatible).
        grants=data.get("grants", {}),
        canonical_id=data.get("cid", ""),
    )


# --- multipart uploads ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class UploadRecord:
    """A multipart upload in progress: what the object will be once completed."""

    created_ns: int
    headers: ContentHeaders
    user_metadata: dict[str, str]
    checksum_algorithm: str = ""  # whole-object checksum requested at creation, if any
    checksum_type: str = ""  # COMPOSITE or FULL_OBJECT, with an algorithm
    protection: Protection = field(default_factory=Protection)  # for the completed version
    owner: Owner | None = None  # who the completed object belongs to (None: older records)
    acl: Acl | None = None  # the completed object's ACL (None: its owner's full control)
    tags: dict[str, str] = field(default_factory=dict)  # the completed object's tags
    # "active"; "closing" while a completion or abort works, so that part uploads which read
    # the record as active fail their expectation instead of landing after the final listing.
    state: str = "active"


def encode_upload(record: UploadRecord) -> bytes:
    headers = {name: getattr(record.headers, name) for name in _HEADER_FIELDS}
    return _dump(
        {
            "v": RECORD_VERSION,
            "created_ns": record.created_ns,
            "headers": {k: v for k, v in headers.items() if v},
            "meta": record.user_metadata,
            "alg": record.checksum_algorithm,
            **({"ctype": record.checksum_type} if record.checksum_type else {}),
            **(
                {"lock": encode_protection(record.protection)}
                if record.protection != Protection()
                else {}
            ),
            **({"own": [record.owner.id, record.owner.name]} if record.owner else {}),
            **({"acl": encode_acl(record.acl)} if record.acl is not None else {}),
            **({"tags": list(record.tags.items())} if record.tags else {}),
            "state": record.state,
        }
    )


def decode_upload(raw: bytes) -> UploadRecord:
    data = _load(raw, "upload")
    return UploadRecord(
        created_ns=data["created_ns"],
        headers=ContentHeaders(**data["headers"]),
        user_metadata=data["meta"],
        checksum_algorithm=data["alg"],
        checksum_type=data.get("ctype", ""),  # absent in records older than checksum types
        protection=decode_protection(data.get("lock", {})),  # absent before object lock
        owner=Owner(*data["own"]) if "own" in data else None,
        acl=decode_acl(data["acl"]) if "acl" in data else None,
        tags=dict(data.get("tags", ())),
        state=data["state"],
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PartRecord:
    number: int
    sha256_hex: str
    size: int
    md5_hex: str
    checksums: dict[str, str]
    mtime_ns: int


def encode_part(record: PartRecord) -> bytes:
    return _dump(
        {
            "v": RECORD_VERSION,
            "n": record.number,
            "sha": record.sha256_hex,
            "size": record.size,
            "md5": record.md5_hex,
            "sums": record.checksums,
            "mtime_ns": record.mtime_ns,
        }
    )


def decode_part(raw: bytes) -> PartRecord:
    data = _load(raw, "part")
    return PartRecord(
        number=data["n"],
        sha256_hex=data["sha"],
        size=data["size"],
        md5_hex=data["md5"],
        checksums=data["sums"],
        mtime_ns=data["mtime_ns"],
    )
