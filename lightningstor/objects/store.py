"""The ObjectStore façade: buckets and objects over the metadata keyspace and the blob store.

Every mutating operation is one expectation-guarded metadata batch (see ``kv.py``): the object
record, blob reference changes and garbage entries change together or not at all. The
expectations make each batch a compare-and-swap over everything it read, so concurrent writers,
deletes, bucket deletion and blob collection never interleave into a broken state; a loser
re-reads and retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from lightningstor.auth.acls import check_ownership_change
from lightningstor.auth.credentials import CredentialStore
from lightningstor.blobs.files import (
    BlobReader,
    BlobStore,
    BlockMismatch,
    StagedBlob,
)
from lightningstor.blobs.inline import INLINE_MAX_BYTES, InlineBody, intact, take_small
from lightningstor.blobs.references import GC_DELAY_SECONDS, BlobReferences, WriteUnit
from lightningstor.blobs.scrub import Scrubber
from lightningstor.blobs.transfer import Transfers, verify_body
from lightningstor.errors import (
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    ConditionalRequestConflict,
    InternalError,
    InvalidArgument,
    InvalidBucketState,
    InvalidRange,
    InvalidRequest,
    IsDeleteMarker,
    NoSuchKey,
    NotModified,
    OperationAborted,
    PreconditionFailed,
)
from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import OrderedKV, scan_all
from lightningstor.meta.leveldb import LevelDBKV
from lightningstor.meta.records import (
    SCHEMA_VERSION,
    BucketRecord,
    decode_bucket,
    decode_object,
    decode_schema,
    decode_upload,
    encode_bucket,
    encode_object,
    encode_schema,
    encode_upload,
)
from lightningstor.meta.unit import Unit
from lightningstor.model import (
    UNVERSIONED,
    VERSIONING_ENABLED,
    VERSIONING_SUSPENDED,
    Acl,
    BodyExpectations,
    BucketAccess,
    BucketInfo,
    ByteRange,
    ContentHeaders,
    DeleteConditions,
    DeleteResult,
    LifecycleRule,
    ListPage,
    ObjectAcl,
    ObjectHead,
    ObjectLock,
    Owner,
    Preconditions,
    Protection,
    PublicAccessBlock,
    RangeRequest,
    Retention,
    Segment,
    VersionPage,
)
from lightningstor.objects import limits
from lightningstor.objects.bucket_cache import BucketCache
from lightningstor.objects.commits import (
    Commits,
    active_bucket,
    active_pair,
    bucket_and_object_keys,
)
from lightningstor.objects.conditions import check_read, part_range, resolve_range
from lightningstor.objects.lifecycle.rules import check_rules
from lightningstor.objects.lifecycle.worker import LifecycleWorker
from lightningstor.objects.listing import PageTokens, list_page
from lightningstor.objects.multipart import MIN_PART_BYTES, MultipartUploads
from lightningstor.objects.names import validate_bucket_name, validate_key, validate_metadata
from lightningstor.objects.stats import StoreStats
from lightningstor.objects.stats import gather as gather_stats
from lightningstor.objects.tags import MAX_BUCKET_TAGS, check_tags
from lightningstor.objects.version_listing import list_versions_page
from lightningstor.objects.versions import (
    check_default_retention,
    check_retention_change,
    check_version_id,
    delete_current,
    delete_version,
    find_noncurrent,
    marker_copy_refused,
    noncurrent_now,
    select_version,
)
from lightningstor.offload import Offloader

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger("lightningstor.store")


class StoreVersionError(InternalError):
    """The data directory holds a store this version cannot open."""


@dataclass(slots=True, kw_only=True)
class ObjectReader:
    """An open object: its metadata, the byte range selected and the bytes as a stream."""

    head: ObjectHead
    range: ByteRange | None  # None: the whole object
    chunks: AsyncIterator[bytes]

    @property
    def length(self) -> int:
        return self.range.length if self.range else self.head.size


class ObjectStore:
    def __init__(
        self,
        *,
        kv: OrderedKV,
        blobs: BlobStore,
        offloader: Offloader,
        gc_delay_seconds: float = GC_DELAY_SECONDS,
        inline_max_bytes: int = INLINE_MAX_BYTES,
        min_part_bytes: int = MIN_PART_BYTES,
    ) -> None:
        self.kv = kv
        self.blobs = blobs
        self.io = offloader
        self.transfers = Transfers(blobs=blobs, offloader=offloader)
        self.tokens = PageTokens(_token_key(kv, offloader))
        self.refs = BlobReferences(
            kv=kv, blobs=blobs, offloader=offloader, gc_delay_seconds=gc_delay_seconds
        )
        self._commits = Commits(kv=kv, blobs=blobs, io=offloader, refs=self.refs)
        # Multipart uploads are the store's other half, writing through the same commits.
        self.uploads = MultipartUploads(self, self._commits, min_part_bytes=min_part_bytes)
        self.buckets = BucketCache(kv, offloader)  # what authorization reads
        self.verify_reads = True  # check blocks against their CRC32C before serving them
        self.inline_max_bytes = inline_max_bytes  # bodies this small live in their record
        # For metrics: reads refused for damaged bytes; blobs read without block checksums.
        self.corrupt_reads = self.unverified_reads = 0

    # --- lifecycle ------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        offloader: Offloader,
        gc_delay_seconds: float = GC_DELAY_SECONDS,
        inline_max_bytes: int = INLINE_MAX_BYTES,
        min_part_bytes: int = MIN_PART_BYTES,
        verify_reads: bool = True,
        min_free_bytes: int = 0,
    ) -> ObjectStore:
        """Open (or create) the store in ``data_dir``; blocking, call before serving.

        Raises :class:`StoreVersionError` for a store of an unknown schema version.
        """
        if data_dir.exists() and not data_dir.is_dir():
            raise NotADirectoryError(f"data_dir {data_dir} is not a directory")
        data_dir.mkdir(parents=True, exist_ok=True)
        kv = LevelDBKV(data_dir / "meta")
        try:
            _check_schema(kv, offloader, data_dir)
        except BaseException:
            kv.close()
            raise
        store = cls(
            kv=kv,
            blobs=BlobStore(data_dir),
            offloader=offloader,
            gc_delay_seconds=gc_delay_seconds,
            inline_max_bytes=inline_max_bytes,
            min_part_bytes=min_part_bytes,
        )
        store.verify_reads = verify_reads
        store.blobs.min_free_bytes = min_free_bytes
        store.recover()
        return store

    def recover(self) -> None:
        """Start-up repair of what a crash can leave: staged files, buckets half-way through
        deletion, multipart uploads half-way through completion or abort (all reopened: the
        operation never committed, so the client may simply retry it)."""
        self.blobs.clean_staging()
        for raw_key, raw in scan_all(self.kv, ks.BUCKET_PREFIX, ks.prefix_end(ks.BUCKET_PREFIX)):
            record = decode_bucket(ks.bucket_from_key(raw_key), raw)
            if record.state != "active":
                self._replace(raw_key, raw, encode_bucket(BucketRecord(info=record.info)))
        for raw_key, raw in scan_all(self.kv, ks.UPLOAD_PREFIX, ks.prefix_end(ks.UPLOAD_PREFIX)):
            upload = decode_upload(raw)
            if upload.state != "active":
                self._replace(
                    raw_key, raw, encode_upload(dataclasses.replace(upload, state="active"))
                )

    def _replace(self, key: bytes, old: bytes, new: bytes) -> None:
        unit = Unit(self.kv, self.io)
        unit.expect(key, old)
        unit.put(key, new)
        if not unit.commit_now():  # start-up runs alone: nobody else changes records now
            raise InternalError(f"record {key!r} changed during start-up")

    def close(self) -> None:
        self.kv.close()

    # --- what else lives in the store's keyspace and blob tree ------------------------------
    def credential_store(self, master_key: bytes) -> CredentialStore:
        """The access keys, kept in this store's metadata and sealed with ``master_key``."""
        return CredentialStore(kv=self.kv, offloader=self.io, master_key=master_key)

    def scrubber(
        self, *, bytes_per_second: float, interval_seconds: float, state_path: Path
    ) -> Scrubber:
        """The background re-verification of this store's blobs (see blobs/scrub.py)."""
        return Scrubber(
            blobs=self.blobs,
            offloader=self.io,
            bytes_per_second=bytes_per_second,
            interval_seconds=interval_seconds,
            state_path=state_path,
        )

    def lifecycle_worker(
        self,
        *,
        interval_seconds: float,
        objects_per_second: float,
        day_seconds: float,
        clock: Callable[[], int] = time.time_ns,
    ) -> LifecycleWorker:
        """The background application of buckets' lifecycle rules (objects/lifecycle/)."""
        return LifecycleWorker(
            clock=clock,
            kv=self.kv,
            io=self.io,
            commits=self._commits,
            uploads=self.uploads,
            interval_seconds=interval_seconds,
            objects_per_second=objects_per_second,
            day_seconds=day_seconds,
        )

    async def stats(self, data_dir: Path) -> StoreStats:
        """Counts and sizes per bucket and for the store (a full keyspace pass, on the pool)."""
        return await self.io.run(gather_stats, self.kv, data_dir)

    def page_token(self, after: str) -> str:
        """An opaque, sealed continuation token for a listing that continues after ``after``."""
        return self.tokens.encode(after)

    def resume_after(self, token: str) -> str:
        """Where a continuation token continues; InvalidArgument for one the store did not
        issue or that was altered."""
        return self.tokens.decode(token)

    # --- buckets --------------------------------------------------------------------------
    async def create_bucket(
        self,
        name: str,
        *,
        owner: Owner,
        object_lock: bool = False,
        access: BucketAccess | None = None,
    ) -> BucketInfo:
        """Raises InvalidBucketName, BucketAlreadyOwnedByYou or BucketAlreadyExists. A bucket
        created with ``object_lock`` has versioning enabled, for good. ``access`` is its
        ownership controls, ACL and public access block (none of them by default)."""
        validate_bucket_name(name)
        access = access or BucketAccess()
        info = BucketInfo(
            name=name,
            created_ns=time.time_ns(),
            owner=owner,
            versioning=VERSIONING_ENABLED if object_lock else UNVERSIONED,
            object_lock=ObjectLock() if object_lock else None,
            ownership=access.ownership,
            acl=access.acl,
            public_access_block=access.public_access_block,
        )
        key = ks.bucket_key(name)

        async def attempt(unit: WriteUnit) -> None:
            raw = await unit.read(key)
            if raw is not None:
                if decode_bucket(name, raw).info.owner.id == owner.id:
                    raise BucketAlreadyOwnedByYou(resource=name)
                raise BucketAlreadyExists(resource=name)
            unit.put(key, encode_bucket(BucketRecord(info=info)))

        try:
            await self._commits.transact(attempt, conflict=lambda: OperationAborted(resource=name))
        finally:
            self.buckets.changed(name)
        return info

    async def set_bucket_acl(self, name: str, acl: Acl | None) -> BucketInfo:
        """Replace the bucket's ACL (None: its owner's full control only)."""
        return await self._change_bucket(name, lambda info: dataclasses.replace(info, acl=acl))

    async def set_bucket_policy(self, name: str, policy: str) -> BucketInfo:
        """Replace the bucket's policy, already checked (auth/access.py); "" removes it."""
        return await self._change_bucket(
            name, lambda info: dataclasses.replace(info, policy=policy)
        )

    async def set_ownership(self, name: str, ownership: str) -> BucketInfo:
        """Set the bucket's Object Ownership ("" removes its ownership controls). Raises
        InvalidBucketAclWithObjectOwnership (BucketOwnerEnforced over an ACL granting others)."""

        def change(info: BucketInfo) -> BucketInfo:
            check_ownership_change(info, ownership)
            return dataclasses.replace(info, ownership=ownership)

        return await self._change_bucket(name, change)

    async def set_bucket_owner(self, name: str, owner: Owner) -> BucketInfo:
        """Give the bucket to ``owner`` (its ACL, naming the old owner, is reset)."""
        return await self._change_bucket(
            name, lambda info: dataclasses.replace(info, owner=owner, acl=None)
        )

    async def set_bucket_tags(self, name: str, tags: Mapping[str, str] | None) -> BucketInfo:
        """Replace the bucket's tag set (None: remove it). Raises InvalidTag."""
        tagged = None if tags is None else check_tags(tags.items(), limit=MAX_BUCKET_TAGS)
        return await self._change_bucket(name, lambda info: dataclasses.replace(info, tags=tagged))

    async def set_lifecycle(self, name: str, rules: Sequence[LifecycleRule] | None) -> BucketInfo:
        """Replace the bucket's lifecycle configuration (None: remove it); the rules stored,
        each with an ID. Raises NoSuchBucket, InvalidArgument, InvalidRequest,
        InvalidStorageClass (see objects/lifecycle/rules.py)."""
        checked = None if rules is None else check_rules(rules)
        return await self._change_bucket(
            name, lambda info: dataclasses.replace(info, lifecycle=checked)
        )

    async def set_public_access_block(
        self, name: str, block: PublicAccessBlock | None
    ) -> BucketInfo:
        return await self._change_bucket(
            name, lambda info: dataclasses.replace(info, public_access_block=block)
        )

    async def set_versioning(self, name: str, status: str) -> BucketInfo:
        """Versioning Enabled or Suspended (a bucket never goes back to unversioned).
        Raises NoSuchBucket, InvalidArgument (another status), InvalidBucketState (suspending
        a bucket with object lock)."""
        if status not in (VERSIONING_ENABLED, VERSIONING_SUSPENDED):
            raise InvalidArgument("Versioning status must be Enabled or Suspended", resource=name)

        def change(info: BucketInfo) -> BucketInfo:
            if status != VERSIONING_ENABLED and info.object_lock is not None:
                raise InvalidBucketState(
                    "An Object Lock configuration is present on this bucket, so the versioning "
                    "state cannot be changed.",
                    resource=name,
                )
            return dataclasses.replace(info, versioning=status)

        return await self._change_bucket(name, change)

    async def set_object_lock(self, name: str, lock: ObjectLock) -> BucketInfo:
        """Turn object lock on (for good) or change its default retention. A bucket created
        without it may take it once versioning is enabled, as S3 allows since 2023. Raises
        NoSuchBucket, InvalidArgument (a default retention out of AWS's bounds),
        InvalidBucketState (versioning not enabled)."""
        check_default_retention(lock.default)

        def change(info: BucketInfo) -> BucketInfo:
            if info.versioning != VERSIONING_ENABLED:
                raise InvalidBucketState(
                    "Versioning must be 'Enabled' on the bucket to apply a Object Lock "
                    "configuration",
                    resource=name,
                )
            return dataclasses.replace(info, object_lock=lock)

        return await self._change_bucket(name, change)

    async def _change_bucket(
        self, name: str, change: Callable[[BucketInfo], BucketInfo]
    ) -> BucketInfo:
        key = ks.bucket_key(name)

        async def attempt(unit: WriteUnit) -> BucketInfo:
            record = active_bucket(name, await unit.read(key))
            info = change(record.info)
            unit.put(key, encode_bucket(dataclasses.replace(record, info=info)))
            return info

        try:
            return await self._commits.transact(
                attempt, conflict=lambda: OperationAborted(resource=name)
            )
        finally:
            self.buckets.changed(name)

    async def head_bucket(self, name: str) -> BucketInfo:
        """Raises NoSuchBucket."""
        return (await self.bucket_record(name))[0].info

    async def list_buckets(self) -> list[BucketInfo]:
        rows = await self.io.run(
            lambda: list(scan_all(self.kv, ks.BUCKET_PREFIX, ks.prefix_end(ks.BUCKET_PREFIX)))
        )
        return [decode_bucket(ks.bucket_from_key(k), v).info for k, v in rows]

    async def delete_bucket(
        self, name: str, *, release_uploads: Callable[[str], Awaitable[None]] | None = None
    ) -> None:
        """Raises NoSuchBucket or BucketNotEmpty.

        The bucket is first marked "deleting" so that any write that read it as active fails
        its expectation; only then is emptiness checked, so no object lands in a deleted bucket.
        Without ``release_uploads`` uploads in progress count as contents too; with it, it is
        called (bucket marked) to end them, as S3's DeleteBucket does (MultipartUploads).
        A crash in between leaves the bucket "deleting", which start-up makes active again.
        """
        key = ks.bucket_key(name)

        async def mark(unit: WriteUnit) -> tuple[bytes, bytes]:
            raw = await unit.read(key)
            record = active_bucket(name, raw)
            assert raw is not None
            deleting = encode_bucket(BucketRecord(info=record.info, state="deleting"))
            unit.put(key, deleting)
            return raw, deleting

        try:
            raw, deleting = await self._commits.transact(
                mark, conflict=lambda: OperationAborted(resource=name)
            )
        finally:
            self.buckets.changed(name)
        try:
            prefixes = [ks.object_prefix(name)]
            if release_uploads is None:
                prefixes.append(ks.upload_prefix(name))
            if await self._holds_any(prefixes):
                raise BucketNotEmpty(resource=name)
            if release_uploads is not None:
                await release_uploads(name)
        except BaseException:
            # Only this operation changes a bucket marked "deleting" (writes expect it active).
            await asyncio.shield(self._commits.swap(key, deleting, raw))
            raise
        finally:
            self.buckets.changed(name)
        if not await self._commits.swap(key, deleting, None):
            raise InternalError("The bucket record changed while it was being deleted.")
        self.buckets.changed(name)

    async def _holds_any(self, prefixes: Sequence[bytes]) -> bool:
        for prefix in prefixes:
            rows = await self.io.run(
                self.kv.scan, prefix, ks.prefix_end(prefix), limit=1, keys_only=True
            )
            if rows:
                return True
        return False

    async def bucket_record(self, name: str) -> tuple[BucketRecord, bytes]:
        raw = await self.io.run(self.kv.get, ks.bucket_key(name))
        record = active_bucket(name, raw)
        assert raw is not None
        return record, raw

    def _read_bucket_and_object(self, bucket: str, key: str) -> tuple[bytes, bytes | None]:
        bucket_key, object_key = bucket_and_object_keys(bucket, key)
        return active_pair(bucket, self.kv.get(bucket_key), self.kv.get(object_key))

    # --- writes ---------------------------------------------------------------------------
    async def put_object(
        self,
        bucket: str,
        key: str,
        body: AsyncIterator[bytes],
        *,
        headers: ContentHeaders | None = None,
        user_metadata: Mapping[str, str] | None = None,
        expect: BodyExpectations | None = None,
        preconditions: Preconditions | None = None,
        protection: Protection | None = None,
        acl: ObjectAcl | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> ObjectHead:
        """Stream ``body`` into a new object version and make it visible atomically; the
        version as placed (its version id, its lock). ``acl`` is its owner and ACL (None: the
        bucket owner's, as for objects written before owners existed); ``tags`` its tag set.

        Raises NoSuchBucket, InvalidArgument/KeyTooLongError, BadDigest,
        XAmzContentSHA256Mismatch, IncompleteBody, EntityTooLarge, PreconditionFailed,
        NoSuchKey (If-Match on a missing key), InsufficientStorage.
        """
        validate_key(key)
        headers = headers or ContentHeaders()
        user_metadata = dict(user_metadata or {})
        validate_metadata(headers, user_metadata)
        tagged = check_tags((tags or {}).items())
        expect = expect or BodyExpectations()
        pre = preconditions or Preconditions()
        # A small body is read whole first (the commit checks the bucket); a larger one only
        # once the bucket is known to exist.
        small, body = await take_small(body, self.inline_max_bytes, expect.checksums)
        if small is not None:
            verify_body(small, expect, key)
            head = _new_head(bucket, key, small, headers, user_metadata, inline=small.data)
            head = dataclasses.replace(_with_acl(head, acl), tags=tagged)
            return await self._commit_object(head, pre, None, protection)
        await self.bucket_record(bucket)
        staged = await self.stage_body(body, expect)
        try:
            verify_body(staged, expect, key)
            head = _new_head(bucket, key, staged, headers, user_metadata, inline=None)
            head = dataclasses.replace(_with_acl(head, acl), tags=tagged)
            return await self._commit_object(head, pre, staged, protection)
        finally:
            # Shielded: a cancelled request (client gone) must still remove its staged file.
            await asyncio.shield(self.io.run(self.blobs.discard, staged))

    async def stage_body(self, body: AsyncIterator[bytes], expect: BodyExpectations) -> StagedBlob:
        """A PUT's body or a part's, staged; EntityTooLarge past S3's 5 GiB, whichever door
        it came through (read at call time, so a test may lower it)."""
        return await self.transfers.stage(body, expect, max_bytes=limits.MAX_PUT_BYTES)

    async def _disk(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.transfers.disk(fn, *args, **kwargs)

    async def _commit_object(
        self,
        head: ObjectHead,
        pre: Preconditions,
        staged: StagedBlob | None,
        protection: Protection | None,
    ) -> ObjectHead:
        inline_way = head.inline is not None and protection is None

        async def attempt(unit: WriteUnit) -> ObjectHead:
            nonlocal inline_way
            if inline_way:
                # One pool job when nothing holds blobs; once the old version is seen to
                # hold some (or the bucket to keep versions), the general way from then on.
                placed = await self.io.run(self._commits.replace_inline_now, unit, head, pre)
                if placed is not None:
                    return placed
                inline_way = False
            return await self._commits.replace_object(
                unit, head, pre, staged, protection=protection
            )

        return await self._commits.transact(
            attempt, conflict=lambda: ConditionalRequestConflict(resource=head.key)
        )

    async def copy_object(
        self,
        source: tuple[str, str],
        target: tuple[str, str],
        *,
        source_version: str | None = None,
        replace: tuple[ContentHeaders, Mapping[str, str]] | None = None,
        source_preconditions: Preconditions | None = None,
        preconditions: Preconditions | None = None,
        protection: Protection | None = None,
        acl: ObjectAcl | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> tuple[ObjectHead, ObjectHead]:
        """Make ``target`` (bucket, key) a copy of ``source`` (its current version, or
        ``source_version``), sharing its blobs: no bytes move. The source version and the new
        one, as placed.

        ``replace`` gives new headers and metadata (S3's REPLACE directive); otherwise they are
        copied; so are the source's tags unless ``tags`` replaces them (S3's tagging directive).
        Raises NoSuchBucket, NoSuchKey, InvalidRequest (a copy onto itself that changes
        nothing), PreconditionFailed (source or target conditions), InvalidTag.
        """
        (src_bucket, src_key), (dst_bucket, dst_key) = source, target
        validate_key(dst_key)
        if source == target and replace is None and source_version is None:
            raise InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself "
                "without changing the object's metadata, storage class, website redirect "
                "location or encryption attributes.",
                resource=dst_key,
            )
        if replace is not None:
            validate_metadata(replace[0], replace[1])
        new_tags = None if tags is None else check_tags(tags.items())

        async def attempt(unit: WriteUnit) -> tuple[ObjectHead, ObjectHead]:
            # The source must still be the version read (the commit expects it): its
            # references keep the shared blobs from collection until this commit adds the
            # copy's own.
            src = await self._copy_source(unit, src_bucket, src_key, source_version)
            if source_preconditions is not None:
                _check_copy_source(src, source_preconditions)
            headers, metadata = replace or (src.headers, src.user_metadata)
            head = dataclasses.replace(
                src,
                bucket=dst_bucket,
                key=dst_key,
                mtime_ns=time.time_ns(),
                headers=headers,
                user_metadata=dict(metadata),
                retention=None,
                legal_hold=False,
                owner=acl.owner if acl else None,
                acl=acl.acl if acl else None,
                tags=src.tags if new_tags is None else new_tags,
            )
            placed = await self._commits.replace_object(
                unit, head, preconditions or Preconditions(), protection=protection
            )
            return src, placed

        return await self._commits.transact(
            attempt, conflict=lambda: ConditionalRequestConflict(resource=dst_key)
        )

    async def _copy_source(
        self, unit: WriteUnit, bucket: str, key: str, version_id: str | None
    ) -> ObjectHead:
        _bucket_raw, current_raw = await self._commits.bucket_and_object(unit, bucket, key)
        current = decode_object(bucket, key, current_raw) if current_raw else None
        if version_id is None:
            if current is None or current.delete_marker:
                raise NoSuchKey(resource=key)
            return current
        check_version_id(version_id, resource="x-amz-copy-source")
        found = None
        if current is None or current.version_id != version_id:
            found = await find_noncurrent(unit, bucket, key, version_id)
        src = select_version(bucket, key, current, version_id, found[1] if found else None)
        if src.delete_marker:
            raise marker_copy_refused(key)
        return src

    async def delete_object(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str | None = None,
        bypass_governance: bool = False,
        conditions: DeleteConditions | None = None,
    ) -> DeleteResult:
        """Without ``version_id``: remove ``key`` (unversioned bucket) or put a delete marker
        on it. With one: remove that version for good (a locked one only as its lock allows).
        ``conditions`` are tested on the version removed, in the same commit. Raises
        NoSuchBucket, InvalidArgument (a malformed version id), ObjectLocked,
        PreconditionFailed."""
        if version_id is not None:
            check_version_id(version_id)

        async def attempt(unit: WriteUnit) -> DeleteResult:
            bucket_raw, old_raw = await self._commits.bucket_and_object(unit, bucket, key)
            info = decode_bucket(bucket, bucket_raw).info
            current = decode_object(bucket, key, old_raw) if old_raw else None
            if version_id is None:
                return await delete_current(unit, info, bucket, key, current, conditions=conditions)
            return await delete_version(
                unit,
                bucket,
                key,
                current,
                version_id,
                bypass_governance=bypass_governance,
                conditions=conditions,
            )

        return await self._commits.transact(
            attempt, conflict=lambda: ConditionalRequestConflict(resource=key)
        )

    # --- reads ----------------------------------------------------------------------------
    async def head_object(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str | None = None,
        preconditions: Preconditions | None = None,
    ) -> ObjectHead:
        """The current version or ``version_id``. Raises NoSuchBucket, NoSuchKey (with the
        delete marker that is current, if one is), InvalidArgument, NoSuchVersion,
        IsDeleteMarker (a version that is one), PreconditionFailed, NotModified."""
        if version_id is not None:
            check_version_id(version_id)
        head = await self.io.run(self._read_version, bucket, key, version_id)
        if preconditions is not None:
            check_read(head, preconditions)
        return head

    def _read_version(self, bucket: str, key: str, version_id: str | None) -> ObjectHead:
        """One pool job: a small request's cost is mostly its trips through the pool."""
        _bucket_raw, raw = self._read_bucket_and_object(bucket, key)
        current = decode_object(bucket, key, raw) if raw is not None else None
        if version_id is None:
            if current is None:
                raise NoSuchKey(resource=key)
            if current.delete_marker:
                raise NoSuchKey(resource=key, delete_marker=current.version_id)
            return current
        found = None
        if current is None or current.version_id != version_id:
            found = noncurrent_now(self.kv, bucket, key, version_id)
        noncurrent = decode_object(bucket, key, found[1]) if found else None
        head = select_version(bucket, key, current, version_id, noncurrent)
        if head.delete_marker:
            raise IsDeleteMarker(head.version_id, resource=key)
        return head

    async def open_object(
        self,
        bucket: str,
        key: str,
        *,
        byte_range: RangeRequest | None = None,
        part_number: int | None = None,
        version_id: str | None = None,
        preconditions: Preconditions | None = None,
        exact_range: bool = False,
    ) -> ObjectReader:
        """The object's metadata and a stream of its bytes (or of the range or part selected).

        Raises what :meth:`head_object` raises, InvalidRange for an unsatisfiable range and
        InvalidPartNumber for a part the object does not have. With ``exact_range`` (a copy's
        source range) a range must lie within the object, where a read's is clipped: else
        InvalidRange too.
        """
        head = await self.head_object(
            bucket, key, version_id=version_id, preconditions=preconditions
        )
        if part_number is not None:
            selected = part_range(head, part_number)
        elif exact_range and byte_range and (byte_range.last or 0) >= head.size:
            raise InvalidRange(
                f"Range specified is not valid for source object of size: {head.size}",
                resource=key,
                size=head.size,
            )
        else:
            selected = resolve_range(byte_range, head.size, key) if byte_range else None
        start, end = (selected.start, selected.end + 1) if selected else (0, head.size)
        return ObjectReader(head=head, range=selected, chunks=self.stream(head, start, end))

    async def stream(self, head: ObjectHead, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` of the object, one bounded chunk at a time.

        With ``verify_reads`` every block is read whole and checked against its CRC32C (one
        pool job) before any of it is yielded; bytes that fail raise InternalError, logged at
        ERROR and counted in ``corrupt_reads``: bit rot is never served.
        """
        if head.inline is not None:
            yield self._checked_inline(head)[start:end]
            return
        seg_start = 0
        try:
            for seg in head.segments:
                seg_end = seg_start + seg.size
                if seg_end > start and seg_start < end:
                    offset = max(start, seg_start) - seg_start
                    stop = min(end, seg_end) - seg_start
                    reader = await self.transfers.opened(
                        functools.partial(
                            self.blobs.open_reader,
                            seg.sha256_hex,
                            seg.size,
                            verify=self.verify_reads,
                        ),
                        BlobReader.close,
                    )
                    try:
                        self.unverified_reads += self.verify_reads and not reader.verified
                        # Closed here, not when collected: its read must end before the close.
                        ahead = self.transfers.read_ahead(reader, offset, stop)
                        async with contextlib.aclosing(ahead) as chunks:
                            async for chunk in chunks:
                                yield chunk
                    finally:
                        await self.io.run(reader.close)
                seg_start = seg_end
        except BlockMismatch as exc:
            self.corrupt_reads += 1
            log.error("corrupt %s; object %s/%s: read refused", exc, head.bucket, head.key)
            raise InternalError(
                "The stored bytes failed their integrity check; they are not served.",
                resource=head.key,
            ) from exc

    def _checked_inline(self, head: ObjectHead) -> bytes:
        assert head.inline is not None
        if self.verify_reads and not intact(head.inline, head.md5_hex):
            self.corrupt_reads += 1
            log.error("corrupt inline object %s/%s: read refused", head.bucket, head.key)
            raise InternalError(
                "The stored bytes failed their integrity check; they are not served.",
                resource=head.key,
            )
        return head.inline

    async def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        after: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        """One page of keys (and common prefixes) greater than ``after``, in UTF-8 order."""
        await self.bucket_record(bucket)
        return await self.io.run(
            list_page,
            self.kv,
            bucket,
            prefix=prefix,
            delimiter=delimiter,
            after=after,
            max_keys=max_keys,
        )

    async def list_object_versions(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        after: tuple[str, str | None] | None = None,
        max_keys: int = 1000,
    ) -> VersionPage:
        """One page of versions (and common prefixes) after ``after`` (a key, and a version
        of it or None for all of its versions), keys in UTF-8 order, each newest first."""
        await self.bucket_record(bucket)
        return await self.io.run(
            list_versions_page,
            self.kv,
            bucket,
            prefix=prefix,
            delimiter=delimiter,
            after=after,
            max_keys=max_keys,
        )

    # --- object lock ----------------------------------------------------------------------
    async def set_retention(
        self,
        bucket: str,
        key: str,
        retention: Retention | None,
        *,
        version_id: str | None = None,
        bypass_governance: bool = False,
    ) -> ObjectHead:
        """Set (None: remove) a version's retention, as its lock in force allows. Raises
        NoSuchBucket, NoSuchKey, NoSuchVersion, InvalidRequest (no object lock), ObjectLocked."""

        def change(head: ObjectHead) -> ObjectHead:
            check_retention_change(head, retention, bypass_governance=bypass_governance)
            return dataclasses.replace(head, retention=retention)

        return await self._change_version(bucket, key, version_id, change)

    async def set_legal_hold(
        self, bucket: str, key: str, on: bool, *, version_id: str | None = None
    ) -> ObjectHead:
        """Put a legal hold on a version or lift it. Raises what :meth:`set_retention` does."""
        return await self._change_version(
            bucket, key, version_id, lambda head: dataclasses.replace(head, legal_hold=on)
        )

    async def set_object_acl(
        self, bucket: str, key: str, acl: Acl | None, *, version_id: str | None = None
    ) -> ObjectHead:
        """Replace a version's ACL (its owner stays; its mtime too, as in S3). Raises
        NoSuchBucket, NoSuchKey, NoSuchVersion, IsDeleteMarker."""
        return await self._replace_in_version(bucket, key, version_id, acl=acl)

    async def set_object_tags(
        self,
        bucket: str,
        key: str,
        tags: Mapping[str, str],
        *,
        version_id: str | None = None,
    ) -> ObjectHead:
        """Replace a version's tag set (empty: remove it); its mtime stays, as in S3. Raises
        what :meth:`set_object_acl` does, and InvalidTag."""
        tagged = check_tags(tags.items())
        return await self._replace_in_version(bucket, key, version_id, tags=tagged)

    async def _replace_in_version(
        self, bucket: str, key: str, version_id: str | None, **fields: Any
    ) -> ObjectHead:
        """A version with ``fields`` replaced: what it holds about access, not its lock."""
        return await self._change_version(
            bucket,
            key,
            version_id,
            lambda head: dataclasses.replace(head, **fields),
            needs_lock=False,
        )

    async def _change_version(
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        change: Callable[[ObjectHead], ObjectHead],
        *,
        needs_lock: bool = True,
    ) -> ObjectHead:
        if version_id is not None:
            check_version_id(version_id)

        async def attempt(unit: WriteUnit) -> ObjectHead:
            bucket_raw, current_raw = await self._commits.bucket_and_object(unit, bucket, key)
            lockless = decode_bucket(bucket, bucket_raw).info.object_lock is None
            if needs_lock and lockless:
                raise InvalidRequest("Bucket is missing Object Lock Configuration", resource=bucket)
            current = decode_object(bucket, key, current_raw) if current_raw else None
            if version_id is None or (current and current.version_id == version_id):
                if current is None or (current.delete_marker and version_id is None):
                    raise NoSuchKey(resource=key)
                record_key, head = ks.object_key(bucket, key), current
            else:
                found = await find_noncurrent(unit, bucket, key, version_id)
                head = select_version(bucket, key, None, version_id, found[1] if found else None)
                assert found is not None
                record_key = found[0]
            if head.delete_marker:
                raise IsDeleteMarker(head.version_id, resource=key)
            changed = change(head)
            unit.put(record_key, encode_object(changed))
            return changed

        return await self._commits.transact(
            attempt, conflict=lambda: ConditionalRequestConflict(resource=key)
        )

    async def collect_garbage(self, *, now_ns: int | None = None) -> int:
        """Remove blobs unreferenced for longer than the GC delay; returns how many."""
        return await self.refs.collect_garbage(now_ns=now_ns)


def _check_copy_source(head: ObjectHead, pre: Preconditions) -> None:
    """Copy-source conditions fail with 412 whichever of them fails (S3 CopyObject)."""
    try:
        check_read(head, pre)
    except NotModified:
        raise PreconditionFailed(resource=head.key) from None


def _token_key(kv: OrderedKV, io: Offloader) -> bytes:
    """The key sealing continuation tokens, created once per store (blocking; at open)."""
    existing = kv.get(ks.TOKEN_KEY)
    if existing is not None:
        return existing
    unit = Unit(kv, io)
    unit.expect(ks.TOKEN_KEY, None)
    unit.put(ks.TOKEN_KEY, secrets.token_bytes(32))
    unit.commit_now()  # another daemon may have created it first: then theirs is used
    key = kv.get(ks.TOKEN_KEY)
    assert key is not None
    return key


def _check_schema(kv: OrderedKV, io: Offloader, data_dir: Path) -> None:
    raw = kv.get(ks.SCHEMA_KEY)
    if raw is None:
        unit = Unit(kv, io)
        unit.expect(ks.SCHEMA_KEY, None)
        unit.put(ks.SCHEMA_KEY, encode_schema())
        if unit.commit_now():
            return
        raw = kv.get(ks.SCHEMA_KEY)  # written meanwhile by another process: check it
        assert raw is not None
    version = decode_schema(raw)
    if version != SCHEMA_VERSION:
        raise StoreVersionError(
            f"{data_dir} holds a store of schema version {version}; this LightningSTOR reads "
            f"version {SCHEMA_VERSION}. Upgrade LightningSTOR or point it at another data dir."
        )


def _with_acl(head: ObjectHead, acl: ObjectAcl | None) -> ObjectHead:
    if acl is None:
        return head
    return dataclasses.replace(head, owner=acl.owner, acl=acl.acl)


def _new_head(
    bucket: str,
    key: str,
    body: StagedBlob | InlineBody,
    headers: ContentHeaders,
    user_metadata: Mapping[str, str],
    *,
    inline: bytes | None,
) -> ObjectHead:
    segments = () if inline is not None else (Segment(sha256_hex=body.sha256_hex, size=body.size),)
    return ObjectHead(
        bucket=bucket,
        key=key,
        size=body.size,
        md5_hex=body.md5_hex,
        etag=body.md5_hex,
        mtime_ns=time.time_ns(),
        headers=headers,
        user_metadata=user_metadata,
        checksums=body.checksums,
        segments=segments,
        inline=inline,
    )
