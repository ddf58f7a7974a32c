"""systemd's service notification protocol (sd_notify), spoken directly.

With ``Type=notify`` systemd waits for ``READY=1`` before it considers the service started,
expects ``STOPPING=1`` when it shuts down, and, with ``WatchdogSec=``, ``WATCHDOG=1`` at least
every ``WATCHDOG_USEC`` microseconds. The protocol is one datagram per message to the
AF_UNIX socket named by ``NOTIFY_SOCKET`` (a leading "@" names the abstract namespace); it is
small enough that a dependency would weigh more than it, and the one library for it is
unmaintained. Without ``NOTIFY_SOCKET`` (not under systemd) every call does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping

log = logging.getLogger("lightningstor.notify")


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = environ.get("WATCHDOG_USEC", "")
        # Ping at half the interval, as sd_watchdog_enabled(3) recommends.
        self.watchdog_seconds = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 else None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, message: str) -> None:
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                # Never wait on systemd from the event loop: a full queue is a lost message.
                sock.setblocking(False)
                sock.connect(self._address)
                sock.sendall(message.encode())
        except OSError as exc:  # systemd gone or socket misconfigured: never fatal to serving
            log.warning("could not notify systemd (%s): %s", message.split("=", maxsplit=1)[0], exc)

    def ready(self, status: str) -> None:
        self.send(f"READY=1\nSTATUS={status}")

    def stopping(self, *, within_seconds: float) -> None:
        """Shutting down, for up to ``within_seconds`` from now: systemd's stop timeout is
        extended to that (EXTEND_TIMEOUT_USEC), so a drain is never killed half way."""
        usec = int(within_seconds * 1e6)
        self.send(f"STOPPING=1\nEXTEND_TIMEOUT_USEC={usec}\nSTATUS=shutting down")

    async def watchdog(self, healthy: Callable[[], Awaitable[bool]]) -> None:
        """Ping the watchdog forever (cancel to stop), but only while ``healthy()`` says the
        daemon can still do its work (a loop that answers over a stuck pool serves nothing,
        and systemd should restart it); returns at once when no watchdog is set."""
        if self.watchdog_seconds is None:
            return
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                if await healthy():
                    self.send("WATCHDOG=1")
                else:
                    log.error("the I/O pool does not answer: not pinging systemd's watchdog")
                await asyncio.sleep(self.watchdog_seconds)
