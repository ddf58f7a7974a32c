"""The ObjectStore façade, driven directly on a real LevelDB keyspace and blob tree."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from lightningstor import errors
from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import Batch
from lightningstor.meta.records import decode_ref
from lightningstor.model import BodyExpectations, ContentHeaders, Owner, Preconditions, RangeRequest
from lightningstor.objects.store import ObjectStore, StoreVersionError
from lightningstor.offload import Offloader

T = TypeVar("T")


def run(factory: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await factory()

    return asyncio.run(main())


async def chunks(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def read_all(
    store: ObjectStore, bucket: str, key: str, rng: RangeRequest | None = None
) -> bytes:
    reader = await store.open_object(bucket, key, byte_range=rng)
    return b"".join([c async for c in reader.chunks])


def blob_files(store: ObjectStore) -> list[str]:
    return sorted(p.name for p in store.blobs.blob_root.rglob("*") if p.is_file())


def test_put_then_read_back_with_metadata(store: ObjectStore) -> None:
    data = bytes(range(256)) * 5000

    async def scenario() -> None:
        await store.create_bucket("photos", owner=Owner("alice"))
        head = await store.put_object(
            "photos",
            "a/b.jpg",
            chunks(data),
            headers=ContentHeaders(content_type="image/jpeg", cache_control="no-cache"),
            user_metadata={"camera": "x100"},
        )
        assert head.etag == hashlib.md5(data).hexdigest()
        again = await store.head_object("photos", "a/b.jpg")
        assert again == head
        assert again.headers.content_type == "image/jpeg"
        assert again.user_metadata == {"camera": "x100"}
        assert await read_all(store, "photos", "a/b.jpg") == data

    run(scenario)
    assert blob_files(store) == [hashlib.sha256(data).hexdigest()]


def test_default_content_type_and_empty_object(store: ObjectStore) -> None:
    async def scenario() -> None:
        await store.create_bucket("b1b", owner=Owner("o"))
        head = await store.put_object("b1b", "empty", chunks(b""))
        assert head.size == 0
        assert head.headers.content_type == "binary/octet-stream"
        assert await read_all(store, "b1b", "empty") == b""
        with pytest.raises(errors.InvalidRange):
            await store.open_object("b1b", "empty", byte_range=RangeRequest(first=0))

    run(scenario)


@pytest.mark.parametrize(
    ("rng", "expected"),
    [
        (RangeRequest(first=0, last=9), slice(0, 10)),
        (RangeRequest(first=95), slice(95, 100)),
        (RangeRequest(first=90, last=10_000), slice(90, 100)),
        (RangeRequest(suffix=7), slice(93, 100)),
        (RangeRequest(suffix=1000), slice(0, 100)),
    ],
)
def test_ranges(store: ObjectStore, rng: RangeRequest, expected: slice) -> None:
    data = bytes(range(100))

    async def scenario() -> bytes:
        await store.create_bucket("ranges", owner=Owner("o"))
        await store.put_object("ranges", "k", chunks(data, 7))
        return await read_all(store, "ranges", "k", rng)

    assert run(scenario) == data[expected]


def test_range_past_end_is_invalid(store: ObjectStore) -> None:
    async def scenario() -> None:
        await store.create_bucket("ranges", owner=Owner("o"))
        await store.put_object("ranges", "k", chunks(b"0123456789"))
        with pytest.raises(errors.InvalidRange) as raised:
            await store.open_object("ranges", "k", byte_range=RangeRequest(first=10))
        assert raised.value.size == 10

    run(scenario)


BAD_EXPECTATIONS = [
    (BodyExpectations(sha256_hex="0" * 64), errors.ContentSHA256Mismatch),
    (BodyExpectations(md5_b64=base64.b64encode(b"\0" * 16).decode()), errors.BadDigest),
    (BodyExpectations(checksums={"crc32": "AAAAAA=="}), errors.BadDigest),
    (
        BodyExpectations(checksums={"sha256": base64.b64encode(b"\0" * 32).decode()}),
        errors.BadDigest,
    ),
    (BodyExpectations(size=999), errors.IncompleteBody),
]


@pytest.mark.parametrize(("expect", "error"), BAD_EXPECTATIONS)
def test_digest_mismatch_keeps_old_object(
    store: ObjectStore, expect: BodyExpectations, error: type[errors.StorageError]
) -> None:
    async def scenario() -> None:
        await store.create_bucket("integrity", owner=Owner("o"))
        await store.put_object("integrity", "k", chunks(b"old bytes"))
        with pytest.raises(error):
            await store.put_object("integrity", "k", chunks(b"new bytes"), expect=expect)
        assert await read_all(store, "integrity", "k") == b"old bytes"

    run(scenario)
    assert list(store.blobs.tmp_root.iterdir()) == []
    assert blob_files(store) == [hashlib.sha256(b"old bytes").hexdigest()]


def test_matching_digests_are_accepted_and_stored(store: ObjectStore) -> None:
    data = b"checked bytes"
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    expect = BodyExpectations(
        sha256_hex=hashlib.sha256(data).hexdigest(),
        md5_b64=base64.b64encode(hashlib.md5(data).digest()).decode(),
        checksums={"crc32": crc, "crc32c": None},
        size=len(data),
    )

    async def scenario() -> None:
        await store.create_bucket("integrity", owner=Owner("o"))
        head = await store.put_object("integrity", "k", chunks(data), expect=expect)
        assert head.checksums["crc32"] == crc
        assert set(head.checksums) == {"crc32", "crc32c"}

    run(scenario)


def test_dedup_refcounts_and_collection(store: ObjectStore) -> None:
    data = b"same content" * 1000
    sha = hashlib.sha256(data).hexdigest()

    async def refs() -> int:
        return decode_ref(await store.io.run(store.kv.get, ks.ref_key(sha))).refs

    async def scenario() -> None:
        await store.create_bucket("one", owner=Owner("o"))
        await store.create_bucket("two", owner=Owner("o"))
        await store.put_object("one", "a", chunks(data))
        await store.put_object("one", "b", chunks(data))
        await store.put_object("two", "c", chunks(data))
        assert await refs() == 3
        assert blob_files(store) == [sha]
        await store.delete_object("one", "a")
        await store.put_object("one", "b", chunks(b"other"))  # overwrite releases its blob
        assert await refs() == 1
        assert await store.collect_garbage() == 0 or blob_files(store).count(sha) == 1
        assert (await store.delete_object("two", "c")).existed
        assert not (await store.delete_object("two", "c")).existed
        assert await refs() == 0
        assert await store.collect_garbage() == 1
        assert blob_files(store) == [hashlib.sha256(b"other").hexdigest()]
        # The same content uploaded again after collection is stored again.
        await store.put_object("two", "d", chunks(data))
        assert await read_all(store, "two", "d") == data

    run(scenario)


def test_collection_never_races_a_writer_of_the_same_content(store: ObjectStore) -> None:
    data = b"contended blob"

    async def scenario() -> None:
        await store.create_bucket("race", owner=Owner("o"))
        for round_ in range(30):
            await store.put_object("race", "k", chunks(data))
            await store.delete_object("race", "k")
            # A writer re-referencing the blob while collection removes it.
            await asyncio.gather(
                store.put_object("race", f"k{round_}", chunks(data)),
                store.collect_garbage(),
                store.collect_garbage(),
            )
            assert await read_all(store, "race", f"k{round_}") == data
            await store.delete_object("race", f"k{round_}")

    run(scenario)


def test_conditional_writes(store: ObjectStore) -> None:
    async def scenario() -> None:
        await store.create_bucket("cond", owner=Owner("o"))
        create_only = Preconditions(if_none_match="*")
        first = await store.put_object("cond", "lock", chunks(b"1"), preconditions=create_only)
        with pytest.raises(errors.PreconditionFailed):
            await store.put_object("cond", "lock", chunks(b"2"), preconditions=create_only)
        with pytest.raises(errors.PreconditionFailed):
            await store.put_object(
                "cond", "lock", chunks(b"3"), preconditions=Preconditions(if_match='"nope"')
            )
        swap = Preconditions(if_match=f'"{first.etag}"')
        await store.put_object("cond", "lock", chunks(b"4"), preconditions=swap)
        with pytest.raises(errors.NoSuchKey):
            await store.put_object("cond", "absent", chunks(b"5"), preconditions=swap)
        assert await read_all(store, "cond", "lock") == b"4"

    run(scenario)


def test_concurrent_create_only_has_exactly_one_winner(store: ObjectStore) -> None:
    async def attempt(n: int) -> bool:
        try:
            await store.put_object(
                "cond",
                "once",
                chunks(str(n).encode()),
                preconditions=Preconditions(if_none_match="*"),
            )
        except errors.PreconditionFailed:
            return False
        return True

    async def scenario() -> list[bool]:
        await store.create_bucket("cond", owner=Owner("o"))
        return await asyncio.gather(*(attempt(n) for n in range(12)))

    assert sum(run(scenario)) == 1


def test_bucket_lifecycle_and_errors(store: ObjectStore) -> None:
    async def scenario() -> None:
        await store.create_bucket("mine", owner=Owner("alice"))
        with pytest.raises(errors.BucketAlreadyOwnedByYou):
            await store.create_bucket("mine", owner=Owner("alice"))
        with pytest.raises(errors.BucketAlreadyExists):
            await store.create_bucket("mine", owner=Owner("bob"))
        for bad in ("ab", "UPPER", "has_underscore", "-lead", "a..b", "192.168.1.1", "x" * 64):
            with pytest.raises(errors.InvalidBucketName):
                await store.create_bucket(bad, owner=Owner("alice"))
        await store.put_object("mine", "k", chunks(b"x"))
        with pytest.raises(errors.BucketNotEmpty):
            await store.delete_bucket("mine")
        assert [b.name for b in await store.list_buckets()] == ["mine"]
        await store.delete_object("mine", "k")
        await store.delete_bucket("mine")
        with pytest.raises(errors.NoSuchBucket):
            await store.delete_bucket("mine")
        with pytest.raises(errors.NoSuchBucket):
            await store.put_object("mine", "k", chunks(b"x"))
        with pytest.raises(errors.NoSuchBucket):
            await store.head_object("mine", "k")

    run(scenario)


def test_bucket_delete_racing_puts_never_orphans_objects(store: ObjectStore) -> None:
    async def put(n: int) -> None:
        with contextlib.suppress(errors.NoSuchBucket):
            await store.put_object("racy", f"k{n}", chunks(b"x"))

    async def delete() -> bool:
        try:
            await store.delete_bucket("racy")
        except errors.BucketNotEmpty:
            return False
        return True

    async def scenario() -> None:
        for _ in range(10):
            await store.create_bucket("racy", owner=Owner("o"))
            results = await asyncio.gather(*(put(n) for n in range(5)), delete())
            deleted = results[-1]
            prefix = ks.object_prefix("racy")
            leftovers = await store.io.run(store.kv.scan, prefix, ks.prefix_end(prefix), limit=10)
            if deleted:
                assert leftovers == []
            else:
                for raw_key, _ in leftovers:
                    await store.delete_object("racy", ks.key_from_object_key(prefix, raw_key))
                await store.delete_bucket("racy")

    run(scenario)


def test_keys_are_opaque(store: ObjectStore) -> None:
    keys = ["/lead", "a//b", "x/../y", "./dot", "100%", "a b+c/ü~!*()'", "trailing/", "k" * 1024]

    async def scenario() -> None:
        await store.create_bucket("odd", owner=Owner("o"))
        for key in keys:
            await store.put_object("odd", key, chunks(key.encode()))
        for key in keys:
            assert await read_all(store, "odd", key) == key.encode()
        page = await store.list_objects("odd")
        assert [e.key for e in page.entries] == sorted(keys, key=lambda k: k.encode())
        with pytest.raises(errors.KeyTooLongError):
            await store.put_object("odd", "k" * 1025, chunks(b""))
        with pytest.raises(errors.KeyTooLongError):
            await store.put_object("odd", "ü" * 513, chunks(b""))
        with pytest.raises(errors.InvalidArgument):
            await store.put_object("odd", "", chunks(b""))

    run(scenario)


def test_schema_version_is_checked(tmp_path: Path) -> None:
    offloader = Offloader(workers=1)
    store = ObjectStore.open(tmp_path / "d", offloader=offloader)
    batch = Batch()
    batch.put(ks.SCHEMA_KEY, b'{"v":1,"schema":99}')
    store.kv.commit(batch)
    store.close()
    with pytest.raises(StoreVersionError, match="schema version 99"):
        ObjectStore.open(tmp_path / "d", offloader=offloader)
    offloader.shutdown()


def test_open_removes_staged_leftovers(tmp_path: Path) -> None:
    offloader = Offloader(workers=1)
    store = ObjectStore.open(tmp_path / "d", offloader=offloader)
    store.close()
    leftover = tmp_path / "d" / "tmp" / "deadbeef.part"
    leftover.write_bytes(b"half an upload")
    store = ObjectStore.open(tmp_path / "d", offloader=offloader)
    assert not leftover.exists()
    store.close()
    offloader.shutdown()


def test_body_error_midway_stores_nothing(store: ObjectStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 100_000
        raise ConnectionResetError("client went away")

    async def scenario() -> None:
        await store.create_bucket("cut", owner=Owner("o"))
        with pytest.raises(ConnectionResetError):
            await store.put_object("cut", "k", broken())
        with pytest.raises(errors.NoSuchKey):
            await store.head_object("cut", "k")

    run(scenario)
    assert list(store.blobs.tmp_root.iterdir()) == []
    assert blob_files(store) == []


@pytest.mark.parametrize(
    ("metadata", "headers", "error"),
    [
        ({"big": "x" * 2100}, ContentHeaders(), errors.MetadataTooLarge),
        ({"Upper": "v"}, ContentHeaders(), errors.InvalidArgument),
        ({"sp ace": "v"}, ContentHeaders(), errors.InvalidArgument),
        ({"ok": "line\r\nbreak"}, ContentHeaders(), errors.InvalidArgument),
        ({}, ContentHeaders(content_type="text/plain\nX-Evil: 1"), errors.InvalidArgument),
    ],
)
def test_unservable_metadata_is_refused(
    store: ObjectStore,
    metadata: dict[str, str],
    headers: ContentHeaders,
    error: type[errors.StorageError],
) -> None:
    async def scenario() -> None:
        await store.create_bucket("meta", owner=Owner("o"))
        with pytest.raises(error):
            await store.put_object(
                "meta", "k", chunks(b"x"), headers=headers, user_metadata=metadata
            )
        with pytest.raises(errors.NoSuchKey):
            await store.head_object("meta", "k")

    run(scenario)


def test_cancelled_upload_leaves_no_staged_file(store: ObjectStore) -> None:
    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 65536
            await asyncio.sleep(0)

    async def scenario() -> None:
        await store.create_bucket("cancel", owner=Owner("o"))
        task = asyncio.ensure_future(store.put_object("cancel", "k", endless()))
        while not any(store.blobs.tmp_root.iterdir()):  # until it is staging
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task  # which ends only once its shielded clean-up has run
        assert list(store.blobs.tmp_root.iterdir()) == []

    run(scenario)
    assert list(store.blobs.tmp_root.iterdir()) == []


def test_copy_shares_blobs_and_follows_the_directive(store: ObjectStore) -> None:
    data = b"copy me" * 1000
    sha = hashlib.sha256(data).hexdigest()

    async def scenario() -> None:
        await store.create_bucket("src", owner=Owner("o"))
        await store.create_bucket("dst", owner=Owner("o"))
        original = await store.put_object(
            "src",
            "a",
            chunks(data),
            headers=ContentHeaders(content_type="text/plain"),
            user_metadata={"m": "1"},
        )
        _, copied = await store.copy_object(("src", "a"), ("dst", "b"))
        assert (copied.etag, copied.size, copied.headers, dict(copied.user_metadata)) == (
            original.etag,
            original.size,
            original.headers,
            {"m": "1"},
        )
        _, replaced = await store.copy_object(
            ("src", "a"),
            ("dst", "c"),
            replace=(ContentHeaders(content_type="image/png"), {"n": "2"}),
        )
        assert replaced.headers.content_type == "image/png"
        assert dict(replaced.user_metadata) == {"n": "2"}
        assert decode_ref(await store.io.run(store.kv.get, ks.ref_key(sha))).refs == 3
        await store.delete_object("src", "a")
        assert await read_all(store, "dst", "b") == data
        with pytest.raises(errors.InvalidRequest):
            await store.copy_object(("dst", "b"), ("dst", "b"))
        _, self_replaced = await store.copy_object(
            ("dst", "b"), ("dst", "b"), replace=(ContentHeaders(), {})
        )
        assert self_replaced.user_metadata == {}
        with pytest.raises(errors.NoSuchKey):
            await store.copy_object(("src", "a"), ("dst", "z"))
        with pytest.raises(errors.PreconditionFailed):
            await store.copy_object(
                ("dst", "b"),
                ("dst", "y"),
                source_preconditions=Preconditions(if_none_match=f'"{original.etag}"'),
            )
        with pytest.raises(errors.PreconditionFailed):
            await store.copy_object(
                ("dst", "b"), ("dst", "c"), preconditions=Preconditions(if_none_match="*")
            )

    run(scenario)
    assert blob_files(store) == [sha]


def test_non_utf8_metadata_is_refused(store: ObjectStore) -> None:
    async def scenario() -> None:
        await store.create_bucket("meta", owner=Owner("o"))
        with pytest.raises(errors.InvalidArgument):
            await store.put_object("meta", "k", chunks(b"x"), user_metadata={"a": "\udcff"})

    run(scenario)


def test_a_commit_that_fails_after_publishing_leaves_nothing_behind(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_commit = store.kv.commit

    def failing(batch: Batch) -> None:
        if any(k.startswith(ks.OBJECT_PREFIX) for k in batch.puts):
            raise OSError(28, "No space left on device")
        real_commit(batch)

    async def scenario() -> None:
        await store.create_bucket("full", owner=Owner("o"))
        monkeypatch.setattr(store.kv, "commit", failing)
        with pytest.raises(errors.InsufficientStorage):
            await store.put_object("full", "k", chunks(b"published then lost"))
        monkeypatch.setattr(store.kv, "commit", real_commit)
        assert await store.collect_garbage() == 1

    run(scenario)
    assert blob_files(store) == []


def test_many_writers_of_identical_bytes_at_once_all_succeed(store: ObjectStore) -> None:
    """Each write of the same bytes changes one reference record; writers racing on it must
    queue for it, not fail with ConditionalRequestConflict (seen with 64 at once over S3)."""

    async def scenario() -> None:
        await store.create_bucket("same", owner=Owner("o"))
        await asyncio.gather(
            *(store.put_object("same", f"k{i}", chunks(b"identical")) for i in range(100))
        )
        sha = hashlib.sha256(b"identical").hexdigest()
        assert decode_ref(await store.io.run(store.kv.get, ks.ref_key(sha))).refs == 100
        await asyncio.gather(*(store.delete_object("same", f"k{i}") for i in range(100)))

    run(scenario)
