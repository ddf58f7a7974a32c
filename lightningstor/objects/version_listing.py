"""ListObjectVersions: the current versions (``o/``) and noncurrent ones (``v/``), merged.

Both ranges sort by key, and every key in ``v/`` also has its ``o/`` record (see versions.py),
so one walk over each range, in step, yields each key's current version and then its older
ones, newest first. A common prefix is emitted once and both walks seek past it. Runs on the
thread pool as one job.
"""

from __future__ import annotations

from collections.abc import Iterator

from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import OrderedKV, scan_all
from lightningstor.meta.records import decode_object
from lightningstor.model import ObjectHead, VersionEntry, VersionPage
from lightningstor.objects.listing import common_prefix, start_position
from lightningstor.objects.versions import noncurrent_now

_FIRST_SCAN = 64
_MAX_SCAN = 1000


class _Full(Exception):
    """The page holds max-keys entries and another one exists."""


def _rows(kv: OrderedKV, start: bytes, stop: bytes) -> Iterator[tuple[bytes, bytes]]:
    return scan_all(kv, start, stop, page=_FIRST_SCAN, most=_MAX_SCAN)


def _entry(head: ObjectHead, *, latest: bool) -> VersionEntry:
    return VersionEntry(
        key=head.key,
        version_id=head.version_id,
        latest=latest,
        delete_marker=head.delete_marker,
        size=head.size,
        etag=head.etag,
        mtime_ns=head.mtime_ns,
    )


class _Page:
    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.entries: list[VersionEntry] = []
        self.prefixes: list[str] = []
        self.last: tuple[str, str | None] | None = None

    def add(self, entry: VersionEntry) -> None:
        self._room()
        self.entries.append(entry)
        self.last = (entry.key, entry.version_id)

    def add_prefix(self, prefix: str) -> None:
        self._room()
        self.prefixes.append(prefix)
        self.last = (prefix, None)

    def _room(self) -> None:
        if len(self.entries) + len(self.prefixes) >= self.max_keys:
            raise _Full

    def result(self, *, truncated: bool) -> VersionPage:
        return VersionPage(
            entries=tuple(self.entries),
            common_prefixes=tuple(self.prefixes),
            next_after=self.last if truncated else None,
        )


def list_versions_page(
    kv: OrderedKV,
    bucket: str,
    *,
    prefix: str,
    delimiter: str,
    after: tuple[str, str | None] | None,
    max_keys: int,
) -> VersionPage:
    page = _Page(max_keys)
    try:
        after_key = None
        if after is not None:
            after_key, after_version = after
            if after_version is not None:
                _rest_of_key(kv, bucket, after_key, after_version, page)
        _walk(kv, bucket, page, prefix=prefix, delimiter=delimiter, after=after_key)
    except _Full:
        return page.result(truncated=True)
    return page.result(truncated=False)


def _rest_of_key(kv: OrderedKV, bucket: str, key: str, version_id: str, page: _Page) -> None:
    """The versions of ``key`` older than ``version_id`` (a page that ended inside the key)."""
    current_raw = kv.get(ks.object_key(bucket, key))
    if current_raw is None:
        return
    versions = ks.key_versions_prefix(bucket, key)
    start = None
    if decode_object(bucket, key, current_raw).version_id == version_id:
        start = versions
    else:
        found = noncurrent_now(kv, bucket, key, version_id)
        start = found[0] + b"\x00" if found else None
    if start is None:
        return
    for _raw_key, raw in _rows(kv, start, ks.prefix_end(versions)):
        page.add(_entry(decode_object(bucket, key, raw), latest=False))


def _walk(
    kv: OrderedKV, bucket: str, page: _Page, *, prefix: str, delimiter: str, after: str | None
) -> None:
    base, vbase = ks.object_prefix(bucket), ks.version_prefix(bucket)
    suffix = start_position(b"", prefix, delimiter, after)
    stop = ks.prefix_end(prefix.encode())
    while True:
        older = _rows(kv, vbase + suffix, vbase + stop)
        pending = next(older, None)
        jumped = False
        for raw_key, raw in _rows(kv, base + suffix, base + stop):
            key = ks.key_from_object_key(base, raw_key)
            common = common_prefix(key, prefix, delimiter)
            if common is not None:
                page.add_prefix(common)
                suffix = ks.prefix_end(common.encode())
                jumped = True
                break
            page.add(_entry(decode_object(bucket, key, raw), latest=True))
            while pending is not None:
                version_key, _sort = ks.split_version_key(vbase, pending[0])
                if version_key > key:
                    break
                if version_key == key:
                    page.add(_entry(decode_object(bucket, key, pending[1]), latest=False))
                pending = next(older, None)
        if not jumped:
            return
