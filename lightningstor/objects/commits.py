"""What every write of buckets, objects and uploads shares: the store's one way to commit.

Both halves of the store (``store.py`` for buckets and objects, ``multipart.py`` for uploads)
write through a :class:`Commits`: units of work that carry blob reference changes
(``blobs/references.py``), run as retried attempts (``meta/unit.py``). Neither half reaches into
the other; this is the part they have in common.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from lightningstor.blobs.files import BlobStore, StagedBlob
from lightningstor.blobs.references import BlobReferences, WriteUnit
from lightningstor.errors import NoSuchBucket
from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import OrderedKV
from lightningstor.meta.records import BucketRecord, decode_bucket, decode_object, encode_object
from lightningstor.meta.unit import transact
from lightningstor.model import ObjectHead, Preconditions, Protection, Segment
from lightningstor.objects.conditions import check_write
from lightningstor.objects.versions import new_sort, place, protect
from lightningstor.offload import Offloader

T = TypeVar("T")


def active_bucket(name: str, raw: bytes | None) -> BucketRecord:
    """The bucket's record, or NoSuchBucket when it is absent or being deleted."""
    if raw is None:
        raise NoSuchBucket(resource=name)
    record = decode_bucket(name, raw)
    if record.state != "active":
        raise NoSuchBucket("The bucket is being deleted.", resource=name)
    return record


def bucket_and_object_keys(bucket: str, key: str) -> tuple[bytes, bytes]:
    return ks.bucket_key(bucket), ks.object_key(bucket, key)


def active_pair(
    bucket: str, bucket_raw: bytes | None, obj_raw: bytes | None
) -> tuple[bytes, bytes | None]:
    """The records read at bucket_and_object_keys: NoSuchBucket unless the bucket is active."""
    active_bucket(bucket, bucket_raw)
    assert bucket_raw is not None
    return bucket_raw, obj_raw


class Commits:
    def __init__(
        self, *, kv: OrderedKV, blobs: BlobStore, io: Offloader, refs: BlobReferences
    ) -> None:
        self.kv = kv
        self.blobs = blobs
        self.io = io
        self.refs = refs

    def unit(self) -> WriteUnit:
        return WriteUnit(self.refs)

    async def transact(
        self,
        attempt: Callable[[WriteUnit], Awaitable[T]],
        *,
        conflict: Callable[[], Exception],
        attempts: int | None = None,
    ) -> T:
        """``attempt`` until one commits (see meta/unit.py); ``conflict()`` when none did."""
        if attempts is None:
            return await transact(self.unit, attempt, conflict=conflict)
        return await transact(self.unit, attempt, conflict=conflict, attempts=attempts)

    async def swap(self, key: bytes, expect: bytes | None, value: bytes | None) -> bool:
        """Set ``key`` to ``value`` (None: delete it) if it still holds ``expect``, in one try;
        False when it did not (someone else changed it: theirs stands)."""
        unit = self.unit()
        unit.expect(key, expect)
        if value is None:
            unit.delete(key)
        else:
            unit.put(key, value)
        return await unit.commit()

    async def bucket_and_object(
        self, unit: WriteUnit, bucket: str, key: str
    ) -> tuple[bytes, bytes | None]:
        """The active bucket's record and the object's (None: absent), both then expected
        unchanged by ``unit``'s commit; one trip to the pool."""
        return active_pair(bucket, *await unit.read_many(bucket_and_object_keys(bucket, key)))

    async def replace_object(
        self,
        unit: WriteUnit,
        head: ObjectHead,
        pre: Preconditions,
        staged: StagedBlob | None = None,
        *,
        protection: Protection | None = None,
        release: Iterable[Segment] = (),
        delete: Iterable[bytes] = (),
    ) -> ObjectHead:
        """Plan ``head`` as the key's new current version into ``unit`` (see versions.py):
        ``head``'s blobs referenced (``staged`` published if it is one of them), ``release``
        further references dropped and ``delete`` further records removed (a completed
        upload's parts). ``head`` as placed: with its version and lock. Raises what ``pre``
        fails with, NoSuchBucket, InvalidRequest (a lock asked of a bucket without one)."""
        bucket_raw, old_raw = await self.bucket_and_object(unit, head.bucket, head.key)
        info = decode_bucket(head.bucket, bucket_raw).info
        old = decode_object(head.bucket, head.key, old_raw) if old_raw else None
        check_write(None if old is None or old.delete_marker else old, pre, head.key)
        protected = protect(info, head, protection or Protection())
        for key in delete:
            unit.delete(key)
        placed = await place(unit, info, old, protected)
        unit.add(head.segments, staged)
        unit.release(release)
        return placed

    def replace_inline_now(
        self, unit: WriteUnit, head: ObjectHead, pre: Preconditions
    ) -> ObjectHead | None:
        """:meth:`replace_object` and the commit, blocking, for an inline object in an
        unversioned bucket whose old version holds no blob either: no reference changes and
        no other versions, so the reads, the checks and the commit need no trip back to the
        event loop in between (a small PUT's cost is mostly its trips). None, with nothing
        committed, when the bucket has versioning or a lock, or the old version holds blobs;
        else ``head`` as placed."""
        self.blobs.ensure_room()  # an inline body is new data too, kept in the metadata
        bucket_raw = unit.read_now(ks.bucket_key(head.bucket))
        old_raw = unit.read_now(ks.object_key(head.bucket, head.key))
        info = active_bucket(head.bucket, bucket_raw).info
        old = decode_object(head.bucket, head.key, old_raw) if old_raw else None
        if info.versioning or info.object_lock or (old is not None and old.segments):
            return None
        check_write(old, pre, head.key)
        placed = dataclasses.replace(head, version_sort=new_sort(old))
        unit.put(ks.object_key(head.bucket, head.key), encode_object(placed))
        unit.commit_now()
        return placed
