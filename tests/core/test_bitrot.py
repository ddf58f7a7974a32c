"""Block checksums: written in the same pass as the blob, durable before it is published, and
checked on every read, so damaged bytes are refused rather than served."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from lightningstor import errors
from lightningstor.blobs import files as blobs_module
from lightningstor.blobs.files import (
    BLOCK_BYTES,
    SIDECAR_HEADER_BYTES,
    BlobStore,
    BlockCrcs,
    crc32c,
    decode_sidecar_header,
)
from lightningstor.blobs.scrub import Scrubber
from lightningstor.model import Owner, RangeRequest
from lightningstor.objects.multipart import CompletedPart
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from lightningstor.ops.fsck import check_store
from tests.core.test_store import chunks, read_all, run

MiB = 1024 * 1024


def payload(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def flip(path: Path, offset: int) -> None:
    """One bit of the file changes, as bit rot would change it."""
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x10]))


@contextlib.contextmanager
def open_store(data_dir: Path) -> Iterator[ObjectStore]:
    """A store of the test's own: these tests damage it, which the shared fixture forbids."""
    offloader = Offloader(workers=2)
    store = ObjectStore.open(data_dir, offloader=offloader, gc_delay_seconds=0, inline_max_bytes=0)
    try:
        yield store
    finally:
        store.close()
        offloader.shutdown()


def put(store: ObjectStore, key: str, data: bytes, chunk: int = 65536) -> str:
    async def scenario() -> None:
        with contextlib.suppress(errors.BucketAlreadyOwnedByYou):
            await store.create_bucket("rot", owner=Owner("o"))
        await store.put_object("rot", key, chunks(data, chunk))

    run(scenario)
    return hashlib.sha256(data).hexdigest()


def read(store: ObjectStore, key: str, rng: RangeRequest | None = None) -> bytes:
    return run(lambda: read_all(store, "rot", key, rng))


def _reference_crc32c(data: bytes) -> int:
    """CRC-32C bit by bit (reflected polynomial 0x82F63B78): slow, plain, independent."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_our_crc32c_is_the_standard_one() -> None:
    for data in (b"", b"a", b"123456789", payload(70_001)):
        assert crc32c(data) == _reference_crc32c(data)
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value (RFC 3720)


@pytest.mark.parametrize("piece", [1, 4096, 65536, 333_333, BLOCK_BYTES, BLOCK_BYTES + 1])
def test_blocks_straddling_writes_get_the_crc_of_the_whole_block(piece: int) -> None:
    data = payload(2 * BLOCK_BYTES + 12345) if piece > 1 else payload(BLOCK_BYTES + 100)
    crcs = BlockCrcs()
    for i in range(0, len(data), piece):
        crcs.update(data[i : i + piece])
    expected = b"".join(
        crc32c(data[i : i + BLOCK_BYTES]).to_bytes(4, "big")
        for i in range(0, len(data), BLOCK_BYTES)
    )
    assert crcs.finish() == expected


@pytest.mark.parametrize("size", [0, 1, BLOCK_BYTES, 2 * BLOCK_BYTES + 7])
def test_every_blob_gets_a_sidecar_of_its_block_crcs(tmp_path: Path, size: int) -> None:
    data = payload(size)
    with open_store(tmp_path / "d") as store:
        sha = put(store, "k", data, chunk=100_003)  # pieces that straddle block boundaries
        raw = store.blobs.crc_path(sha).read_bytes()
        assert store.blobs.path(sha).read_bytes() == data  # the blob is the bytes, no trailer
    assert decode_sidecar_header(raw[:SIDECAR_HEADER_BYTES], len(raw)) == size
    entries = raw[SIDECAR_HEADER_BYTES:]
    assert [entries[i : i + 4] for i in range(0, len(entries), 4)] == [
        crc32c(data[i : i + BLOCK_BYTES]).to_bytes(4, "big") for i in range(0, size, BLOCK_BYTES)
    ]
    assert sorted(p.name for p in (tmp_path / "d" / "tmp").iterdir()) == []


def test_checksums_are_durable_before_the_blob_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = BlobStore(tmp_path)
    events: list[tuple[str, str]] = []
    real_fsync, real_link, real_unlink = os.fsync, os.link, os.unlink
    real_fsync_dir = blobs_module._fsync_dir

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def link(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        events.append(("link", str(dst)))
        real_link(src, dst)

    def unlink(path: str | os.PathLike[str]) -> None:
        events.append(("unlink", str(path)))
        real_unlink(path)

    def fsync_dir(path: Path) -> None:
        events.append(("fsync_dir", str(path)))
        real_fsync_dir(path)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(os, "unlink", unlink)
    monkeypatch.setattr(blobs_module, "_fsync_dir", fsync_dir)
    data = payload(BLOCK_BYTES + 10)
    writer = blobs.stage()
    writer.write(data)
    staged = writer.finish()
    blobs.publish(staged)
    blobs.discard(staged)
    blobs.remove(staged.sha256_hex)
    sha = staged.sha256_hex
    sidecar, blob = blobs.crc_path(sha), blobs.path(sha)
    at = {event: i for i, event in enumerate(events)}  # the last time each happened
    first = {event: i for i, event in reversed(list(enumerate(events)))}
    # Both staged files are on disk before either gets its name...
    staged_synced = max(at[("fsync", str(staged.crc_path))], at[("fsync", str(staged.path))])
    assert staged_synced < first[("link", str(sidecar))]
    # ...the checksums' name is durable before the blob has a name at all...
    assert first[("link", str(sidecar))] < first[("fsync_dir", str(sidecar.parent))]
    assert first[("fsync_dir", str(sidecar.parent))] < first[("link", str(blob))]
    assert first[("link", str(blob))] < first[("fsync_dir", str(blob.parent))]
    # ...and removal takes the blob first, so no blob name ever lacks its checksums.
    assert at[("unlink", str(blob))] < at[("unlink", str(sidecar))]
    assert not sidecar.exists() and not blob.exists()


def test_shard_directories_are_synced_into_their_parents_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Path] = []
    real_fsync_dir = blobs_module._fsync_dir

    def fsync_dir(path: Path) -> None:
        synced.append(path)
        real_fsync_dir(path)

    monkeypatch.setattr(blobs_module, "_fsync_dir", fsync_dir)
    blobs = BlobStore(tmp_path)
    shard = blobs.path("ab" * 32).parent
    shard.mkdir(parents=True)  # made by another writer that may not have synced it yet
    blobs._make_shard_dirs(shard)
    assert synced == [blobs.blob_root, shard.parent]
    blobs._make_shard_dirs(shard)
    assert synced == [blobs.blob_root, shard.parent]  # durable since: not again
    BlobStore(tmp_path)._make_shard_dirs(shard)
    assert len(synced) == 4  # a new process syncs once more


def test_a_flipped_bit_is_refused_not_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = payload(3 * BLOCK_BYTES + 100)
    with open_store(tmp_path / "d") as store:
        sha = put(store, "victim", data)
        put(store, "bystander", b"unharmed")
        flip(store.blobs.path(sha), BLOCK_BYTES + 12345)

        async def stream() -> list[bytes]:
            served: list[bytes] = []
            reader = await store.open_object("rot", "victim")
            with pytest.raises(errors.InternalError) as refused:
                async for chunk in reader.chunks:
                    served.append(chunk)
            assert "integrity check" in refused.value.message
            return served

        with caplog.at_level(logging.ERROR, logger="lightningstor.objects.store"):
            served = run(stream)
        # The intact block before it went out; nothing of the damaged block did.
        assert served == [data[:BLOCK_BYTES]]
        assert store.corrupt_reads == 1
        assert f"corrupt blob {sha} at offset {BLOCK_BYTES}" in caplog.text
        assert "block 1 fails its CRC32C" in caplog.text
        assert read(store, "bystander") == b"unharmed"
        # Scrub and fsck find exactly that blob.
        scrubber = Scrubber(
            blobs=store.blobs, offloader=store.io, bytes_per_second=1e12, interval_seconds=1
        )
        results = run(scrubber.scrub_pass)
        assert list(results.corrupt) == [sha]
        assert f"block 1 at offset {BLOCK_BYTES} fails its CRC32C" in results.corrupt[sha]
        assert results.checksums == {}
        problems = check_store(store.kv, store.blobs, verify_content=True).problems
    assert problems == [
        f"blob {sha}: content does not hash to its name (block 1 at offset {BLOCK_BYTES} "
        "fails its CRC32C); used by object rot/victim"
    ]


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (BLOCK_BYTES + 10, BLOCK_BYTES + 20),  # inside the damaged block, not on the bad byte
        (BLOCK_BYTES - 5, BLOCK_BYTES + 5),  # straddling into it
        (2 * BLOCK_BYTES - 1, 2 * BLOCK_BYTES + 10),  # ending in it
    ],
)
def test_ranges_verify_the_whole_blocks_they_touch(tmp_path: Path, first: int, last: int) -> None:
    data = payload(3 * BLOCK_BYTES)
    with open_store(tmp_path / "d") as store:
        sha = put(store, "k", data)
        flip(store.blobs.path(sha), 2 * BLOCK_BYTES - 100)  # in block 1, outside every range
        # A range wholly in an intact block is served...
        assert read(store, "k", RangeRequest(first=100, last=200)) == data[100:201]
        # ...but one touching the damaged block is not, though its own bytes are intact.
        with pytest.raises(errors.InternalError):
            read(store, "k", RangeRequest(first=first, last=last))
        assert store.corrupt_reads == 1


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (0, 0),
        (1, BLOCK_BYTES - 2),
        (BLOCK_BYTES - 1, BLOCK_BYTES),
        (BLOCK_BYTES + 3, 3 * BLOCK_BYTES + 50),
        (3 * BLOCK_BYTES, 3 * BLOCK_BYTES + 99),
        (5, 3 * BLOCK_BYTES + 99),
    ],
)
def test_partial_block_ranges_return_exactly_their_bytes(
    store: ObjectStore, first: int, last: int
) -> None:
    data = payload(3 * BLOCK_BYTES + 100)
    put(store, "k", data)
    assert read(store, "k", RangeRequest(first=first, last=last)) == data[first : last + 1]
    assert store.corrupt_reads == 0


def test_multipart_objects_verify_each_part(tmp_path: Path) -> None:
    part1, part2 = payload(BLOCK_BYTES + 5, 1), payload(BLOCK_BYTES + 7, 2)
    with open_store(tmp_path / "d") as store:
        uploads = store.uploads
        uploads.min_part_bytes = 1

        async def scenario() -> None:
            await store.create_bucket("rot", owner=Owner("o"))
            upload_id = (await uploads.create("rot", "mp")).upload_id
            parts = [
                await uploads.upload_part("rot", "mp", upload_id, n, chunks(data))
                for n, data in ((1, part1), (2, part2))
            ]
            done = [CompletedPart(number=p.number, etag=p.etag) for p in parts]
            await uploads.complete("rot", "mp", upload_id, done)

        run(scenario)
        assert read(store, "mp") == part1 + part2
        flip(store.blobs.path(hashlib.sha256(part2).hexdigest()), BLOCK_BYTES + 1)
        assert read(store, "mp", RangeRequest(first=0, last=len(part1) - 1)) == part1
        with pytest.raises(errors.InternalError):
            read(store, "mp")


def test_a_truncated_blob_is_refused(tmp_path: Path) -> None:
    data = payload(BLOCK_BYTES + 500)
    with open_store(tmp_path / "d") as store:
        sha = put(store, "k", data)
        os.truncate(store.blobs.path(sha), BLOCK_BYTES + 100)
        assert read(store, "k", RangeRequest(first=0, last=99)) == data[:100]
        with pytest.raises(errors.InternalError):
            read(store, "k")


def test_damaged_checksums_refuse_the_read_too(tmp_path: Path) -> None:
    data = payload(2 * BLOCK_BYTES)
    with open_store(tmp_path / "d") as store:
        sha = put(store, "k", data)
        flip(store.blobs.crc_path(sha), SIDECAR_HEADER_BYTES + 5)  # block 1's CRC
        with pytest.raises(errors.InternalError):
            read(store, "k")
        store.blobs.crc_path(sha).write_bytes(b"junk")  # not a checksum file at all
        with pytest.raises(errors.InternalError):
            read(store, "k")
        assert store.corrupt_reads == 2


def test_verification_can_be_turned_off(tmp_path: Path) -> None:
    data = payload(BLOCK_BYTES + 1)
    with open_store(tmp_path / "d") as store:
        sha = put(store, "k", data)
        flip(store.blobs.path(sha), 3)
        store.verify_reads = False
        served = read(store, "k")
        assert served != data and len(served) == len(data)  # what verification prevents
        assert store.corrupt_reads == 0


def test_blobs_without_checksums_are_read_unverified_and_counted(tmp_path: Path) -> None:
    data = payload(BLOCK_BYTES + 1)
    with open_store(tmp_path / "d") as store:
        sha = put(store, "k", data)
        store.blobs.crc_path(sha).unlink()  # as stored before block checksums existed
        assert read(store, "k") == data
        assert store.unverified_reads == 1
        assert store.corrupt_reads == 0


def test_a_new_publish_replaces_damaged_checksums_of_unreferenced_bytes(tmp_path: Path) -> None:
    data = payload(BLOCK_BYTES + 3)
    with open_store(tmp_path / "d") as store:
        sha = put(store, "k", data)
        run(lambda: store.delete_object("rot", "k"))
        # The collector removed the blob but died before its checksums (which then rotted).
        store.blobs.path(sha).unlink()
        flip(store.blobs.crc_path(sha), SIDECAR_HEADER_BYTES)
        put(store, "again", data)
        assert read(store, "again") == data
        assert check_store(store.kv, store.blobs, verify_content=True).problems == []
        assert list(store.blobs.crc_root.rglob("*.part")) == []
