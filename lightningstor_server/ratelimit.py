"""Slows down guessing: failed authentications are counted per (source address, key id).

One policy for every way in (S3 headers, presigned URLs, POST forms, gRPC tokens):

- A request whose signature is valid is never refused, whatever failed before it from the
  same address: the limiter only decides how a *failed* authentication is answered.
- Failures are counted per source address and claimed key id, so someone guessing at one key,
  or sending made-up key ids, slows down only themselves. Every unknown key id from an
  address shares one count, so a stream of invented ids is throttled like one guesser.
- Past the budget, a failure is answered with SlowDown instead of its own error until the
  window has moved on. The answer is the same whatever the failure was, so it reveals nothing
  about keys; it tells well-behaved clients to back off.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable

from lightningstor.errors import AuthError, InvalidAccessKeyId, SlowDown, StorageError
from lightningstor_server.metrics import METRICS

log = logging.getLogger("lightningstor.auth")

FAILURES_PER_WINDOW = 20
WINDOW_SECONDS = 60.0
MAX_TRACKED_SOURCES = 10_000
# The count every unknown key id of one address shares.
UNKNOWN_KEY = "<unknown>"
# What a key id can look like; anything else an attacker claims is logged and counted as "".
_KEY_ID = re.compile(r"[A-Za-z0-9]{1,128}")


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
        self._seen: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, who: tuple[str, str]) -> deque[float]:
        times = self._seen.get(who)
        if times is None:
            return deque()
        cutoff = self._clock() - self._window
        while times and times[0] < cutoff:
            times.popleft()
        if not times:
            del self._seen[who]
        return times

    def failed(self, source: str, key_id: str) -> int:
        """Record a failure; returns the failures of (``source``, ``key_id``) in the window."""
        who = (source, key_id)
        if who not in self._seen and len(self._seen) >= MAX_TRACKED_SOURCES:
            # Bounded memory under a flood of sources: forget the oldest one tracked.
            self._seen.pop(next(iter(self._seen)))
        times = self._seen.setdefault(who, deque())
        times.append(self._clock())
        return len(self._recent(who))

    def refuse(self, error: AuthError, *, door: str, source: str, key_id: str) -> StorageError:
        """Count ``error`` (a failed authentication claiming ``key_id``, from ``source``), log it
        and return what to answer: ``error`` itself, or SlowDown once the pair is over budget."""
        key_id = key_id if _KEY_ID.fullmatch(key_id) else ""
        counted = UNKNOWN_KEY if isinstance(error, InvalidAccessKeyId) else key_id
        count = self.failed(source, counted)
        METRICS.auth_failures.labels(door).inc()
        # The key id is public; signatures and secrets never reach a log.
        log.warning(
            "authentication failed: door=%s peer=%s key_id=%s code=%s recent_failures=%d",
            door,
            source,
            key_id or "-",
            error.code,
            count,
        )
        if self._failures and count > self._failures:
            return SlowDown(f"Too many failed authentications from {source}; retry later.")
        return error
