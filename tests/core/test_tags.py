"""S3's limits on tags (objects/tags.py) and tags kept through the store's operations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from lightningstor import errors
from lightningstor.model import Owner
from lightningstor.objects.store import ObjectStore
from lightningstor.objects.tags import check_tags


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


def test_the_limits_s3_sets() -> None:
    ten = [(f"k{i}", "v") for i in range(10)]
    assert list(check_tags(ten)) == [k for k, _ in ten]
    assert check_tags([("k" * 128, "v" * 256), ("empty", "")]) == {
        "k" * 128: "v" * 256,
        "empty": "",
    }
    for pairs in (
        [*ten, ("k10", "v")],
        [("k" * 129, "v")],
        [("", "v")],
        [("k", "v" * 257)],
        [("k", "a"), ("k", "b")],
        [("aws:cloudformation", "x")],
    ):
        with pytest.raises(errors.InvalidTag):
            check_tags(pairs)
    assert len(check_tags([(f"k{i}", "v") for i in range(50)], limit=50)) == 50


def test_tags_follow_writes_copies_and_changes(store: ObjectStore) -> None:
    async def scenario() -> None:
        await store.create_bucket("tags", owner=Owner("o"))
        await store.put_object("tags", "k", body(b"x"), tags={"a": "1", "b": "2"})
        assert (await store.head_object("tags", "k")).tags == {"a": "1", "b": "2"}
        _, copied = await store.copy_object(("tags", "k"), ("tags", "copy"))
        assert copied.tags == {"a": "1", "b": "2"}
        _, replaced = await store.copy_object(("tags", "k"), ("tags", "other"), tags={})
        assert replaced.tags == {}
        before = await store.head_object("tags", "k")
        changed = await store.set_object_tags("tags", "k", {"c": "3"})
        assert (changed.tags, changed.mtime_ns, changed.etag) == (
            {"c": "3"},
            before.mtime_ns,
            before.etag,
        )
        with pytest.raises(errors.InvalidTag):
            await store.set_object_tags("tags", "k", {f"k{i}": "v" for i in range(11)})
        assert (await store.head_object("tags", "k")).tags == {"c": "3"}
        with pytest.raises(errors.InvalidTag):
            await store.put_object("tags", "new", body(b"x"), tags={"aws:x": "y"})
        with pytest.raises(errors.NoSuchKey):
            await store.head_object("tags", "new")
        assert (await store.set_bucket_tags("tags", {"team": "a"})).tags == {"team": "a"}
        assert (await store.set_bucket_tags("tags", None)).tags is None

    asyncio.run(scenario())
