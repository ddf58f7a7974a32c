"""Versioning and object lock through the ObjectStore façade: every version kept, delete
markers, the null version, retention and legal hold, and blob references that count versions.
The fixture's store check (fsck with content verification) runs after every test."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lightningstor import errors
from lightningstor.meta import keyspace as ks
from lightningstor.meta.records import decode_ref
from lightningstor.model import (
    COMPLIANCE,
    GOVERNANCE,
    NULL_VERSION,
    VERSIONING_ENABLED,
    VERSIONING_SUSPENDED,
    DefaultRetention,
    ObjectHead,
    ObjectLock,
    Owner,
    Protection,
    Retention,
)
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from lightningstor.ops.fsck import check_store
from tests.core.test_store import blob_files, chunks, run

UNKNOWN = "0" * 32
HOUR_NS = 3600 * 10**9


async def read(store: ObjectStore, bucket: str, key: str, version: str | None = None) -> bytes:
    reader = await store.open_object(bucket, key, version_id=version)
    return b"".join([c async for c in reader.chunks])


async def versions(store: ObjectStore, bucket: str, prefix: str = "") -> list[tuple[str, bool]]:
    page = await store.list_object_versions(bucket, prefix=prefix)
    return [(e.version_id, e.delete_marker) for e in page.entries]


async def versioned(store: ObjectStore, name: str = "ver") -> None:
    await store.create_bucket(name, owner=Owner("o"))
    info = await store.set_versioning(name, VERSIONING_ENABLED)
    assert info.versioning == VERSIONING_ENABLED


def locked() -> Protection:
    return Protection(retention=Retention(mode=COMPLIANCE, until_ns=time.time_ns() + HOUR_NS))


def test_overwrites_keep_every_version_newest_first(store: ObjectStore) -> None:
    async def scenario() -> None:
        await versioned(store)
        heads = [await store.put_object("ver", "k", chunks(b"body %d" % n)) for n in range(3)]
        ids = [h.version_id for h in heads]
        assert len(set(ids)) == 3 and NULL_VERSION not in ids
        assert await versions(store, "ver") == [(i, False) for i in reversed(ids)]
        for n, version in enumerate(ids):
            assert await read(store, "ver", "k", version) == b"body %d" % n
        assert await read(store, "ver", "k") == b"body 2"
        page = await store.list_objects("ver")
        assert [o.key for o in page.entries] == ["k"]

    run(scenario)


def test_a_delete_marker_hides_the_key_and_deleting_it_undeletes(store: ObjectStore) -> None:
    async def scenario() -> None:
        await versioned(store)
        kept = await store.put_object("ver", "k", chunks(b"kept"))
        deleted = await store.delete_object("ver", "k")
        assert deleted.delete_marker and deleted.existed and deleted.version_id not in (None, "")
        with pytest.raises(errors.NoSuchKey) as hidden:
            await store.head_object("ver", "k")
        assert hidden.value.delete_marker == deleted.version_id
        assert deleted.version_id is not None
        with pytest.raises(errors.IsDeleteMarker):
            await store.head_object("ver", "k", version_id=deleted.version_id)
        assert (await store.list_objects("ver")).entries == ()
        listed = await versions(store, "ver")
        assert listed == [(deleted.version_id, True), (kept.version_id, False)]
        # A second delete stacks a second marker; removing both brings the object back.
        again = await store.delete_object("ver", "k")
        assert again.version_id is not None
        for marker in (again.version_id, deleted.version_id):
            undone = await store.delete_object("ver", "k", version_id=marker)
            assert undone.delete_marker and undone.version_id == marker
        assert await read(store, "ver", "k") == b"kept"
        assert await versions(store, "ver") == [(kept.version_id, False)]

    run(scenario)


def test_bad_version_ids_are_refused_and_lose_nothing(store: ObjectStore) -> None:
    async def scenario() -> None:
        await versioned(store)
        head = await store.put_object("ver", "k", chunks(b"safe"))
        for bad in ("not-a-version", "3HL4kqtJlcpXroDTDmJ", "g" * 32, ""):
            with pytest.raises(errors.InvalidArgument, match="Invalid version id"):
                await store.head_object("ver", "k", version_id=bad)
            with pytest.raises(errors.InvalidArgument):
                await store.delete_object("ver", "k", version_id=bad)
        with pytest.raises(errors.NoSuchVersion):
            await store.head_object("ver", "k", version_id=UNKNOWN)
        with pytest.raises(errors.NoSuchVersion):
            await store.open_object("ver", "k", version_id=UNKNOWN)
        # Deleting a version that never was is already done (as S3 answers it).
        nothing = await store.delete_object("ver", "k", version_id=UNKNOWN)
        assert (nothing.existed, nothing.delete_marker) == (False, False)
        assert await read(store, "ver", "k", head.version_id) == b"safe"
        assert await versions(store, "ver") == [(head.version_id, False)]

    run(scenario)


def test_deleting_versions_releases_their_blobs(store: ObjectStore) -> None:
    async def refs(data: bytes) -> int:
        raw = await store.io.run(store.kv.get, ks.ref_key(hashlib.sha256(data).hexdigest()))
        return decode_ref(raw).refs if raw else 0

    async def scenario() -> None:
        await versioned(store)
        first = await store.put_object("ver", "k", chunks(b"one"))
        second = await store.put_object("ver", "k", chunks(b"one"))  # the same content: shared
        third = await store.put_object("ver", "k", chunks(b"two"))
        assert (await refs(b"one"), await refs(b"two")) == (2, 1)
        await store.delete_object("ver", "k", version_id=second.version_id)
        await store.delete_object("ver", "k", version_id=first.version_id)
        assert await refs(b"one") == 0
        assert await store.collect_garbage() == 1
        assert await read(store, "ver", "k") == b"two"
        # Deleting the current version promotes nothing (none left) and empties the key.
        await store.delete_object("ver", "k", version_id=third.version_id)
        assert await versions(store, "ver") == []
        await store.collect_garbage()
        assert blob_files(store) == []
        await store.delete_bucket("ver")

    run(scenario)


def test_deleting_the_current_version_promotes_the_previous(store: ObjectStore) -> None:
    async def scenario() -> None:
        await versioned(store)
        old = await store.put_object("ver", "k", chunks(b"old"))
        new = await store.put_object("ver", "k", chunks(b"new"))
        await store.delete_object("ver", "k", version_id=new.version_id)
        head = await store.head_object("ver", "k")
        assert head.version_id == old.version_id
        assert await read(store, "ver", "k") == b"old"

    run(scenario)


def test_suspended_writes_replace_the_null_version_only(store: ObjectStore) -> None:
    async def scenario() -> None:
        await store.create_bucket("ver", owner=Owner("o"))
        plain = await store.put_object("ver", "k", chunks(b"before versioning"))
        assert plain.version_id == NULL_VERSION
        await store.set_versioning("ver", VERSIONING_ENABLED)
        kept = await store.put_object("ver", "k", chunks(b"enabled"))
        assert await read(store, "ver", "k", NULL_VERSION) == b"before versioning"
        await store.set_versioning("ver", VERSIONING_SUSPENDED)
        null = await store.put_object("ver", "k", chunks(b"suspended 1"))
        null = await store.put_object("ver", "k", chunks(b"suspended 2"))
        assert null.version_id == NULL_VERSION
        assert await versions(store, "ver") == [(NULL_VERSION, False), (kept.version_id, False)]
        assert await read(store, "ver", "k", NULL_VERSION) == b"suspended 2"
        # A delete in a suspended bucket puts a null delete marker in the null version's place.
        marker = await store.delete_object("ver", "k")
        assert (marker.version_id, marker.delete_marker) == (NULL_VERSION, True)
        assert await versions(store, "ver") == [(NULL_VERSION, True), (kept.version_id, False)]

    run(scenario)


def test_versioning_never_returns_to_unversioned(store: ObjectStore) -> None:
    async def scenario() -> None:
        await store.create_bucket("ver", owner=Owner("o"))
        with pytest.raises(errors.NoSuchBucket):
            await store.set_versioning("absent", VERSIONING_ENABLED)
        with pytest.raises(errors.InvalidArgument):
            await store.set_versioning("ver", "Off")

    run(scenario)


def test_listing_versions_pages_by_key_and_version(store: ObjectStore) -> None:
    async def scenario() -> None:
        await versioned(store)
        written: list[tuple[str, str]] = []
        for key in ("a", "b/1", "b/2", "c"):
            for n in range(3):
                head = await store.put_object("ver", key, chunks(b"%s %d" % (key.encode(), n)))
                written.append((key, head.version_id))
        expected = sorted(written, key=lambda kv: (kv[0], -written.index(kv)))
        seen: list[tuple[str, str]] = []
        after: tuple[str, str | None] | None = None
        while True:
            page = await store.list_object_versions("ver", max_keys=2, after=after)
            seen += [(e.key, e.version_id) for e in page.entries]
            if page.next_after is None:
                break
            after = page.next_after
        assert seen == expected
        grouped = await store.list_object_versions("ver", delimiter="/")
        assert grouped.common_prefixes == ("b/",)
        assert {e.key for e in grouped.entries} == {"a", "c"}
        latest = [e for e in (await store.list_object_versions("ver")).entries if e.latest]
        assert [e.key for e in latest] == ["a", "b/1", "b/2", "c"]

    run(scenario)


def test_object_lock_turns_versioning_on_for_good(store: ObjectStore) -> None:
    async def scenario() -> None:
        info = await store.create_bucket("lkb", owner=Owner("o"), object_lock=True)
        assert info.versioning == VERSIONING_ENABLED and info.object_lock is not None
        with pytest.raises(errors.InvalidBucketState):
            await store.set_versioning("lkb", VERSIONING_SUSPENDED)
        assert (await store.head_bucket("lkb")).versioning == VERSIONING_ENABLED
        await store.create_bucket("plain", owner=Owner("o"))
        with pytest.raises(errors.InvalidBucketState):
            await store.set_object_lock("plain", ObjectLock())
        with pytest.raises(errors.InvalidRequest, match="Object Lock"):
            await store.put_object("plain", "k", chunks(b"x"), protection=locked())
        assert (await store.list_objects("plain")).entries == ()

    run(scenario)


def test_compliance_is_never_shortened_or_bypassed(store: ObjectStore) -> None:
    async def scenario() -> None:
        await store.create_bucket("lkb", owner=Owner("o"), object_lock=True)
        head = await store.put_object("lkb", "k", chunks(b"kept for good"), protection=locked())
        version = head.version_id
        assert head.retention is not None and head.retention.mode == COMPLIANCE
        for bypass in (False, True):
            with pytest.raises(errors.ObjectLocked):
                await store.delete_object("lkb", "k", version_id=version, bypass_governance=bypass)
            with pytest.raises(errors.ObjectLocked):
                await store.set_retention(
                    "lkb", "k", None, version_id=version, bypass_governance=bypass
                )
            shorter = Retention(mode=COMPLIANCE, until_ns=head.retention.until_ns - 10**9)
            with pytest.raises(errors.ObjectLocked):
                await store.set_retention("lkb", "k", shorter, version_id=version)
            weaker = Retention(mode=GOVERNANCE, until_ns=head.retention.until_ns + HOUR_NS)
            with pytest.raises(errors.ObjectLocked):
                await store.set_retention(
                    "lkb", "k", weaker, version_id=version, bypass_governance=bypass
                )
        longer = Retention(mode=COMPLIANCE, until_ns=head.retention.until_ns + HOUR_NS)
        extended = await store.set_retention("lkb", "k", longer, version_id=version)
        assert extended.retention == longer
        # A delete without a version id only stacks a marker: the locked version stays.
        marker = await store.delete_object("lkb", "k")
        assert marker.delete_marker
        assert await read(store, "lkb", "k", version) == b"kept for good"
        with pytest.raises(errors.BucketNotEmpty):
            await store.delete_bucket("lkb")
        await store.collect_garbage()
        assert await read(store, "lkb", "k", version) == b"kept for good"

    run(scenario)


def test_governance_yields_only_to_bypass(store: ObjectStore) -> None:
    async def scenario() -> None:
        await store.create_bucket("lkb", owner=Owner("o"), object_lock=True)
        until = time.time_ns() + HOUR_NS
        governed = Protection(retention=Retention(mode=GOVERNANCE, until_ns=until))
        head = await store.put_object("lkb", "k", chunks(b"governed"), protection=governed)
        with pytest.raises(errors.ObjectLocked):
            await store.delete_object("lkb", "k", version_id=head.version_id)
        for change in (None, Retention(mode=COMPLIANCE, until_ns=until)):
            with pytest.raises(errors.ObjectLocked):
                await store.set_retention("lkb", "k", change, version_id=head.version_id)
        later = Retention(mode=GOVERNANCE, until_ns=until + HOUR_NS)
        await store.set_retention("lkb", "k", later, version_id=head.version_id)
        done = await store.delete_object(
            "lkb", "k", version_id=head.version_id, bypass_governance=True
        )
        assert done.existed
        assert await versions(store, "lkb") == []

    run(scenario)


def test_a_legal_hold_blocks_every_delete_until_lifted(store: ObjectStore) -> None:
    async def scenario() -> None:
        await store.create_bucket("lkb", owner=Owner("o"), object_lock=True)
        head = await store.put_object(
            "lkb", "k", chunks(b"held"), protection=Protection(legal_hold=True)
        )
        assert head.legal_hold and head.retention is None
        with pytest.raises(errors.ObjectLocked, match="legal hold"):
            await store.delete_object(
                "lkb", "k", version_id=head.version_id, bypass_governance=True
            )
        lifted = await store.set_legal_hold("lkb", "k", False, version_id=head.version_id)
        assert not lifted.legal_hold
        await store.delete_object("lkb", "k", version_id=head.version_id)

    run(scenario)


def test_a_default_retention_locks_new_versions(store: ObjectStore) -> None:
    async def scenario() -> None:
        await store.create_bucket("lkb", owner=Owner("o"), object_lock=True)
        rule = ObjectLock(default=DefaultRetention(mode=GOVERNANCE, days=1))
        assert (await store.set_object_lock("lkb", rule)).object_lock == rule
        before = time.time_ns()
        head: ObjectHead = await store.put_object("lkb", "k", chunks(b"x"))
        assert head.retention is not None and head.retention.mode == GOVERNANCE
        day = 86400 * 10**9
        assert before + day <= head.retention.until_ns <= time.time_ns() + day
        _, copied = await store.copy_object(("lkb", "k"), ("lkb", "copy"))
        assert copied.retention is not None and copied.retention.mode == GOVERNANCE
        for key, version in (("k", head.version_id), ("copy", copied.version_id)):
            await store.delete_object("lkb", key, version_id=version, bypass_governance=True)

    run(scenario)


def test_copies_read_a_given_source_version(store: ObjectStore) -> None:
    async def scenario() -> None:
        await versioned(store)
        old = await store.put_object("ver", "src", chunks(b"old"))
        await store.put_object("ver", "src", chunks(b"new"))
        source, placed = await store.copy_object(
            ("ver", "src"), ("ver", "dst"), source_version=old.version_id
        )
        assert source.version_id == old.version_id and placed.version_id != old.version_id
        assert await read(store, "ver", "dst") == b"old"
        marker = await store.delete_object("ver", "src")
        assert marker.version_id is not None
        with pytest.raises(errors.NoSuchKey):
            await store.copy_object(("ver", "src"), ("ver", "dst2"))
        with pytest.raises(errors.InvalidRequest):
            await store.copy_object(
                ("ver", "src"), ("ver", "dst2"), source_version=marker.version_id
            )
        with pytest.raises(errors.NoSuchVersion):
            await store.copy_object(("ver", "src"), ("ver", "dst2"), source_version=UNKNOWN)
        assert await read(store, "ver", "dst") == b"old"

    run(scenario)


def test_listings_show_neither_markers_nor_prefixes_of_markers_only(store: ObjectStore) -> None:
    async def scenario() -> None:
        await versioned(store)
        await store.put_object("ver", "dir/a", chunks(b"a"))
        await store.put_object("ver", "top", chunks(b"t"))
        await store.delete_object("ver", "dir/a")
        page = await store.list_objects("ver", delimiter="/")
        assert ([e.key for e in page.entries], page.common_prefixes) == (["top"], ())
        await store.put_object("ver", "dir/b", chunks(b"b"))
        page = await store.list_objects("ver", delimiter="/")
        assert ([e.key for e in page.entries], page.common_prefixes) == (["top"], ("dir/",))
        # The version listing still shows the marker's key, under its prefix.
        grouped = await store.list_object_versions("ver", delimiter="/")
        assert grouped.common_prefixes == ("dir/",)

    run(scenario)


@pytest.fixture(params=["blobs", "inline"])
def either_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    offloader = Offloader(workers=4)
    limit = 4096 if request.param == "inline" else 0
    s = ObjectStore.open(
        tmp_path / "data", offloader=offloader, gc_delay_seconds=0, inline_max_bytes=limit
    )
    yield s
    assert check_store(s.kv, s.blobs, verify_content=True).problems == []
    s.close()
    offloader.shutdown()


def test_concurrent_deletes_of_every_version_leave_none(either_store: ObjectStore) -> None:
    """A delete that finds its version neither current nor noncurrent answers "already gone"
    only if the current version it read is still current (another delete may have just
    promoted the version it looks for): ceph's concurrent create/remove test found this."""
    store = either_store

    async def scenario() -> None:
        await versioned(store)
        for _ in range(20):
            writes = [store.put_object("ver", "k", chunks(b"x%d" % n)) for n in range(5)]
            await asyncio.gather(*writes)
            page = await store.list_object_versions("ver")
            assert len(page.entries) == 5
            deletes = [
                store.delete_object("ver", "k", version_id=e.version_id) for e in page.entries
            ]
            results = await asyncio.gather(*deletes)
            assert all(r.existed for r in results)
            assert (await store.list_object_versions("ver")).entries == ()

    run(scenario)


def test_lock_settings_out_of_bounds_are_refused(store: ObjectStore) -> None:
    async def scenario() -> None:
        await store.create_bucket("lkb", owner=Owner("o"), object_lock=True)
        for bad in (
            DefaultRetention(mode=GOVERNANCE, days=36501),
            DefaultRetention(mode=GOVERNANCE, years=101),
            DefaultRetention(mode=GOVERNANCE),
            DefaultRetention(mode=GOVERNANCE, days=1, years=1),
        ):
            with pytest.raises(errors.InvalidArgument):
                await store.set_object_lock("lkb", ObjectLock(default=bad))
        assert (await store.head_bucket("lkb")).object_lock == ObjectLock()
        far = Protection(retention=Retention(mode=GOVERNANCE, until_ns=2**63))
        with pytest.raises(errors.InvalidArgument):
            await store.put_object("lkb", "k", chunks(b"x"), protection=far)
        marker = await store.delete_object("lkb", "k")
        assert marker.version_id is not None
        # A lock asked of a delete marker, named by its id, is refused as S3 refuses it.
        with pytest.raises(errors.IsDeleteMarker):
            await store.set_legal_hold("lkb", "k", True, version_id=marker.version_id)
        assert await versions(store, "lkb") == [(marker.version_id, True)]

    run(scenario)
