"""Listing: one range scan over ``o/<bucket>\\0`` (current versions) with delimiter roll-up.

A common prefix is emitted once and then skipped by seeking past every key under it, so a
folder of a million keys costs one seek, not a million reads. Runs on the thread pool as one job.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from lightningstor.errors import InvalidArgument
from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import OrderedKV
from lightningstor.meta.records import decode_object, is_delete_marker
from lightningstor.model import ListEntry, ListPage

_FIRST_SCAN = 64
_MAX_SCAN = 1000
_AFTER_JUMP_SCAN = 8


def start_position(base: bytes, prefix: str, delimiter: str, after: str | None) -> bytes:
    """The first key the listing may return: past ``after``, and past its whole common prefix
    when ``after`` lies inside one (such a prefix sorts before ``after`` and is done)."""
    start = base + prefix.encode()
    if after is None:
        return start
    position = base + after.encode() + b"\x00"
    if delimiter and after.startswith(prefix):
        cut = after.find(delimiter, len(prefix))
        if cut >= 0:
            common = after[: cut + len(delimiter)]
            position = ks.prefix_end(base + common.encode())
    return max(start, position)


def list_page(
    kv: OrderedKV,
    bucket: str,
    *,
    prefix: str,
    delimiter: str,
    after: str | None,
    max_keys: int,
) -> ListPage:
    base = ks.object_prefix(bucket)
    start = start_position(base, prefix, delimiter, after)
    stop = ks.prefix_end(base + prefix.encode())
    entries: list[ListEntry] = []
    prefixes: list[str] = []
    last: str | None = None
    scan = _FIRST_SCAN
    while True:
        rows = kv.scan(start, stop, limit=scan)
        jumped = False
        for raw_key, raw in rows:
            if is_delete_marker(raw):
                continue  # the key's current version is a delete marker: it is not listed,
                # nor does it make a common prefix on its own
            key = ks.key_from_object_key(base, raw_key)
            common = common_prefix(key, prefix, delimiter)
            head = decode_object(bucket, key, raw) if common is None else None
            if len(entries) + len(prefixes) == max_keys:
                return ListPage(
                    entries=tuple(entries), common_prefixes=tuple(prefixes), next_after=last
                )
            if head is None:
                assert common is not None
                prefixes.append(common)
                last = common
                start = ks.prefix_end(base + common.encode())
                jumped = True
                break
            entries.append(
                ListEntry(key=key, size=head.size, etag=head.etag, mtime_ns=head.mtime_ns)
            )
            last = key
        if jumped:
            scan = _AFTER_JUMP_SCAN
            continue
        if len(rows) < scan:
            return ListPage(
                entries=tuple(entries), common_prefixes=tuple(prefixes), next_after=None
            )
        start = rows[-1][0] + b"\x00"
        scan = min(scan * 2, _MAX_SCAN)


def common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    cut = key.find(delimiter, len(prefix))
    return None if cut < 0 else key[: cut + len(delimiter)]


_TOKEN_VERSION = b"\x02"
_TOKEN_MAC_BYTES = 12


class PageTokens:
    """Opaque continuation tokens: a listing position sealed with an HMAC under a key the store
    keeps in its keyspace (so every daemon sharing the store accepts them). A token the store did
    not issue, or one altered in transit, is refused rather than silently listing from wherever
    it points."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, position: bytes) -> bytes:
        return hmac.new(self._key, position, hashlib.sha256).digest()[:_TOKEN_MAC_BYTES]

    def encode(self, after: str) -> str:
        position = after.encode()
        raw = _TOKEN_VERSION + self._mac(position) + position
        return base64.urlsafe_b64encode(raw).decode()

    def decode(self, token: str) -> str:
        """The position a token continues after; InvalidArgument for anything not ours."""
        try:
            raw = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True)
            header = len(_TOKEN_VERSION) + _TOKEN_MAC_BYTES
            if not raw.startswith(_TOKEN_VERSION) or len(raw) < header:
                raise ValueError(token)
            mac, position = raw[len(_TOKEN_VERSION) : header], raw[header:]
            if not hmac.compare_digest(mac, self._mac(position)):
                raise ValueError(token)
            return position.decode()
        except (ValueError, UnicodeError, binascii.Error):
            raise InvalidArgument(
                "The continuation token provided is incorrect", resource="continuation-token"
            ) from None
