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
from collections.abc import Mapping

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
                sock.connect(self._address)
                sock.sendall(message.encode())
        except OSError as exc:  # systemd gone or socket misconfigured: never fatal to serving
            log.warning("could not notify systemd (%s): %s", message.split("=", maxsplit=1)[0], exc)

    def ready(self, status: str) -> None:
        self.send(f"READY=1\nSTATUS={status}")

    def stopping(self) -> None:
        self.send("STOPPING=1\nSTATUS=shutting down")

    async def watchdog(self) -> None:
        """Ping the watchdog forever (cancel to stop); returns at once when none is set."""
        if self.watchdog_seconds is None:
            return
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                self.send("WATCHDOG=1")
                await asyncio.sleep(self.watchdog_seconds)
