"""The one way blocking work leaves the event loop.

Disk writes, fsync, hashing of large buffers and LevelDB calls all run on a bounded thread pool
through :meth:`Offloader.run`; nothing on the request path calls them inline.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_WORKERS = 16


class Offloader:
    def __init__(self, *, workers: int = DEFAULT_WORKERS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ls-io")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs) if kwargs else functools.partial(fn, *args)
        return await loop.run_in_executor(self._pool, call)

    async def answers(self, *, within_seconds: float) -> bool:
        """Whether a job queued now runs within ``within_seconds``: the pool is alive and not
        wedged (what the systemd watchdog pings on)."""
        try:
            await asyncio.wait_for(self.run(_nothing), within_seconds or None)
        except TimeoutError:
            return False
        return True

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


def _nothing() -> None:
    return None
