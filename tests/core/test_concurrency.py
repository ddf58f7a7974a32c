"""Concurrent writers, deletes and collection on the same keys and blobs leave exactly one
complete winner and a consistent store (checked by fsck after each test)."""

from __future__ import annotations

import asyncio
import hashlib
import random

from lightningstor import errors
from lightningstor.model import Owner
from lightningstor.objects.store import ObjectStore
from tests.core.test_store import chunks, read_all, run


def test_many_writers_to_one_key_leave_one_complete_winner(store: ObjectStore) -> None:
    bodies = [bytes([n]) * (50_000 + n * 1000) for n in range(16)]

    async def scenario() -> None:
        await store.create_bucket("race", owner=Owner("o"))
        heads = await asyncio.gather(
            *(store.put_object("race", "k", chunks(b, 4096)) for b in bodies)
        )
        final = await read_all(store, "race", "k")
        assert final in bodies  # whole, never a mix
        current = await store.head_object("race", "k")
        assert current.etag == hashlib.md5(final).hexdigest()
        assert current in heads

    run(scenario)


def test_puts_racing_deletes_end_in_a_state_some_order_explains(store: ObjectStore) -> None:
    rng = random.Random(5)

    async def put(n: int) -> None:
        await asyncio.sleep(rng.random() / 100)
        await store.put_object("race", "k", chunks(str(n).encode() * 1000))

    async def delete() -> None:
        await asyncio.sleep(rng.random() / 100)
        await store.delete_object("race", "k")

    async def scenario() -> None:
        await store.create_bucket("race", owner=Owner("o"))
        for _ in range(10):
            await asyncio.gather(*(put(n) for n in range(5)), *(delete() for _ in range(5)))
            try:
                data = await read_all(store, "race", "k")
            except errors.NoSuchKey:
                continue
            assert data in [str(n).encode() * 1000 for n in range(5)]

    run(scenario)


def test_dedup_racing_collection_never_loses_a_referenced_blob(store: ObjectStore) -> None:
    data = b"shared content" * 500

    async def churn(n: int) -> None:
        for round_ in range(15):
            await store.put_object("dedup", f"k{n}", chunks(data))
            if round_ % 2:
                await store.delete_object("dedup", f"k{n}")

    async def collect() -> None:
        for _ in range(40):
            await store.collect_garbage()
            await asyncio.sleep(0)

    async def scenario() -> None:
        await store.create_bucket("dedup", owner=Owner("o"))
        await asyncio.gather(*(churn(n) for n in range(6)), collect(), collect())
        for n in range(6):
            assert await read_all(store, "dedup", f"k{n}") == data

    run(scenario)
