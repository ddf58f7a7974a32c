"""Slows down sources that keep failing authentication (credential guessing, broken clients).

Each source address may fail a number of times within a window; past that, its requests are
answered with SlowDown until the window has moved on. Successful requests are never limited.
The answer is the same whatever the failure was, so limiting reveals nothing about keys.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from lightningstor.errors import SlowDown

FAILURES_PER_WINDOW = 20
WINDOW_SECONDS = 60.0
MAX_TRACKED_SOURCES = 10_000


class FailedAuthLimiter:
    def __init__(
        self,
        *,
        failures: int = FAILURES_PER_WINDOW,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._failures = failures
        self._window = window_seconds
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}

    def _recent(self, source: str) -> deque[float]:
        times = self._seen.get(source)
        if times is None:
            return deque()
        cutoff = self._clock() - self._window
        while times and times[0] < cutoff:
            times.popleft()
        if not times:
            del self._seen[source]
        return times

    def check(self, source: str) -> None:
        """Raise SlowDown while ``source`` is over its failure budget."""
        if self._failures and len(self._recent(source)) >= self._failures:
            raise SlowDown(f"Too many failed authentications from {source}; retry later.")

    def failed(self, source: str) -> int:
        """Record a failure; returns the failures of ``source`` within the window."""
        if source not in self._seen and len(self._seen) >= MAX_TRACKED_SOURCES:
            # Bounded memory under a flood of sources: forget the oldest one tracked.
            self._seen.pop(next(iter(self._seen)))
        times = self._seen.setdefault(source, deque())
        times.append(self._clock())
        return len(self._recent(source))
