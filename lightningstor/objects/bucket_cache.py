"""Bucket records as authorization reads them, cached: every request is authorized against its
bucket's owner, policy, ACL and public access block, and a pool trip per request for a record
that changes rarely showed in small-op profiles.

The store is the only writer of bucket records while the daemon runs (LevelDB admits one
process), and it tells this cache of each change once committed (``changed``); a read that
raced a change does not cache what it read. A bucket being deleted is cached as it is (not as
absent), so a delete that fails and restores the bucket never lets a request through unchecked.
"""

from __future__ import annotations

from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import OrderedKV
from lightningstor.meta.records import decode_bucket
from lightningstor.model import BucketInfo
from lightningstor.offload import Offloader

_CACHED_BUCKETS = 4096  # more than this and the cache starts over (absent names count too)


class BucketCache:
    def __init__(self, kv: OrderedKV, io: Offloader) -> None:
        self._kv = kv
        self._io = io
        self._cache: dict[str, BucketInfo | None] = {}
        self._changes = 0

    async def get(self, name: str) -> BucketInfo | None:
        """The bucket's record (whatever its state), or None if there is none."""
        if name in self._cache:
            return self._cache[name]
        changes = self._changes
        raw = await self._io.run(self._kv.get, ks.bucket_key(name))
        info = None if raw is None else decode_bucket(name, raw).info
        if changes == self._changes:
            if len(self._cache) >= _CACHED_BUCKETS:
                self._cache.clear()
            self._cache[name] = info
        return info

    def changed(self, name: str) -> None:
        self._changes += 1
        self._cache.pop(name, None)
