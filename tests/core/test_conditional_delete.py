"""Conditional deletes: the version a delete removes is tested in the delete's own commit."""

from __future__ import annotations

import asyncio

import pytest

from lightningstor import errors
from lightningstor.model import VERSIONING_ENABLED, DeleteConditions, Owner
from lightningstor.objects.store import ObjectStore
from tests.core.test_tags import body


def test_a_conditional_delete_tests_the_version_it_removes(store: ObjectStore) -> None:
    async def scenario() -> None:
        await store.create_bucket("cond", owner=Owner("o"))
        head = await store.put_object("cond", "k", body(b"four"))
        with pytest.raises(errors.PreconditionFailed):
            await store.delete_object("cond", "k", conditions=DeleteConditions(size=5))
        assert (await store.head_object("cond", "k")).etag == head.etag
        await store.set_versioning("cond", VERSIONING_ENABLED)
        newer = await store.put_object("cond", "k", body(b"newer"))
        old = DeleteConditions(etag=head.etag, modified_s=head.mtime_ns // 1_000_000_000)
        with pytest.raises(errors.PreconditionFailed):  # the current version is another
            await store.delete_object("cond", "k", conditions=DeleteConditions(etag=head.etag))
        removed = await store.delete_object("cond", "k", version_id=head.version_id, conditions=old)
        assert removed.existed and not removed.delete_marker
        assert (await store.head_object("cond", "k")).version_id == newer.version_id

    asyncio.run(scenario())
