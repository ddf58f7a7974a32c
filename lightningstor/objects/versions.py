"""A key's versions: where each write and delete puts them, and which of them a lock protects.

The current version of a key lives at ``o/`` (an object, or in a versioned bucket a delete
marker); its noncurrent versions at ``v/``, newest first (see ``meta/keyspace.py``). Every write
of a key changes its ``o/`` record, so the expectation on that one record serializes all writers
of the key: a new version is always placed above the one it read as current, and a version
promoted from ``v/`` is always the newest left. ``o/`` is absent only when the key has no
version at all, so a bucket is empty exactly when its ``o/`` range is.

Versions share blobs: a version that steps down to ``v/`` keeps its references, and only a
version that goes away (deleted by id, or a null version replaced) releases them.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import time

from lightningstor.blobs.references import WriteUnit
from lightningstor.errors import InvalidArgument, InvalidRequest, NoSuchVersion, ObjectLocked
from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import OrderedKV, scan_all
from lightningstor.meta.records import decode_object, encode_object
from lightningstor.model import (
    COMPLIANCE,
    NULL_VERSION,
    VERSIONING_ENABLED,
    VERSIONING_SUSPENDED,
    BucketInfo,
    ContentHeaders,
    DefaultRetention,
    DeleteConditions,
    DeleteResult,
    ObjectHead,
    Protection,
    Retention,
)
from lightningstor.objects.conditions import check_delete

_VERSION_ID_RE = re.compile(r"[0-9a-f]{32}")
_DAY_NS = 86_400 * 10**9
# What a year of default retention is: AWS counts 365 days.
_YEAR_DAYS = 365


def check_version_id(version_id: str, *, resource: str = "versionId") -> None:
    """InvalidArgument for a version id this store could not have issued."""
    if version_id != NULL_VERSION and not _VERSION_ID_RE.fullmatch(version_id):
        raise InvalidArgument("Invalid version id specified", resource=resource)


def new_sort(current: ObjectHead | None) -> str:
    """A sort above ``current`` (the newest version): newer in time even if the clock stepped
    back since it was written."""
    now = time.time_ns()
    if current is not None:
        now = max(now, ks.version_time(current.version_sort) + 1)
    return ks.version_sort(now, secrets.token_hex(8))


def version_record_key(head: ObjectHead) -> bytes:
    return ks.version_key(head.bucket, head.key, head.version_sort)


def delete_marker(bucket: str, key: str) -> ObjectHead:
    return ObjectHead(
        bucket=bucket,
        key=key,
        size=0,
        md5_hex="",
        etag="",
        mtime_ns=time.time_ns(),
        headers=ContentHeaders(),
        user_metadata={},
        checksums={},
        segments=(),
        delete_marker=True,
    )


# --- object lock ------------------------------------------------------------------------------
def check_unlocked(head: ObjectHead, *, bypass_governance: bool) -> None:
    """ObjectLocked unless ``head`` may go: no legal hold, and no retention in force (a
    GOVERNANCE one only with bypass; COMPLIANCE never)."""
    if head.legal_hold:
        raise ObjectLocked("The object version is under a legal hold.", resource=head.key)
    retention = head.retention
    if retention is None or retention.until_ns <= time.time_ns():
        return
    if retention.mode == COMPLIANCE or not bypass_governance:
        raise ObjectLocked(
            f"The object version is locked in {retention.mode} mode.", resource=head.key
        )


def marker_copy_refused(key: str) -> InvalidRequest:
    """What a copy (CopyObject or UploadPartCopy) from a delete marker's version id gets."""
    return InvalidRequest(
        "The source of a copy request may not specifically refer to a delete marker by version id.",
        resource=key,
    )


# AWS's bounds of a default retention; and the latest retain-until date every door can carry
# (nanoseconds in a signed 64-bit integer, as gRPC does: 2262-04-11).
MAX_RETENTION_DAYS = 36500
MAX_RETENTION_YEARS = 100
MAX_RETAIN_UNTIL_NS = 2**63 - 1


def check_default_retention(default: DefaultRetention | None) -> None:
    """InvalidArgument for a default retention without exactly one positive period within
    AWS's bounds (36,500 days or 100 years)."""
    if default is None:
        return
    days, years = default.days, default.years
    if (days > 0) == (years > 0) or days < 0 or years < 0:
        raise InvalidArgument("Default retention period must be a positive Days or Years")
    if days > MAX_RETENTION_DAYS or years > MAX_RETENTION_YEARS:
        raise InvalidArgument(
            f"Default retention period must be at most {MAX_RETENTION_DAYS} days "
            f"or {MAX_RETENTION_YEARS} years"
        )


def check_retain_until(retention: Retention | None) -> None:
    """InvalidArgument for a retain-until date past what every door can carry."""
    if retention is not None and retention.until_ns > MAX_RETAIN_UNTIL_NS:
        raise InvalidArgument("The retain until date is too far in the future")


def check_lockable(info: BucketInfo, protection: Protection) -> None:
    """InvalidRequest for a lock asked of a bucket without object lock."""
    check_retain_until(protection.retention)
    asked = protection.retention is not None or protection.legal_hold is not None
    if asked and info.object_lock is None:
        raise InvalidRequest("Bucket is missing Object Lock Configuration", resource=info.name)


def protect(info: BucketInfo, head: ObjectHead, protection: Protection) -> ObjectHead:
    """``head`` with the retention and legal hold a write asked for, or the bucket's default
    retention. InvalidRequest when the bucket has no object lock to apply them."""
    check_lockable(info, protection)
    lock = info.object_lock
    if lock is None:
        return head
    retention = protection.retention
    if retention is None and lock.default is not None:
        days = lock.default.days or lock.default.years * _YEAR_DAYS
        retention = Retention(mode=lock.default.mode, until_ns=time.time_ns() + days * _DAY_NS)
    return dataclasses.replace(head, retention=retention, legal_hold=bool(protection.legal_hold))


def check_retention_change(
    head: ObjectHead, new: Retention | None, *, bypass_governance: bool
) -> None:
    """ObjectLocked for a change a retention in force forbids. COMPLIANCE may only be kept or
    extended. GOVERNANCE may be extended in the same mode; any other change (a shorter date,
    removal, or a switch to COMPLIANCE) alters its lock settings and needs bypass, as AWS's
    object-lock overview says ("users can't ... alter its lock settings unless they have
    special permissions")."""
    old = head.retention
    if old is None or old.until_ns <= time.time_ns():
        return
    extends = new is not None and new.mode == old.mode and new.until_ns >= old.until_ns
    if extends or (old.mode != COMPLIANCE and bypass_governance):
        return
    raise ObjectLocked(
        f"The object version's {old.mode} retention cannot be shortened, removed or changed.",
        resource=head.key,
    )


# --- placing versions -------------------------------------------------------------------------
async def place(
    unit: WriteUnit, info: BucketInfo, current: ObjectHead | None, new: ObjectHead
) -> ObjectHead:
    """Plan ``new`` as the key's current version above ``current`` (what ``unit`` read at
    ``o/``): ``new`` with its version id and sort."""
    sort = new_sort(current)
    version_id = sort if info.versioning == VERSIONING_ENABLED else NULL_VERSION
    head = dataclasses.replace(new, version_id=version_id, version_sort=sort)
    if current is not None:
        await _step_down(unit, info, current)
    unit.put(ks.object_key(head.bucket, head.key), encode_object(head))
    return head


async def _step_down(unit: WriteUnit, info: BucketInfo, current: ObjectHead) -> None:
    """The current version makes way: kept as noncurrent, or (a null version outside an
    enabled bucket, which the new null version replaces) removed."""
    if info.versioning != VERSIONING_ENABLED and current.version_id == NULL_VERSION:
        check_unlocked(current, bypass_governance=False)
        unit.release(current.segments)
        return
    unit.put(version_record_key(current), encode_object(current))
    if info.versioning == VERSIONING_SUSPENDED:
        # The new version is the null one: an older null version goes.
        found = await find_noncurrent(unit, current.bucket, current.key, NULL_VERSION)
        if found is not None:
            raw_key, old_null = found
            check_unlocked(old_null, bypass_governance=False)
            unit.delete(raw_key)
            unit.release(old_null.segments)


async def delete_current(
    unit: WriteUnit,
    info: BucketInfo,
    bucket: str,
    key: str,
    current: ObjectHead | None,
    *,
    conditions: DeleteConditions | None = None,
) -> DeleteResult:
    """A DELETE without a version id: in a versioned bucket a delete marker on top; in an
    unversioned one the object goes (``conditions``, if any, tested on the current version)."""
    check_delete(current, conditions)
    if info.versioning:
        placed = await place(unit, info, current, delete_marker(bucket, key))
        existed = current is not None and not current.delete_marker
        return DeleteResult(version_id=placed.version_id, delete_marker=True, existed=existed)
    if current is not None:
        check_unlocked(current, bypass_governance=False)
        unit.delete(ks.object_key(bucket, key))
        unit.release(current.segments)
    return DeleteResult(version_id=None, delete_marker=False, existed=current is not None)


async def delete_version(
    unit: WriteUnit,
    bucket: str,
    key: str,
    current: ObjectHead | None,
    version_id: str,
    *,
    bypass_governance: bool,
    conditions: DeleteConditions | None = None,
) -> DeleteResult:
    """Remove one version for good; removing the current one makes the newest noncurrent one
    current (so deleting a delete marker undeletes). A version that does not exist is already
    gone: S3 answers such a delete with success too."""
    if current is not None and current.version_id == version_id:
        check_delete(current, conditions)
        check_unlocked(current, bypass_governance=bypass_governance)
        unit.release(current.segments)
        await _promote_newest(unit, bucket, key)
        return DeleteResult(
            version_id=version_id, delete_marker=current.delete_marker, existed=True
        )
    found = await find_noncurrent(unit, bucket, key, version_id)
    if found is None:
        return DeleteResult(version_id=version_id, delete_marker=False, existed=False)
    raw_key, head = found
    check_delete(head, conditions)
    check_unlocked(head, bypass_governance=bypass_governance)
    unit.delete(raw_key)
    unit.release(head.segments)
    return DeleteResult(version_id=version_id, delete_marker=head.delete_marker, existed=True)


async def _promote_newest(unit: WriteUnit, bucket: str, key: str) -> None:
    prefix = ks.key_versions_prefix(bucket, key)
    rows = await unit.scan(prefix, ks.prefix_end(prefix), limit=1)
    object_key = ks.object_key(bucket, key)
    if not rows:
        unit.delete(object_key)
        return
    raw_key, raw = rows[0]
    unit.expect(raw_key, raw)
    unit.delete(raw_key)
    unit.put(object_key, raw)  # o/ and v/ hold the same record format


# --- finding versions -------------------------------------------------------------------------
def noncurrent_now(
    kv: OrderedKV, bucket: str, key: str, version_id: str
) -> tuple[bytes, bytes] | None:
    """The noncurrent version ``version_id`` (its key and record), blocking. The null version
    takes a scan of the key's versions: its sort is its time, not its id."""
    if version_id != NULL_VERSION:
        raw_key = ks.version_key(bucket, key, version_id)
        raw = kv.get(raw_key)
        return None if raw is None else (raw_key, raw)
    prefix = ks.key_versions_prefix(bucket, key)
    for raw_key, raw in scan_all(kv, prefix, ks.prefix_end(prefix), page=256):
        if decode_object(bucket, key, raw).version_id == NULL_VERSION:
            return raw_key, raw
    return None


async def find_noncurrent(
    unit: WriteUnit, bucket: str, key: str, version_id: str
) -> tuple[bytes, ObjectHead] | None:
    """:func:`noncurrent_now`, its record then expected unchanged by ``unit``."""
    found = await unit.io.run(noncurrent_now, unit.kv, bucket, key, version_id)
    if found is None:
        return None  # version ids are never reused: an absent one stays absent
    raw_key, raw = found
    unit.expect(raw_key, raw)
    return raw_key, decode_object(bucket, key, raw)


def select_version(
    bucket: str,
    key: str,
    current: ObjectHead | None,
    version_id: str,
    noncurrent: ObjectHead | None,
) -> ObjectHead:
    """The version ``version_id`` of the key, from its current one or the noncurrent one
    found; NoSuchVersion when neither is it."""
    if current is not None and current.version_id == version_id:
        return current
    if noncurrent is None:
        raise NoSuchVersion(resource=key, extra={"Key": key, "VersionId": version_id})
    return noncurrent
