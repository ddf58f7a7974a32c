"""The unit of work: every metadata commit goes through it, and it alone handles a lost race.

An operation runs as attempts. An attempt reads through its :class:`Unit` (each read becomes an
expectation of the commit: "this key still holds what I read"), stages puts and deletes, and
the unit commits them as one atomic batch. When another writer changed anything the attempt
read, nothing of the attempt is written; :func:`transact` backs off a little (longer each
time) and runs the attempt again from its reads, and past its attempts fails with the error
its caller named. Domain errors an attempt raises (NoSuchKey, PreconditionFailed...) end the
operation at once.

This is also the seam of the metadata engine: on the embedded engine a unit is an
expectation-guarded batch; on a SQL engine it would be a transaction, retried on
serialization failures the same way.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from lightningstor.meta.kv import Batch, KVConflict, OrderedKV
from lightningstor.offload import Offloader

COMMIT_ATTEMPTS = 64
# Back-off after a lost race: 1 ms, doubling to at most 50 ms, with jitter so that racing
# writers do not retry in lockstep.
_FIRST_BACKOFF_SECONDS = 0.001
_MAX_BACKOFF_SECONDS = 0.05

U = TypeVar("U", bound="Unit")
T = TypeVar("T")


class Unit:
    """One attempt's reads (as expectations) and writes, committed all or nothing."""

    def __init__(self, kv: OrderedKV, io: Offloader, *, sync: bool = True) -> None:
        self.kv = kv
        self.io = io
        self.batch = Batch(sync=sync)
        self._outcome: bool | None = None

    async def read(self, key: bytes) -> bytes | None:
        """The value at ``key`` (None: absent), which the commit then expects unchanged."""
        return await self.io.run(self.read_now, key)

    async def read_many(self, keys: Iterable[bytes]) -> list[bytes | None]:
        """Several reads in one trip to the thread pool."""
        wanted = list(keys)
        return await self.io.run(lambda: [self.read_now(key) for key in wanted])

    def read_now(self, key: bytes) -> bytes | None:
        """:meth:`read`, blocking: for an attempt that runs whole on the thread pool."""
        raw = self.kv.get(key)
        self.batch.expect_value(key, raw)
        return raw

    async def scan(self, start: bytes, stop: bytes, *, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` rows in ``[start, stop)``. Unlike a read, a scan is not expected
        unchanged (an engine cannot guard a range): guard what it found with :meth:`expect`,
        or through a record every writer of the range changes."""
        return await self.io.run(lambda: self.kv.scan(start, stop, limit=limit))

    def expect(self, key: bytes, value: bytes | None) -> None:
        """Require ``key`` to hold ``value`` (None: to be absent) at commit, unread."""
        self.batch.expect_value(key, value)

    def put(self, key: bytes, value: bytes) -> None:
        self.batch.put(key, value)

    def delete(self, key: bytes) -> None:
        self.batch.delete(key)

    @property
    def writes(self) -> bool:
        return len(self.batch) > 0

    async def commit(self) -> bool:
        """Write the batch if every expectation still holds; False when a race was lost."""
        if self._outcome is None:
            self._outcome = await self.io.run(self._write)
        return self._outcome

    def commit_now(self) -> bool:
        """:meth:`commit`, blocking, from inside an attempt on the thread pool: the reads,
        checks and commit of a small write then cost one trip to the pool, not two."""
        if self._outcome is None:
            self._outcome = self._write()
        return self._outcome

    def _write(self) -> bool:
        if not self.writes:
            # Reads only: nothing to make durable, but an answer drawn from reads made at
            # different moments (an object's record, then its versions) holds only if what
            # was read is still there. Records never repeat a value (each carries its own
            # version and time), so unchanged now means unchanged throughout.
            return all(self.kv.get(key) == value for key, value in self.batch.expect.items())
        try:
            self.kv.commit(self.batch)
        except KVConflict:
            return False
        return True


async def transact(
    new_unit: Callable[[], U],
    attempt: Callable[[U], Awaitable[T]],
    *,
    conflict: Callable[[], Exception],
    attempts: int = COMMIT_ATTEMPTS,
) -> T:
    """Run ``attempt`` in fresh units until one commits; its result. Raises what the attempt
    raises, or ``conflict()`` once ``attempts`` attempts lost their race."""
    for number in range(attempts):
        unit = new_unit()
        value = await attempt(unit)
        if await unit.commit():
            return value
        await asyncio.sleep(_backoff(number))
    raise conflict()


def _backoff(number: int) -> float:
    ceiling = min(_MAX_BACKOFF_SECONDS, math.ldexp(_FIRST_BACKOFF_SECONDS, min(number, 16)))
    return ceiling * (0.5 + random.random() / 2)  # noqa: S311 - spreads retries, not a secret
