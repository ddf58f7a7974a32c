"""Small objects kept inside their metadata record (``inline_max_bytes``)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from lightningstor import errors
from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import Batch
from lightningstor.model import BodyExpectations, ContentHeaders, Owner, RangeRequest
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from lightningstor.ops.fsck import check_store
from tests.core.test_store import blob_files, chunks, read_all, run

LIMIT = 1024


@pytest.fixture
def inline_store(tmp_path: Path) -> Iterator[ObjectStore]:
    offloader = Offloader(workers=4)
    s = ObjectStore.open(
        tmp_path / "data", offloader=offloader, gc_delay_seconds=0, inline_max_bytes=LIMIT
    )
    run(lambda: s.create_bucket("bkt", owner=Owner("o")))
    yield s
    assert check_store(s.kv, s.blobs, verify_content=True).problems == []
    s.close()
    offloader.shutdown()


def test_small_bodies_live_in_the_record_and_read_back(inline_store: ObjectStore) -> None:
    store = inline_store

    async def scenario() -> None:
        for size in (0, 1, LIMIT):
            data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
            head = await store.put_object("bkt", f"k{size}", chunks(data, 100))
            assert head.inline == data and head.segments == ()
            assert head.etag == hashlib.md5(data).hexdigest()
            assert await read_all(store, "bkt", f"k{size}") == data
        whole = await read_all(store, "bkt", "k1024", RangeRequest(first=10, last=19))
        assert whole == bytes(range(10, 20))
        part = await store.open_object("bkt", "k1024", part_number=1)
        assert part.range is not None and part.range.length == LIMIT
        with pytest.raises(errors.InvalidPartNumber):
            await store.open_object("bkt", "k1024", part_number=2)

    run(scenario)
    assert blob_files(store) == []  # no file was written for any of them


def test_one_byte_over_the_limit_is_a_blob(inline_store: ObjectStore) -> None:
    data = b"y" * (LIMIT + 1)
    head = run(lambda: inline_store.put_object("bkt", "big", chunks(data, 7)))
    assert head.inline is None and len(head.segments) == 1
    assert blob_files(inline_store) == [hashlib.sha256(data).hexdigest()]
    assert run(lambda: read_all(inline_store, "bkt", "big")) == data


def test_overwrites_between_inline_and_blob_release_the_blob(inline_store: ObjectStore) -> None:
    store = inline_store
    big = b"z" * (LIMIT * 3)

    async def scenario() -> None:
        await store.put_object("bkt", "k", chunks(big))
        await store.put_object("bkt", "k", chunks(b"small now"))
        assert await store.collect_garbage() == 1
        assert await read_all(store, "bkt", "k") == b"small now"
        await store.put_object("bkt", "k", chunks(big))
        assert await read_all(store, "bkt", "k") == big
        assert (await store.delete_object("bkt", "k")).existed

    run(scenario)


def test_copies_of_an_inline_object_carry_its_bytes(inline_store: ObjectStore) -> None:
    store = inline_store

    async def scenario() -> None:
        await store.put_object("bkt", "src", chunks(b"copied"))
        await store.copy_object(
            ("bkt", "src"), ("bkt", "dst"), replace=(ContentHeaders(content_type="text/x"), {})
        )
        await store.delete_object("bkt", "src")
        assert await read_all(store, "bkt", "dst") == b"copied"

    run(scenario)


@pytest.mark.parametrize(
    ("expect", "error"),
    [
        (BodyExpectations(sha256_hex="0" * 64), errors.ContentSHA256Mismatch),
        (BodyExpectations(md5_b64=base64.b64encode(b"0" * 16).decode()), errors.BadDigest),
        (BodyExpectations(checksums={"crc32": "AAAAAA=="}), errors.BadDigest),
        (BodyExpectations(size=99), errors.IncompleteBody),
    ],
)
def test_bad_digests_of_small_bodies_keep_the_old_object(
    inline_store: ObjectStore, expect: BodyExpectations, error: type[errors.StorageError]
) -> None:
    async def scenario() -> None:
        await inline_store.put_object("bkt", "k", chunks(b"old"))
        with pytest.raises(error):
            await inline_store.put_object("bkt", "k", chunks(b"new"), expect=expect)
        assert await read_all(inline_store, "bkt", "k") == b"old"

    run(scenario)


def test_requested_checksums_are_computed_for_small_bodies(inline_store: ObjectStore) -> None:
    crc = base64.b64encode(zlib.crc32(b"sum").to_bytes(4, "big")).decode()
    expect = BodyExpectations(checksums={"crc32": crc, "crc32c": None})
    head = run(lambda: inline_store.put_object("bkt", "k", chunks(b"sum"), expect=expect))
    assert head.checksums["crc32"] == crc and set(head.checksums) == {"crc32", "crc32c"}


def test_missing_bucket_is_refused_for_small_bodies(inline_store: ObjectStore) -> None:
    with pytest.raises(errors.NoSuchBucket):
        run(lambda: inline_store.put_object("nope", "k", chunks(b"x")))


def test_many_identical_small_bodies_at_once_all_succeed(inline_store: ObjectStore) -> None:
    """Identical bodies share no reference record when inline, so concurrent writers of the
    same bytes never contend (a blob's count would make them retry)."""

    async def scenario() -> None:
        await asyncio.gather(
            *(inline_store.put_object("bkt", f"same-{i}", chunks(b"same")) for i in range(64))
        )
        page = await inline_store.list_objects("bkt", prefix="same-")
        assert len(page.entries) == 64

    run(scenario)


def test_small_writers_of_one_key_at_once_all_succeed(inline_store: ObjectStore) -> None:
    """A small PUT reads, checks and commits in one pool job; writers racing on one key lose
    the compare-and-swap, retry, and each commits in turn: none is refused."""

    async def scenario() -> None:
        heads = await asyncio.gather(
            *(inline_store.put_object("bkt", "hot", chunks(f"v{i}".encode())) for i in range(32))
        )
        current = await inline_store.head_object("bkt", "hot")
        assert len({head.etag for head in heads}) == 32
        assert current.etag in {head.etag for head in heads}

    run(scenario)


def test_damaged_inline_bytes_are_refused_and_reported(inline_store: ObjectStore) -> None:
    store = inline_store
    run(lambda: store.put_object("bkt", "k", chunks(b"precious")))
    key = ks.object_key("bkt", "k")
    record = json.loads(store.kv.get(key) or b"")
    record["data"] = base64.b64encode(b"pRecious").decode()  # one flipped bit's worth
    batch = Batch()
    batch.put(key, json.dumps(record).encode())
    store.kv.commit(batch)
    with pytest.raises(errors.InternalError):
        run(lambda: read_all(store, "bkt", "k"))
    assert store.corrupt_reads == 1
    problems = check_store(store.kv, store.blobs).problems
    assert problems == ["object bkt/k: inline bytes do not match its MD5"]
    run(lambda: store.delete_object("bkt", "k"))  # the fixture's final check must pass
