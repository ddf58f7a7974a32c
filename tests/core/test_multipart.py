"""Multipart uploads in the core: parts as blobs, completion as one commit, nothing orphaned."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from lightningstor import errors
from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import scan_all
from lightningstor.meta.records import decode_ref
from lightningstor.model import BodyExpectations, ContentHeaders, Owner, Preconditions
from lightningstor.objects import limits
from lightningstor.objects.multipart import CompletedPart, MultipartUploads, multipart_etag
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from lightningstor.ops.fsck import check_store
from tests.core.test_store import blob_files, chunks, read_all, run

MIN = 1024  # the configurable minimum part size, lowered so tests stay small


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ObjectStore]:
    offloader = Offloader(workers=4)
    s = ObjectStore.open(tmp_path / "data", offloader=offloader, gc_delay_seconds=0)
    yield s
    s.close()
    offloader.shutdown()


@pytest.fixture
def mpu(store: ObjectStore) -> MultipartUploads:
    store.uploads.min_part_bytes = MIN
    return store.uploads


def part_bytes(n: int, size: int = MIN) -> bytes:
    return bytes([n]) * size


async def upload(mpu: MultipartUploads, upload_id: str, n: int, data: bytes) -> CompletedPart:
    info = await mpu.upload_part("mpu", "obj", upload_id, n, chunks(data, 300))
    return CompletedPart(number=n, etag=f'"{info.etag}"')


def referenced(store: ObjectStore) -> set[str]:
    rows = list(scan_all(store.kv, ks.REF_PREFIX, ks.prefix_end(ks.REF_PREFIX)))
    return {k[len(ks.REF_PREFIX) :].decode() for k, v in rows if decode_ref(v).refs > 0}


@pytest.fixture(autouse=True)
def store_stays_consistent(store: ObjectStore) -> Iterator[None]:
    """Whatever a test did, the store check finds nothing wrong afterwards."""
    yield
    report = check_store(store.kv, store.blobs, verify_content=True)
    assert report.problems == []


def test_complete_makes_one_object_from_the_parts_without_copying(
    store: ObjectStore, mpu: MultipartUploads
) -> None:
    data = [part_bytes(1), part_bytes(2), part_bytes(3, 10)]

    async def scenario() -> None:
        await store.create_bucket("mpu", owner=Owner("o"))
        created = await mpu.create(
            "mpu", "obj", headers=ContentHeaders(content_type="video/mp4"), user_metadata={"a": "b"}
        )
        listed = [await upload(mpu, created.upload_id, n + 1, d) for n, d in enumerate(data)]
        head = await mpu.complete("mpu", "obj", created.upload_id, listed)
        assert head.etag == multipart_etag([hashlib.md5(d).hexdigest() for d in data])
        assert head.etag.endswith("-3")
        assert head.size == sum(map(len, data))
        assert head.headers.content_type == "video/mp4"
        assert dict(head.user_metadata) == {"a": "b"}
        assert await read_all(store, "mpu", "obj") == b"".join(data)
        with pytest.raises(errors.NoSuchUpload):
            await mpu.list_parts("mpu", "obj", created.upload_id)
        # A client retrying the completion after losing the answer gets the same object.
        again = await mpu.complete("mpu", "obj", created.upload_id, listed)
        assert again.etag == head.etag

    run(scenario)
    assert blob_files(store) == sorted(hashlib.sha256(d).hexdigest() for d in data)
    assert referenced(store) == set(blob_files(store))


def test_part_rules(store: ObjectStore, mpu: MultipartUploads) -> None:
    async def scenario() -> None:
        await store.create_bucket("mpu", owner=Owner("o"))
        upload_id = (await mpu.create("mpu", "obj")).upload_id
        p1 = await upload(mpu, upload_id, 1, part_bytes(1))
        p2 = await upload(mpu, upload_id, 2, part_bytes(2, 10))
        p3 = await upload(mpu, upload_id, 3, part_bytes(3))
        cases = [
            ([p1, CompletedPart(number=4, etag=p3.etag)], errors.InvalidPart),
            ([p1, CompletedPart(number=2, etag='"00"')], errors.InvalidPart),
            ([p2, p1], errors.InvalidPartOrder),
            ([p1, p3, p2], errors.InvalidPartOrder),
            ([p1, p1, CompletedPart(number=1, etag='"00"')], errors.InvalidPart),  # the last
            ([p2, p3], errors.EntityTooSmall),
            ([], errors.InvalidRequest),
        ]
        for listed, error in cases:
            with pytest.raises(error):
                await mpu.complete("mpu", "obj", upload_id, listed)
        # Failed completions leave the upload usable; the unlisted part 2 is released.
        head = await mpu.complete("mpu", "obj", upload_id, [p1, p3])
        assert head.size == 2 * MIN
        with pytest.raises(errors.InvalidArgument):
            await mpu.upload_part("mpu", "obj", "0" * 32, 10_001, chunks(b"x"))
        with pytest.raises(errors.NoSuchUpload):
            await mpu.upload_part("mpu", "obj", "not-an-id", 1, chunks(b"x"))
        assert await store.collect_garbage() == 1

    run(scenario)
    assert referenced(store) == set(blob_files(store))


def test_reuploading_a_part_replaces_it(store: ObjectStore, mpu: MultipartUploads) -> None:
    async def scenario() -> None:
        await store.create_bucket("mpu", owner=Owner("o"))
        upload_id = (await mpu.create("mpu", "obj")).upload_id
        await upload(mpu, upload_id, 1, part_bytes(7))
        second = await upload(mpu, upload_id, 1, part_bytes(8))
        _info, parts, more = await mpu.list_parts("mpu", "obj", upload_id)
        assert [(p.number, p.etag) for p in parts] == [(1, second.etag.strip('"'))]
        assert not more
        await store.collect_garbage()
        assert blob_files(store) == [hashlib.sha256(part_bytes(8)).hexdigest()]
        # A client that re-sent the part lists both answers it got: the last one counts.
        stale = CompletedPart(number=1, etag=f'"{hashlib.md5(part_bytes(7)).hexdigest()}"')
        head = await mpu.complete("mpu", "obj", upload_id, [stale, second])
        assert head.size == len(part_bytes(8))

    run(scenario)


def test_abort_releases_every_part_and_refuses_late_parts(
    store: ObjectStore, mpu: MultipartUploads
) -> None:
    receiving, aborted = asyncio.Event(), asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"x" * 600
        receiving.set()  # the part is being received: the store has its first chunk
        await aborted.wait()
        yield b"y" * 600

    async def scenario() -> None:
        await store.create_bucket("mpu", owner=Owner("o"))
        upload_id = (await mpu.create("mpu", "obj")).upload_id
        await upload(mpu, upload_id, 1, part_bytes(1))
        late = asyncio.ensure_future(mpu.upload_part("mpu", "obj", upload_id, 2, slow_body()))
        await receiving.wait()
        await mpu.abort("mpu", "obj", upload_id)
        aborted.set()
        with pytest.raises(errors.NoSuchUpload):
            await late
        with pytest.raises(errors.NoSuchUpload):
            await mpu.abort("mpu", "obj", upload_id)
        with pytest.raises(errors.NoSuchUpload):
            await mpu.complete("mpu", "obj", upload_id, [CompletedPart(number=1, etag="x")])
        await store.collect_garbage()

    run(scenario)
    assert blob_files(store) == []
    assert list(store.blobs.tmp_root.iterdir()) == []
    assert list(scan_all(store.kv, ks.PART_PREFIX, ks.prefix_end(ks.PART_PREFIX))) == []


def test_composite_checksum_and_part_checksums(store: ObjectStore, mpu: MultipartUploads) -> None:
    data = [part_bytes(1), part_bytes(2, 5)]
    crcs = [zlib.crc32(d).to_bytes(4, "big") for d in data]

    async def scenario() -> None:
        await store.create_bucket("mpu", owner=Owner("o"))
        upload_id = (await mpu.create("mpu", "obj", checksum_algorithm="crc32")).upload_id
        listed = []
        for n, (d, crc) in enumerate(zip(data, crcs, strict=True), start=1):
            info = await mpu.upload_part(
                "mpu",
                "obj",
                upload_id,
                n,
                chunks(d),
                expect=BodyExpectations(checksums={"crc32": base64.b64encode(crc).decode()}),
            )
            listed.append(CompletedPart(number=n, etag=info.etag, checksums=info.checksums))
        with pytest.raises(errors.BadDigest):
            await mpu.upload_part(
                "mpu",
                "obj",
                upload_id,
                3,
                chunks(b"z"),
                expect=BodyExpectations(checksums={"crc32": "AAAAAA=="}),
            )
        head = await mpu.complete("mpu", "obj", upload_id, listed)
        composite = base64.b64encode(zlib.crc32(b"".join(crcs)).to_bytes(4, "big")).decode()
        assert head.checksums == {"crc32": f"{composite}-2"}

    run(scenario)


def test_uploads_listing_sweep_and_bucket_deletion(
    store: ObjectStore, mpu: MultipartUploads
) -> None:
    async def scenario() -> None:
        await store.create_bucket("mpu", owner=Owner("o"))
        ids = [(await mpu.create("mpu", key)).upload_id for key in ("a", "b", "b", "c/d")]
        await mpu.upload_part("mpu", "a", ids[0], 1, chunks(part_bytes(1)))
        uploads, more = await mpu.list_uploads("mpu")
        assert [u.key for u in uploads] == ["a", "b", "b", "c/d"] and not more
        page, more = await mpu.list_uploads("mpu", max_uploads=2)
        assert len(page) == 2 and more
        after_b, _ = await mpu.list_uploads("mpu", key_marker="b")
        assert [u.key for u in after_b] == ["c/d"]
        with pytest.raises(errors.BucketNotEmpty):
            await store.delete_bucket("mpu")
        assert await mpu.sweep(older_than_seconds=3600) == 0
        assert await mpu.sweep(older_than_seconds=0) == 4
        assert (await mpu.list_uploads("mpu"))[0] == []
        await store.delete_bucket("mpu")

    run(scenario)
    assert list(scan_all(store.kv, ks.PART_PREFIX, ks.prefix_end(ks.PART_PREFIX))) == []


def test_delete_bucket_ends_its_uploads_and_releases_their_parts(
    store: ObjectStore, mpu: MultipartUploads
) -> None:
    async def scenario() -> None:
        await store.create_bucket("mpu", owner=Owner("o"))
        ids = [(await mpu.create("mpu", key)).upload_id for key in ("a", "b", "b")]
        for number in (1, 2):
            await mpu.upload_part("mpu", "a", ids[0], number, chunks(part_bytes(number)))
        await mpu.upload_part("mpu", "b", ids[2], 1, chunks(part_bytes(1)))  # shares a blob
        await store.put_object("mpu", "object", chunks(b"an object"))
        with pytest.raises(errors.BucketNotEmpty):  # objects still count
            await mpu.delete_bucket("mpu")
        assert len((await mpu.list_uploads("mpu"))[0]) == 3  # and nothing was aborted
        await store.delete_object("mpu", "object")
        await mpu.delete_bucket("mpu")
        with pytest.raises(errors.NoSuchBucket):
            await store.head_bucket("mpu")
        await store.create_bucket("mpu", owner=Owner("o"))  # the name is free, and empty
        assert (await mpu.list_uploads("mpu"))[0] == []
        with pytest.raises(errors.NoSuchUpload):
            await mpu.upload_part("mpu", "a", ids[0], 3, chunks(b"late"))
        assert await store.collect_garbage(now_ns=time.time_ns() + 10**15) == 2

    run(scenario)
    assert list(scan_all(store.kv, ks.PART_PREFIX, ks.prefix_end(ks.PART_PREFIX))) == []
    assert list(scan_all(store.kv, ks.UPLOAD_PREFIX, ks.prefix_end(ks.UPLOAD_PREFIX))) == []


def test_complete_honours_conditional_write(store: ObjectStore, mpu: MultipartUploads) -> None:
    async def scenario() -> None:
        await store.create_bucket("mpu", owner=Owner("o"))
        await store.put_object("mpu", "obj", chunks(b"exists"))
        upload_id = (await mpu.create("mpu", "obj")).upload_id
        p1 = await upload(mpu, upload_id, 1, part_bytes(1))
        with pytest.raises(errors.PreconditionFailed):
            await mpu.complete(
                "mpu", "obj", upload_id, [p1], preconditions=Preconditions(if_none_match="*")
            )
        assert await read_all(store, "mpu", "obj") == b"exists"
        head = await mpu.complete("mpu", "obj", upload_id, [p1])
        assert head.size == MIN

    run(scenario)


def test_a_completion_interrupted_by_a_crash_is_reopened_at_start(tmp_path: Path) -> None:
    offloader = Offloader(workers=2)
    store = ObjectStore.open(
        tmp_path / "d", offloader=offloader, gc_delay_seconds=0, min_part_bytes=MIN
    )
    uploads = store.uploads

    async def crash_mid_completion() -> tuple[str, CompletedPart]:
        await store.create_bucket("mpu", owner=Owner("o"))
        upload_id = (await uploads.create("mpu", "obj")).upload_id
        part = await uploads.upload_part("mpu", "obj", upload_id, 1, chunks(part_bytes(1)))
        await uploads._close("mpu", "obj", upload_id)  # what complete() does first; then: crash
        return upload_id, CompletedPart(number=1, etag=part.etag)

    upload_id, part = run(crash_mid_completion)
    store.close()
    store = ObjectStore.open(
        tmp_path / "d", offloader=offloader, gc_delay_seconds=0, min_part_bytes=MIN
    )
    uploads = store.uploads

    async def finish() -> None:
        assert [u.upload_id for u in (await uploads.list_uploads("mpu"))[0]] == [upload_id]
        head = await uploads.complete("mpu", "obj", upload_id, [part])
        assert head.size == MIN

    run(finish)
    assert check_store(store.kv, store.blobs).problems == []
    store.close()
    offloader.shutdown()


def test_the_store_refuses_a_put_or_part_over_the_single_put_limit(
    store: ObjectStore, mpu: MultipartUploads, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5 GiB per PUT and per part, enforced on the bytes by the store, so a door that does
    not check a declared size (gRPC, or an S3 body without one) cannot pass it."""
    monkeypatch.setattr(limits, "MAX_PUT_BYTES", 4096)

    async def scenario() -> None:
        await store.create_bucket("mpu", owner=Owner("o"))
        await store.put_object("mpu", "kept", chunks(b"k" * 4096))
        with pytest.raises(errors.EntityTooLarge) as caught:
            await store.put_object("mpu", "kept", chunks(b"x" * 4097, 1000))
        assert caught.value.extra == {"MaxSizeAllowed": "4096"}
        upload = await mpu.create("mpu", "obj")
        with pytest.raises(errors.EntityTooLarge):
            await mpu.upload_part("mpu", "obj", upload.upload_id, 1, chunks(b"p" * 4097, 1000))
        assert await read_all(store, "mpu", "kept") == b"k" * 4096  # nothing was lost
        assert (await mpu.list_parts("mpu", "obj", upload.upload_id))[1] == []
        assert list(store.blobs.tmp_root.iterdir()) == []  # nothing staged stays
        await mpu.abort("mpu", "obj", upload.upload_id)

    run(scenario)
