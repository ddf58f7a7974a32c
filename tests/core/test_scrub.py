"""Re-verification of stored blobs: the background scrub (rate, findings, resuming) and the
offline ``fsck --verify-content`` / ``--repair``."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from lightningstor.blobs.files import BLOCK_BYTES, SIDECAR_HEADER_BYTES
from lightningstor.blobs.scrub import SCRUB_STATE_FILE, Scrubber
from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import Batch
from lightningstor.meta.records import RefRecord, decode_ref, encode_ref
from lightningstor.objects.store import ObjectStore
from lightningstor.ops import fsck as fsck_module
from lightningstor.ops.fsck import check_store
from lightningstor_server.cli import main
from tests.core.test_bitrot import flip, open_store, payload, put, read
from tests.core.test_store import run

MiB = 1024 * 1024


def scrubber(store: ObjectStore, *, rate: float = 1e12, state: Path | None = None) -> Scrubber:
    return Scrubber(
        blobs=store.blobs,
        offloader=store.io,
        bytes_per_second=rate,
        interval_seconds=3600,
        state_path=state,
    )


def three_blobs(store: ObjectStore) -> list[str]:
    """Three objects of distinct content; their blobs in name order (the scrub's order)."""
    return sorted(keyed_blobs(store))


def keyed_blobs(store: ObjectStore) -> dict[str, str]:
    """Three objects of distinct content (k0, k1, k2), blob name to key."""
    return {put(store, f"k{i}", payload(BLOCK_BYTES + i, seed=i)): f"k{i}" for i in range(3)}


def test_a_pass_over_a_healthy_store_finds_nothing(store: ObjectStore) -> None:
    shas = three_blobs(store)
    results = run(scrubber(store).scrub_pass)
    assert (results.pass_blobs, results.blobs_checked) == (3, 3)
    assert results.bytes_checked == results.pass_bytes == 3 * BLOCK_BYTES + 3
    assert results.corrupt == {} and results.checksums == {}
    assert results.passes_completed == 1 and results.last_pass_finished_ns is not None
    assert sorted(p.name for p in store.blobs.blob_root.rglob("*") if p.is_file()) == shas


def test_findings_name_the_damaged_blob_and_are_dropped_once_it_is_gone(tmp_path: Path) -> None:
    with open_store(tmp_path / "d") as store:
        keys = keyed_blobs(store)
        shas = sorted(keys)
        flip(store.blobs.path(shas[1]), 7)
        store.blobs.crc_path(shas[2]).unlink()
        scrub = scrubber(store)
        results = run(scrub.scrub_pass)
        assert list(results.corrupt) == [shas[1]]
        assert results.corrupt[shas[1]] == (
            "content does not hash to its name (block 0 at offset 0 fails its CRC32C)"
        )
        assert list(results.checksums) == [shas[2]]
        assert "no block checksums" in results.checksums[shas[2]]
        assert results.blobs_checked == 3
        # The damaged object is deleted and its blob collected: the next pass forgets it.
        run(lambda: store.delete_object("rot", keys[shas[1]]))
        assert run(store.collect_garbage) == 1
        run(scrub.scrub_pass)
        assert results.corrupt == {} and list(results.checksums) == [shas[2]]
        assert results.blobs_checked == 5 and results.passes_completed == 2


def test_the_scrub_keeps_to_its_rate(store: ObjectStore) -> None:
    three_blobs(store)  # 3 MiB
    started = time.monotonic()
    run(scrubber(store, rate=6 * MiB).scrub_pass)
    assert time.monotonic() - started >= 0.45  # 3 MiB at 6 MiB/s


def test_an_interrupted_pass_resumes_where_it_stopped(store: ObjectStore, tmp_path: Path) -> None:
    shas = three_blobs(store)
    state = tmp_path / SCRUB_STATE_FILE

    async def cancel_after_first_blob() -> None:
        scrub = scrubber(store, rate=2 * MiB, state=state)  # ~0.5 s per blob
        task = asyncio.ensure_future(scrub.scrub_pass())
        while scrub.results.pass_blobs < 1:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(cancel_after_first_blob)
    saved = json.loads(state.read_text())
    assert saved["cursor"] == shas[0] and saved["finished_ns"] is None
    resumed = scrubber(store, state=state)
    results = run(resumed.scrub_pass)
    assert results.pass_blobs == 2  # the two it had not reached
    saved = json.loads(state.read_text())
    assert saved["cursor"] == "" and saved["finished_ns"] is not None
    # A pass finished moments ago: the next one waits for the interval.

    async def briefly() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(resumed.run_forever(), 0.3)

    run(briefly)
    assert results.passes_completed == 1


def test_an_unreadable_state_file_means_a_pass_from_the_start(
    store: ObjectStore, tmp_path: Path
) -> None:
    three_blobs(store)
    state = tmp_path / SCRUB_STATE_FILE
    state.write_text("{not json")
    assert run(scrubber(store, state=state).scrub_pass).pass_blobs == 3


def test_zero_disables_the_scrub(store: ObjectStore) -> None:
    assert not Scrubber(
        blobs=store.blobs, offloader=store.io, bytes_per_second=0, interval_seconds=60
    ).enabled
    assert not Scrubber(
        blobs=store.blobs, offloader=store.io, bytes_per_second=1, interval_seconds=0
    ).enabled


# --- fsck ---------------------------------------------------------------------------------
def fsck(data: Path, *flags: str) -> int:
    return main(["fsck", "--data-dir", str(data), *flags])


def test_verify_content_reports_exactly_the_damaged_blob(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d"
    with open_store(data) as store:
        shas = three_blobs(store)
    assert fsck(data, "--verify-content") == 0
    flip(data / "blobs" / shas[0][:2] / shas[0][2:4] / shas[0], BLOCK_BYTES - 1)
    assert fsck(data) == 0  # without reading the bytes, nothing shows
    capsys.readouterr()
    assert fsck(data, "--verify-content") == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"blob {shas[0]}: content does not hash to its name (block 0 ")
    assert out[1].endswith("3.0 MiB verified: 1 problems")
    assert len(out) == 2
    # Not repairable here: --repair leaves it, and says so again.
    assert fsck(data, "--verify-content", "--repair") == 1
    assert fsck(data, "--verify-content") == 1


def test_repair_fixes_each_kind_of_damage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "d"
    bodies = {f"k{i}": payload(BLOCK_BYTES + i, seed=i) for i in range(4)}
    with open_store(data) as store:
        shas = {key: put(store, key, body) for key, body in bodies.items()}
        orphan = put(store, "orphan", b"unreferenced")
        run(lambda: store.delete_object("rot", "orphan"))
        blobs = store.blobs
        # An orphan: unreferenced, its collection entry lost.
        store.kv.commit(_batch(delete=(ks.garbage_key(orphan),)))
        # Wrong counts, both ways.
        store.kv.commit(_batch(put={ks.ref_key(shas["k0"]): encode_ref(RefRecord(refs=9))}))
        store.kv.commit(_batch(put={ks.ref_key(shas["k1"]): encode_ref(RefRecord(refs=0))}))
        # Checksums missing, damaged, and stray (of no blob, and a half-done replacement).
        blobs.crc_path(shas["k2"]).unlink()
        flip(blobs.crc_path(shas["k3"]), SIDECAR_HEADER_BYTES + 1)
        stray = "cd" * 32
        blobs.crc_path(stray).parent.mkdir(parents=True)
        blobs.crc_path(stray).write_bytes(b"x")
        (blobs.crc_path(shas["k3"]).parent / "half-done.part").write_bytes(b"x")
    (data / "tmp" / "leftover.part").write_bytes(b"x")

    monkeypatch.setattr(fsck_module, "PROGRESS_EVERY_BLOBS", 2)
    capsys.readouterr()
    assert fsck(data, "--repair") == 1
    captured = capsys.readouterr()
    assert "fsck: 2/4 blobs checked" in captured.err  # the orphan went before the blob pass
    out = captured.out
    for found in (
        f"blob {shas['k0']}: 1 references, counted 9",
        f"blob {shas['k1']}: 1 references, counted 0",
        f"blob {orphan}: orphaned file",
        f"block checksums {stray}.crc: no such blob",
        "block checksums half-done.part: no such blob",
        "staged file leftover.part left in tmp/",
        f"blob {shas['k2']}: no block checksums",
        # Without --verify-content a damaged entry is not seen; the read refuses it (below).
        f"repaired: blob {shas['k0']}: reference count set to 1",
        f"repaired: blob {orphan}: orphaned file removed",
        f"repaired: blob {shas['k2']}: block checksums rebuilt",
        "repaired: staged file leftover.part removed",
        ": 7 problems, 7 repairs made (run fsck again to confirm)",
    ):
        assert found in out, found
    assert fsck(data, "--verify-content", "--repair") == 1
    assert f"blob {shas['k3']}: block checksums damaged (block 0 at offset 0 " in (
        capsys.readouterr().out
    )
    assert fsck(data, "--verify-content") == 0
    assert "healthy" in capsys.readouterr().out
    with open_store(data) as store:
        for key, body in bodies.items():
            assert read(store, key) == body
        assert not store.blobs.exists(orphan)
        assert decode_ref(store.kv.get(ks.ref_key(shas["k1"]))).refs == 1
        assert store.corrupt_reads == 0


def test_checksums_of_a_blob_awaiting_collection_are_not_strays(tmp_path: Path) -> None:
    data = tmp_path / "d"
    with open_store(data) as store:
        sha = put(store, "k", b"soon gone")
        run(lambda: store.delete_object("rot", "k"))  # queued; gc_delay 0, but not run yet
        store.blobs.path(sha).unlink()  # a collector that died between the two removals
        assert check_store(store.kv, store.blobs).problems == []
        assert run(store.collect_garbage) == 1
        assert not store.blobs.crc_path(sha).exists()


def test_fsck_refuses_a_store_a_daemon_has_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d"
    with open_store(data):
        assert fsck(data) == 2
    assert "is a daemon running?" in capsys.readouterr().err


def _batch(*, put: dict[bytes, bytes] | None = None, delete: tuple[bytes, ...] = ()) -> Batch:
    batch = Batch()
    for key, value in (put or {}).items():
        batch.put(key, value)
    for key in delete:
        batch.delete(key)
    return batch


def test_progress_is_reported_on_long_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "d"
    with open_store(data) as store:
        three_blobs(store)
    monkeypatch.setattr(fsck_module, "PROGRESS_EVERY_BLOBS", 1)
    assert fsck(data, "--verify-content") == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "fsck: 1/3 blobs checked, 1 MiB",
        "fsck: 2/3 blobs checked, 2 MiB",
        "fsck: 3/3 blobs checked, 3 MiB",
    ]
    assert os.path.isdir(data / "crcs")
