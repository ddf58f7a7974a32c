"""The store check finds each kind of damage, and nothing in a healthy store."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from lightningstor.blobs.files import BlobStore
from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import Batch
from lightningstor.meta.leveldb import LevelDBKV
from lightningstor.meta.records import RefRecord, encode_ref
from lightningstor.model import Owner
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from lightningstor.ops.fsck import check_store
from lightningstor_server.cli import main
from tests.core.test_store import chunks, run


def _store_with_objects(data_dir: Path) -> None:
    offloader = Offloader(workers=2)
    store = ObjectStore.open(data_dir, offloader=offloader, inline_max_bytes=0)

    async def fill() -> None:
        await store.create_bucket("fsck", owner=Owner("o"))
        await store.put_object("fsck", "a", chunks(b"alpha"))
        await store.put_object("fsck", "b", chunks(b"alpha"))
        await store.put_object("fsck", "c", chunks(b"gamma"))

    run(fill)
    store.close()
    offloader.shutdown()


def test_healthy_store_passes(tmp_path: Path) -> None:
    _store_with_objects(tmp_path / "d")
    assert main(["fsck", "--data-dir", str(tmp_path / "d"), "--verify-content"]) == 0


def test_each_kind_of_damage_is_reported(tmp_path: Path) -> None:
    data = tmp_path / "d"
    _store_with_objects(data)
    alpha, gamma = hashlib.sha256(b"alpha").hexdigest(), hashlib.sha256(b"gamma").hexdigest()
    blob = data / "blobs" / gamma[:2] / gamma[2:4] / gamma
    blob.write_bytes(b"rotten")  # bit rot
    (data / "tmp" / "leftover.part").write_bytes(b"x")
    orphan = "ab" * 32
    (data / "blobs" / "ab" / "ab").mkdir(parents=True)
    (data / "blobs" / "ab" / "ab" / orphan).write_bytes(b"?")
    offloader = Offloader(workers=1)
    store = ObjectStore.open(data, offloader=offloader)  # (this start-up removes the leftover)
    (data / "tmp" / "leftover.part").write_bytes(b"x")
    batch = Batch()
    batch.put(ks.ref_key(alpha), encode_ref(RefRecord(refs=5)))
    store.kv.commit(batch)
    store.close()
    offloader.shutdown()

    assert main(["fsck", "--data-dir", str(data)]) == 1
    kv = LevelDBKV(data / "meta")
    report = check_store(kv, BlobStore(data), verify_content=True)
    kv.close()
    joined = "\n".join(report.problems)
    assert f"blob {alpha}: 2 references, counted 5" in joined
    assert f"blob {orphan}: orphaned file" in joined
    assert "staged file leftover.part" in joined
    assert f"blob {gamma}: content does not hash to its name" in joined
    assert f"blob {orphan}: content does not hash" in joined  # the orphan is garbage too
    assert len(report.problems) == 5


def test_stats_and_gc_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _store_with_objects(tmp_path / "d")
    assert main(["stats", "--data-dir", str(tmp_path / "d"), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert (figures["buckets"], figures["objects"], figures["blobs"]) == (1, 3, 2)
    assert figures["logical_bytes"] == 15 and figures["stored_bytes"] == 10  # "alpha" twice
    assert figures["per_bucket"]["fsck"] == {"objects": 3, "bytes": 15}
    assert main(["stats", "--data-dir", str(tmp_path / "d")]) == 0
    assert "dedup saves 5" in capsys.readouterr().out
    assert main(["gc", "--data-dir", str(tmp_path / "d")]) == 0
    assert "collected 0 unreferenced blobs" in capsys.readouterr().out
    assert main(["stats", "--data-dir", str(tmp_path / "nowhere")]) == 2
