"""Multipart uploads: parts as their own content-addressed blobs, completion without copying.

Each part is staged, verified and committed like an object (one guarded batch: part record plus
a reference to its blob). Completion is one batch that writes the object record whose segment
list is the chosen parts' blobs, deletes the upload and part records, and releases the parts
not chosen: no byte is copied, however large the object.

Completion and abort first mark the upload "closing" (compare-and-swap on its record); part
uploads expect the record they read as active, so none can land after the final listing of
parts and be orphaned.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lightningstor.blobs.checksums import (
    CHECKSUM_TYPES,
    COMPOSITE,
    BodyDigests,
    combined_crc,
    composite,
)
from lightningstor.blobs.references import WriteUnit
from lightningstor.blobs.transfer import verify_body
from lightningstor.errors import (
    BadDigest,
    ConditionalRequestConflict,
    EntityTooSmall,
    InvalidArgument,
    InvalidPart,
    InvalidPartOrder,
    InvalidRequest,
    NoSuchUpload,
    OperationAborted,
    StorageError,
)
from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import scan_all
from lightningstor.meta.records import (
    PartRecord,
    UploadRecord,
    decode_part,
    decode_upload,
    encode_part,
    encode_upload,
)
from lightningstor.model import (
    BodyExpectations,
    ContentHeaders,
    ObjectAcl,
    ObjectHead,
    Owner,
    Preconditions,
    Protection,
    Segment,
)
from lightningstor.objects.commits import Commits, active_bucket
from lightningstor.objects.limits import MAX_PART_NUMBER
from lightningstor.objects.names import validate_key, validate_metadata
from lightningstor.objects.tags import check_tags
from lightningstor.objects.versions import check_lockable

if TYPE_CHECKING:  # the store builds its uploads; it is imported for its type only
    from lightningstor.objects.store import ObjectStore

MIN_PART_BYTES = 5 * 1024 * 1024  # S3: every part but the last
STALE_UPLOAD_SECONDS = 7 * 24 * 3600
# How often DeleteBucket looks again at uploads that another operation is closing.
_BUSY_ROUNDS = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadInfo:
    bucket: str
    key: str
    upload_id: str
    created_ns: int
    headers: ContentHeaders
    user_metadata: dict[str, str]
    checksum_algorithm: str
    checksum_type: str  # COMPOSITE or FULL_OBJECT; "" without an algorithm
    owner: Owner | None = None  # the completed object's owner (None: the bucket's)


@dataclass(frozen=True, slots=True, kw_only=True)
class PartInfo:
    number: int
    size: int
    etag: str  # unquoted hex MD5 of the part's bytes
    checksums: dict[str, str]
    mtime_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CompletedPart:
    """A part as the client names it in CompleteMultipartUpload."""

    number: int
    etag: str
    checksums: dict[str, str] = dataclasses.field(default_factory=dict)


def multipart_etag(md5_hexes: Sequence[str]) -> str:
    """S3's multipart ETag: MD5 of the parts' binary MD5s, then "-<count>"."""
    joined = b"".join(bytes.fromhex(h) for h in md5_hexes)
    return f"{hashlib.md5(joined, usedforsecurity=False).hexdigest()}-{len(md5_hexes)}"


def _part_info(record: PartRecord) -> PartInfo:
    return PartInfo(
        number=record.number,
        size=record.size,
        etag=record.md5_hex,
        checksums=record.checksums,
        mtime_ns=record.mtime_ns,
    )


class MultipartUploads:
    def __init__(
        self, store: ObjectStore, commits: Commits, *, min_part_bytes: int = MIN_PART_BYTES
    ) -> None:
        # The store's public reads (buckets, objects) and its one way to commit, shared with
        # it: uploads are the store's other half, not a client of its internals.
        self._store = store
        self._commits = commits
        self._kv, self._io = commits.kv, commits.io
        self.min_part_bytes = min_part_bytes

    # --- start ----------------------------------------------------------------------------
    async def create(
        self,
        bucket: str,
        key: str,
        *,
        headers: ContentHeaders | None = None,
        user_metadata: dict[str, str] | None = None,
        checksum_algorithm: str = "",
        checksum_type: str = "",
        protection: Protection | None = None,
        acl: ObjectAcl | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> UploadInfo:
        """Raises NoSuchBucket, KeyTooLongError/InvalidArgument, InvalidRequest (an unknown
        algorithm, or a checksum type the algorithm cannot have). ``protection`` is the lock
        of the version the completion makes, ``acl`` its owner and ACL."""
        validate_key(key)
        headers = headers or ContentHeaders()
        user_metadata = dict(user_metadata or {})
        validate_metadata(headers, user_metadata)
        checksum_type = _checksum_type(checksum_algorithm, checksum_type)
        info = (await self._store.bucket_record(bucket))[0].info  # NoSuchBucket first
        check_lockable(info, protection or Protection())
        upload_id = secrets.token_hex(16)
        record = UploadRecord(
            created_ns=time.time_ns(),
            headers=headers,
            user_metadata=user_metadata,
            checksum_algorithm=checksum_algorithm,
            checksum_type=checksum_type,
            protection=protection or Protection(),
            owner=acl.owner if acl else None,
            acl=acl.acl if acl else None,
            tags=check_tags((tags or {}).items()),
        )

        async def attempt(unit: WriteUnit) -> None:
            # The bucket read is expected by the commit: no upload starts while it is deleted.
            active_bucket(bucket, await unit.read(ks.bucket_key(bucket)))
            unit.put(ks.upload_key(bucket, key, upload_id), encode_upload(record))

        await self._commits.transact(
            attempt, conflict=lambda: ConditionalRequestConflict(resource=key)
        )
        return self._info(bucket, key, upload_id, record)

    @staticmethod
    def _info(bucket: str, key: str, upload_id: str, record: UploadRecord) -> UploadInfo:
        return UploadInfo(
            bucket=bucket,
            key=key,
            upload_id=upload_id,
            created_ns=record.created_ns,
            headers=record.headers,
            user_metadata=record.user_metadata,
            checksum_algorithm=record.checksum_algorithm,
            checksum_type=record.checksum_type or _default_type(record.checksum_algorithm),
            owner=record.owner,
        )

    async def _upload(
        self, bucket: str, key: str, upload_id: str, unit: WriteUnit | None = None
    ) -> tuple[UploadRecord, bytes]:
        """The active upload's record, read through ``unit`` (so its commit expects it) when
        one is given. Raises NoSuchBucket, NoSuchUpload."""
        await self._store.bucket_record(bucket)
        if len(upload_id) != 32 or not all(c in "0123456789abcdef" for c in upload_id):
            raise NoSuchUpload(resource=upload_id)
        upload_key = ks.upload_key(bucket, key, upload_id)
        raw = await (unit.read(upload_key) if unit else self._io.run(self._kv.get, upload_key))
        if raw is None:
            raise NoSuchUpload(resource=upload_id)
        record = decode_upload(raw)
        if record.state != "active":
            raise NoSuchUpload("The upload is being completed or aborted.", resource=upload_id)
        return record, raw

    # --- parts ----------------------------------------------------------------------------
    async def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        number: int,
        body: AsyncIterator[bytes],
        *,
        expect: BodyExpectations | None = None,
    ) -> PartInfo:
        """Stage, verify and record one part; re-uploading a number replaces (and releases)
        the earlier part. Raises NoSuchUpload, InvalidArgument, BadDigest, EntityTooLarge..."""
        if not 1 <= number <= MAX_PART_NUMBER:
            raise InvalidArgument(
                f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive",
                resource="partNumber",
            )
        record, _raw = await self._upload(bucket, key, upload_id)
        expect = expect or BodyExpectations()
        if record.checksum_algorithm and record.checksum_algorithm not in expect.checksums:
            # The composite checksum needs every part's own checksum of that algorithm.
            expect = dataclasses.replace(
                expect, checksums={**expect.checksums, record.checksum_algorithm: None}
            )
        staged = await self._store.stage_body(body, expect)
        try:
            verify_body(staged, expect, key)
            part = PartRecord(
                number=number,
                sha256_hex=staged.sha256_hex,
                size=staged.size,
                md5_hex=staged.md5_hex,
                checksums=staged.checksums,
                mtime_ns=time.time_ns(),
            )
            segment = Segment(sha256_hex=staged.sha256_hex, size=staged.size)
            part_key = ks.part_key(upload_id, number)

            async def attempt(unit: WriteUnit) -> None:
                await self._upload(bucket, key, upload_id, unit)  # still active at commit
                old_raw = await unit.read(part_key)
                unit.put(part_key, encode_part(part))
                unit.add((segment,), staged)
                unit.release((_segment(decode_part(old_raw)),) if old_raw else ())

            await self._commits.transact(
                attempt, conflict=lambda: ConditionalRequestConflict(resource=key)
            )
            return _part_info(part)
        finally:
            # Shielded: a cancelled request (client gone) must still remove its staged file.
            await asyncio.shield(self._io.run(self._commits.blobs.discard, staged))

    async def _parts(self, upload_id: str) -> list[tuple[bytes, bytes]]:
        prefix = ks.part_prefix(upload_id)
        return await self._io.run(
            self._kv.scan, prefix, ks.prefix_end(prefix), limit=MAX_PART_NUMBER + 1
        )

    async def list_parts(
        self, bucket: str, key: str, upload_id: str, *, after: int = 0, max_parts: int = 1000
    ) -> tuple[UploadInfo, list[PartInfo], bool]:
        """Parts numbered above ``after``, at most ``max_parts``, and whether more follow."""
        record, _raw = await self._upload(bucket, key, upload_id)
        parts = [decode_part(raw) for _k, raw in await self._parts(upload_id)]
        later = [_part_info(p) for p in parts if p.number > after]
        return self._info(bucket, key, upload_id, record), later[:max_parts], len(later) > max_parts

    # --- finish ---------------------------------------------------------------------------
    async def _close(self, bucket: str, key: str, upload_id: str) -> tuple[UploadRecord, bytes]:
        """Mark the upload closing; returns it and the record bytes now stored."""
        upload_key = ks.upload_key(bucket, key, upload_id)

        async def attempt(unit: WriteUnit) -> tuple[UploadRecord, bytes]:
            record, _raw = await self._upload(bucket, key, upload_id, unit)
            closing = encode_upload(dataclasses.replace(record, state="closing"))
            unit.put(upload_key, closing)
            return record, closing

        return await self._commits.transact(
            attempt,
            conflict=lambda: NoSuchUpload("The upload was completed or aborted meanwhile."),
        )

    async def _reopen(
        self, bucket: str, key: str, upload_id: str, record: UploadRecord, closing: bytes
    ) -> None:
        # Nobody else changes a closing record (the sweeper skips them); if it did change,
        # there is nothing left to reopen.
        await self._commits.swap(
            ks.upload_key(bucket, key, upload_id), closing, encode_upload(record)
        )

    async def complete(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: Sequence[CompletedPart],
        *,
        preconditions: Preconditions | None = None,
        checksums: Mapping[str, str] | None = None,
    ) -> ObjectHead:
        """Turn the listed parts into the object in one metadata commit; unlisted parts are
        released. ``checksums`` is what the client says the whole object's checksum is (S3's
        x-amz-checksum-* on the completion): checked against the one computed from the parts.
        Raises NoSuchUpload, InvalidPart, InvalidPartOrder, EntityTooSmall, BadDigest,
        PreconditionFailed. A retry of a completion that already succeeded returns its object.
        """
        try:
            record, closing = await self._close(bucket, key, upload_id)
        except NoSuchUpload:
            return await self._already_completed(bucket, key, parts)
        try:
            rows = await self._parts(upload_id)
            stored = {
                decode_part(raw).number: (decode_part(raw), part_key, raw) for part_key, raw in rows
            }
            chosen = self._check_parts(parts, {n: p for n, (p, _k, _r) in stored.items()})
            object_checksums = _object_checksums(record, chosen, checksums or {})
            head = ObjectHead(
                bucket=bucket,
                key=key,
                size=sum(p.size for p in chosen),
                md5_hex="",
                etag=multipart_etag([p.md5_hex for p in chosen]),
                mtime_ns=time.time_ns(),
                headers=record.headers,
                user_metadata=record.user_metadata,
                checksums=object_checksums,
                segments=tuple(_segment(p) for p in chosen),
                part_checksums=tuple(p.checksums for p in chosen) if object_checksums else (),
                owner=record.owner,
                acl=record.acl,
                tags=record.tags,
            )
            upload_key = ks.upload_key(bucket, key, upload_id)

            async def attempt(unit: WriteUnit) -> ObjectHead:
                # The upload must still be closing and its parts as listed: then the parts'
                # records go and their references are released, in the object's commit.
                unit.expect(upload_key, closing)
                for _p, part_key, raw in stored.values():
                    unit.expect(part_key, raw)
                return await self._commits.replace_object(
                    unit,
                    head,
                    preconditions or Preconditions(),
                    protection=record.protection,
                    release=[_segment(p) for p, _k, _r in stored.values()],
                    delete=[upload_key, *(k for _p, k, _r in stored.values())],
                )

            return await self._commits.transact(
                attempt, conflict=lambda: ConditionalRequestConflict(resource=key)
            )
        except BaseException:
            await self._reopen(bucket, key, upload_id, record, closing)
            raise

    def _check_parts(
        self, listed: Sequence[CompletedPart], stored: dict[int, PartRecord]
    ) -> list[PartRecord]:
        if not listed:
            raise InvalidRequest("You must specify at least one part")
        chosen: list[PartRecord] = []
        for item in _last_of_each_number(listed):
            part = stored.get(item.number)
            if part is None or part.md5_hex != item.etag.strip().strip('"'):
                raise InvalidPart(resource=str(item.number))
            for algorithm, value in item.checksums.items():
                if part.checksums.get(algorithm) != value:
                    raise InvalidPart(
                        f"The {algorithm.upper()} of part {item.number} does not match.",
                        resource=str(item.number),
                    )
            chosen.append(part)
        for part in chosen[:-1]:
            if part.size < self.min_part_bytes:
                raise EntityTooSmall(
                    extra={
                        "ProposedSize": str(part.size),
                        "MinSizeAllowed": str(self.min_part_bytes),
                        "PartNumber": str(part.number),
                    }
                )
        return chosen

    async def _already_completed(
        self, bucket: str, key: str, parts: Sequence[CompletedPart]
    ) -> ObjectHead:
        """A client retrying a completion whose answer it lost gets the object it made."""
        try:
            etag = multipart_etag([p.etag.strip().strip('"') for p in parts])
            head = await self._store.head_object(bucket, key)
        except (ValueError, StorageError):  # garbage ETags, no object: there is nothing to find
            raise NoSuchUpload() from None
        if not parts or head.etag != etag:
            raise NoSuchUpload()
        return head

    async def abort(self, bucket: str, key: str, upload_id: str) -> None:
        """Remove the upload and release every part. Raises NoSuchUpload."""
        _record, closing = await self._close(bucket, key, upload_id)
        await self._discard(ks.upload_key(bucket, key, upload_id), closing, upload_id)

    async def _discard(self, upload_key: bytes, closing: bytes, upload_id: str) -> None:
        async def attempt(unit: WriteUnit) -> None:
            rows = await self._parts(upload_id)
            unit.expect(upload_key, closing)
            unit.delete(upload_key)
            for part_key, raw in rows:
                unit.expect(part_key, raw)
                unit.delete(part_key)
            unit.release(_segment(decode_part(raw)) for _k, raw in rows)

        await self._commits.transact(attempt, conflict=ConditionalRequestConflict)

    # --- listing and sweeping ---------------------------------------------------------------
    async def list_uploads(
        self,
        bucket: str,
        *,
        prefix: str = "",
        key_marker: str = "",
        upload_id_marker: str = "",
        max_uploads: int = 1000,
    ) -> tuple[list[UploadInfo], bool]:
        """Uploads in progress in key, then upload-id order, after the markers."""
        await self._store.bucket_record(bucket)
        base = ks.upload_prefix(bucket)
        start = base + prefix.encode()
        if key_marker and upload_id_marker:
            start = max(start, ks.upload_key(bucket, key_marker, upload_id_marker) + b"\x00")
        elif key_marker:  # past every upload of that key
            start = max(start, ks.prefix_end(base + key_marker.encode() + b"\x00"))
        rows = await self._io.run(
            self._kv.scan, start, ks.prefix_end(base + prefix.encode()), limit=max_uploads + 1
        )
        uploads = []
        for raw_key, raw in rows:
            key, upload_id = ks.split_upload_key(base, raw_key)
            record = decode_upload(raw)
            if record.state == "active":
                uploads.append(self._info(bucket, key, upload_id, record))
        return uploads[:max_uploads], len(rows) > max_uploads

    async def sweep(self, *, older_than_seconds: float = STALE_UPLOAD_SECONDS) -> int:
        """Abort uploads started more than ``older_than_seconds`` ago; returns how many."""
        cutoff = time.time_ns() - int(older_than_seconds * 1e9)
        rows = await self._io.run(
            lambda: list(scan_all(self._kv, ks.UPLOAD_PREFIX, ks.prefix_end(ks.UPLOAD_PREFIX)))
        )
        swept = 0
        for raw_key, raw in rows:
            # A closing upload belongs to a completion or abort under way right now (start-up
            # reopens those a crash interrupted).
            if decode_upload(raw).created_ns <= cutoff and await self.abort_record(raw_key, raw):
                swept += 1
        return swept

    async def delete_bucket(self, bucket: str) -> None:
        """DeleteBucket as S3 does it: refused while objects remain, but uploads in progress
        end with the bucket, their parts released. Raises NoSuchBucket, BucketNotEmpty,
        OperationAborted (uploads kept changing meanwhile: the client may retry)."""
        await self._store.delete_bucket(bucket, release_uploads=self._abort_all)

    async def _abort_all(self, bucket: str) -> None:
        """Abort every upload of ``bucket``, which is marked "deleting": no upload can start
        meanwhile, and a completion under way fails its commit and reopens its upload."""
        base = ks.upload_prefix(bucket)
        for _ in range(_BUSY_ROUNDS):
            rows = await self._io.run(self._kv.scan, base, ks.prefix_end(base), limit=1000)
            if not rows:
                return
            busy = [not await self.abort_record(raw_key, raw) for raw_key, raw in rows]
            if any(busy):  # closing, or changed: its owner finishes or reopens it soon
                await asyncio.sleep(0.01)
        raise OperationAborted("Uploads of the bucket kept changing; try again.", resource=bucket)

    async def abort_record(self, raw_key: bytes, raw: bytes) -> bool:
        """Abort the upload stored as ``raw`` at ``raw_key`` unless it is not active or changed
        meanwhile (then False: left to whoever changed it)."""
        record = decode_upload(raw)
        if record.state != "active":
            return False
        upload_id = raw_key.rpartition(b"\x00")[2].decode()
        closing = encode_upload(dataclasses.replace(record, state="closing"))
        if not await self._commits.swap(raw_key, raw, closing):
            return False
        await self._discard(raw_key, closing, upload_id)
        return True


def _last_of_each_number(listed: Sequence[CompletedPart]) -> list[CompletedPart]:
    """The listed parts in ascending order, a number listed twice in a row counting once, as
    its last entry: a client that re-sent a part lists each answer it got, in the order it got
    them, and the part stored is the upload that finished last (test_multipart_resend_first_
    finishes_last). Raises InvalidPartOrder for numbers that go down."""
    kept: list[CompletedPart] = []
    for item in listed:
        if kept and item.number < kept[-1].number:
            raise InvalidPartOrder()
        if kept and item.number == kept[-1].number:
            kept[-1] = item
        else:
            kept.append(item)
    return kept


def _segment(part: PartRecord) -> Segment:
    return Segment(sha256_hex=part.sha256_hex, size=part.size)


def _default_type(algorithm: str) -> str:
    return CHECKSUM_TYPES[algorithm][0] if algorithm else ""


def _checksum_type(algorithm: str, requested: str) -> str:
    """The checksum type an upload gets; InvalidRequest for what S3 refuses."""
    if not algorithm:
        if requested:
            raise InvalidRequest(
                "The x-amz-checksum-type header can only be used with the "
                "x-amz-checksum-algorithm header."
            )
        return ""
    BodyDigests((algorithm,))  # refuses an unknown algorithm now, not later
    allowed = CHECKSUM_TYPES[algorithm]
    chosen = requested.upper() or allowed[0]
    if chosen not in allowed:
        raise InvalidRequest(
            f"The {chosen} checksum type cannot be used with the {algorithm} checksum algorithm."
        )
    return chosen


def _object_checksums(
    record: UploadRecord, chosen: Sequence[PartRecord], claimed: Mapping[str, str]
) -> dict[str, str]:
    """The whole object's checksum (COMPOSITE or FULL_OBJECT, as the upload asked), checked
    against the client's claim. Raises BadDigest for a claim it does not match, or one of an
    algorithm the parts carry no checksums of."""
    algorithm = record.checksum_algorithm
    computed: dict[str, str] = {}
    if algorithm and all(algorithm in p.checksums for p in chosen):
        values = [p.checksums[algorithm] for p in chosen]
        kind = record.checksum_type or _default_type(algorithm)
        computed[algorithm] = (
            composite(algorithm, values)
            if kind == COMPOSITE
            else combined_crc(algorithm, [(v, p.size) for v, p in zip(values, chosen, strict=True)])
        )
    for name, value in claimed.items():
        if computed.get(name) != value.strip():
            raise BadDigest(
                f"The {name.upper()} you specified for the object did not match what we "
                "computed from its parts.",
                resource=name,
            )
    return computed
