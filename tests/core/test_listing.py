"""Listing reads past each common prefix with one seek instead of reading every key under it."""

from __future__ import annotations

import base64

import pytest

from lightningstor import errors
from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import Batch, OrderedKV
from lightningstor.meta.memory import MemoryKV
from lightningstor.meta.records import encode_object
from lightningstor.model import ContentHeaders, ObjectHead, Segment
from lightningstor.objects.listing import PageTokens, list_page


class CountingKV:
    """Counts the rows an engine hands out."""

    def __init__(self, inner: OrderedKV) -> None:
        self.inner = inner
        self.rows = 0

    def get(self, key: bytes) -> bytes | None:
        return self.inner.get(key)

    def scan(
        self, start: bytes, stop: bytes, *, limit: int, keys_only: bool = False
    ) -> list[tuple[bytes, bytes]]:
        rows = self.inner.scan(start, stop, limit=limit, keys_only=keys_only)
        self.rows += len(rows)
        return rows

    def commit(self, batch: Batch) -> None:
        self.inner.commit(batch)

    def close(self) -> None:
        self.inner.close()


def _filled(folders: int, per_folder: int) -> CountingKV:
    kv = MemoryKV()
    batch = Batch()
    for f in range(folders):
        for i in range(per_folder):
            key = f"f{f:03d}/k{i:04d}"
            head = ObjectHead(
                bucket="b",
                key=key,
                size=1,
                md5_hex="0" * 32,
                etag="0" * 32,
                mtime_ns=0,
                headers=ContentHeaders(),
                user_metadata={},
                checksums={},
                segments=(Segment(sha256_hex="0" * 64, size=1),),
            )
            batch.put(ks.object_key("b", key), encode_object(head))
    batch.put(ks.object_key("b", "top"), encode_object(head))
    kv.commit(batch)
    return CountingKV(kv)


def test_delimiter_listing_seeks_past_folders() -> None:
    kv = _filled(folders=200, per_folder=500)  # 100,000 keys
    page = list_page(kv, "b", prefix="", delimiter="/", after=None, max_keys=1000)
    assert page.common_prefixes == tuple(f"f{f:03d}/" for f in range(200))
    assert [e.key for e in page.entries] == ["top"]
    assert page.next_after is None
    # One small read per folder, never the 500 keys inside it.
    assert kv.rows < 200 * 10


def test_paging_continues_after_a_common_prefix() -> None:
    kv = _filled(folders=5, per_folder=3)
    seen: list[str] = []
    after = None
    while True:
        page = list_page(kv, "b", prefix="", delimiter="/", after=after, max_keys=2)
        seen += [*page.common_prefixes, *(e.key for e in page.entries)]
        if page.next_after is None:
            break
        after = TOKENS.decode(TOKENS.encode(page.next_after))
    assert seen == ["f000/", "f001/", "f002/", "f003/", "f004/", "top"]


def test_prefix_and_start_after_inside_a_folder() -> None:
    kv = _filled(folders=3, per_folder=3)
    inside = list_page(kv, "b", prefix="f001/", delimiter="/", after="f001/k0000", max_keys=10)
    assert [e.key for e in inside.entries] == ["f001/k0001", "f001/k0002"]
    # A marker inside a folder that rolls up skips the rest of that folder.
    rolled = list_page(kv, "b", prefix="", delimiter="/", after="f001/k0000", max_keys=10)
    assert rolled.common_prefixes == ("f002/",)


TOKENS = PageTokens(b"k" * 32)


def _forged() -> list[str]:
    genuine = TOKENS.encode("f001/")
    other_key = PageTokens(b"x" * 32).encode("f001/")
    tampered = base64.urlsafe_b64encode(base64.urlsafe_b64decode(genuine)[:-1] + b"0").decode()
    return ["", "!!!", "AAAA", "bm90IG91cnM=", "AQ", other_key, tampered]


@pytest.mark.parametrize("token", _forged())
def test_forged_tokens_are_refused(token: str) -> None:
    with pytest.raises(errors.InvalidArgument):
        TOKENS.decode(token)


def test_tokens_round_trip_any_key() -> None:
    for after in ("", "a b+c/ü", "k" * 1024, "\x01\x00"):
        assert TOKENS.decode(TOKENS.encode(after)) == after
