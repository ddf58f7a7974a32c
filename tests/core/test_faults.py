"""Disk faults during writes: a clear error, no staged file left, the old object intact, and
reads keep working."""

from __future__ import annotations

import errno

import pytest

from lightningstor import errors
from lightningstor.blobs.files import BlobWriter
from lightningstor.model import Owner
from lightningstor.objects.store import ObjectStore
from lightningstor_server.s3.errors import status_of
from tests.core.test_store import chunks, read_all, run


@pytest.mark.parametrize(
    ("code", "error", "status"),
    [
        (errno.ENOSPC, errors.InsufficientStorage, 507),
        (errno.EDQUOT, errors.InsufficientStorage, 507),
        (errno.EIO, errors.InternalError, 500),
    ],
)
@pytest.mark.parametrize("stage", ["write", "finish"])
def test_disk_fault_while_writing(
    store: ObjectStore,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    error: type[errors.StorageError],
    status: int,
    stage: str,
) -> None:
    async def scenario() -> None:
        await store.create_bucket("faults", owner=Owner("o"))
        await store.put_object("faults", "k", chunks(b"old and intact"))
        real = getattr(BlobWriter, stage)

        def failing(self: BlobWriter, *args: object) -> object:
            if self.size > 100_000 or stage == "finish":
                raise OSError(code, "injected")
            return real(self, *args)

        monkeypatch.setattr(BlobWriter, stage, failing)
        with pytest.raises(error) as raised:
            await store.put_object("faults", "k", chunks(b"n" * 300_000, 65536))
        assert status_of(raised.value) == status
        monkeypatch.setattr(BlobWriter, stage, real)
        assert await read_all(store, "faults", "k") == b"old and intact"
        await store.put_object("faults", "other", chunks(b"the store still writes"))

    run(scenario)
    assert list(store.blobs.tmp_root.iterdir()) == []


def test_staging_area_unwritable(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> object:
        raise OSError(errno.ENOSPC, "injected")

    async def scenario() -> None:
        await store.create_bucket("faults", owner=Owner("o"))
        await store.put_object("faults", "k", chunks(b"readable"))
        monkeypatch.setattr(store.blobs, "stage", refuse)
        with pytest.raises(errors.InsufficientStorage):
            await store.put_object("faults", "new", chunks(b"x"))
        assert await read_all(store, "faults", "k") == b"readable"

    run(scenario)
