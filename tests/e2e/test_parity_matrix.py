"""The parity matrix: each operation both doors have, done through one and observed through the
other, gives the same answer — bytes, ETag, size, headers, metadata, listing order, common
prefixes and error codes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from botocore.exceptions import ClientError

from lightningstor import errors
from lightningstor.client import Client
from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon

T = TypeVar("T")
BUCKET = "matrix"
KEYS = ["a", "a/b", "a/b/c", "a+b", "a b", "ü/x", "z/1", "z/2", "z/3/deep", "~end", "%25"]
HEADERS = {
    "ContentType": "text/x-matrix",
    "ContentEncoding": "identity",
    "ContentDisposition": "inline",
    "ContentLanguage": "fr",
    "CacheControl": "max-age=1",
}


def grpc(daemon: Daemon, work: Callable[[Client], Awaitable[T]]) -> T:
    async def run() -> T:
        async with Client(
            daemon.grpc_target, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
        ) as ls:
            return await work(ls)

    return asyncio.run(run())


@pytest.fixture(scope="module")
def filled(daemon: Daemon, s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    for n, key in enumerate(KEYS):
        s3.put_object(
            Bucket=BUCKET, Key=key, Body=key.encode() * (n + 1), Metadata={"n": str(n)}, **HEADERS
        )


def s3_listing(s3: Any, **kwargs: Any) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    prefixes: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, PaginationConfig={"PageSize": 2}, **kwargs
    ):
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return keys, prefixes


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"Delimiter": "/"},
        {"Prefix": "a"},
        {"Prefix": "a/", "Delimiter": "/"},
        {"Prefix": "z/", "Delimiter": "/"},
        {"StartAfter": "a b"},
    ],
)
def test_listings_agree(daemon: Daemon, s3: Any, filled: None, options: dict[str, str]) -> None:
    keys, prefixes = s3_listing(s3, **options)

    async def listing(ls: Client) -> tuple[list[str], list[str]]:
        got: list[str] = []
        common: list[str] = []
        async for item in ls.list_objects(
            BUCKET,
            prefix=options.get("Prefix", ""),
            delimiter=options.get("Delimiter", ""),
            start_after=options.get("StartAfter", ""),
            page_size=2,
        ):
            (common if isinstance(item, str) else got).append(
                item if isinstance(item, str) else item.key
            )
        return got, common

    assert grpc(daemon, listing) == (keys, prefixes)


@pytest.mark.parametrize("key", KEYS)
def test_heads_and_bytes_agree(daemon: Daemon, s3: Any, filled: None, key: str) -> None:
    head = s3.head_object(Bucket=BUCKET, Key=key)
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    async def read(ls: Client) -> tuple[Any, bytes]:
        return await ls.head_object(BUCKET, key), await ls.get_object(BUCKET, key)

    meta, data = grpc(daemon, read)
    assert data == body
    assert (f'"{meta.etag}"', meta.size) == (head["ETag"], head["ContentLength"])
    got_headers = meta.headers
    assert (
        got_headers.content_type,
        got_headers.content_encoding,
        got_headers.content_disposition,
        got_headers.content_language,
        got_headers.cache_control,
    ) == (
        head["ContentType"],
        head["ContentEncoding"],
        head["ContentDisposition"],
        head["ContentLanguage"],
        head["CacheControl"],
    )
    assert dict(meta.metadata) == head["Metadata"]


@pytest.mark.parametrize(
    ("byte_range", "offset", "limit", "suffix"),
    [("bytes=0-0", 0, 1, 0), ("bytes=2-", 2, 0, 0), ("bytes=-3", 0, 0, 3), ("bytes=1-4", 1, 4, 0)],
)
def test_ranges_agree(
    daemon: Daemon, s3: Any, filled: None, byte_range: str, offset: int, limit: int, suffix: int
) -> None:
    expected = s3.get_object(Bucket=BUCKET, Key="z/3/deep", Range=byte_range)["Body"].read()

    async def read(ls: Client) -> bytes:
        chunks = [
            c
            async for c in ls.iter_object(
                BUCKET, "z/3/deep", offset=offset, limit=limit, suffix_length=suffix
            )
        ]
        return b"".join(chunks)

    assert grpc(daemon, read) == expected


ERROR_CASES: list[tuple[str, Callable[[Any], Any], Callable[[Client], Awaitable[Any]]]] = [
    (
        "NoSuchBucket",
        lambda s3: s3.get_object(Bucket="no-such-matrix", Key="k"),
        lambda ls: ls.head_object("no-such-matrix", "k"),
    ),
    (
        "NoSuchKey",
        lambda s3: s3.get_object(Bucket=BUCKET, Key="nope"),
        lambda ls: ls.get_object(BUCKET, "nope"),
    ),
    (
        "InvalidRange",
        lambda s3: s3.get_object(Bucket=BUCKET, Key="a", Range="bytes=100-"),
        lambda ls: ls.get_object(BUCKET, "a", offset=100),
    ),
    (
        "BucketNotEmpty",
        lambda s3: s3.delete_bucket(Bucket=BUCKET),
        lambda ls: ls.delete_bucket(BUCKET),
    ),
    (
        "InvalidBucketName",
        lambda s3: s3.create_bucket(Bucket="Bad_Name"),
        lambda ls: ls.create_bucket("Bad_Name"),
    ),
    (
        "PreconditionFailed",
        lambda s3: s3.put_object(Bucket=BUCKET, Key="a", Body=b"x", IfNoneMatch="*"),
        lambda ls: ls.put_object(BUCKET, "a", b"x", if_none_match="*"),
    ),
    (
        "InvalidRequest",
        lambda s3: s3.copy_object(Bucket=BUCKET, Key="a", CopySource=f"{BUCKET}/a"),
        lambda ls: ls.copy_object((BUCKET, "a"), (BUCKET, "a")),
    ),
]


@pytest.mark.parametrize(
    ("code", "via_s3", "via_grpc"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES]
)
def test_error_codes_agree(
    daemon: Daemon,
    s3: Any,
    filled: None,
    code: str,
    via_s3: Callable[[Any], Any],
    via_grpc: Callable[[Client], Awaitable[Any]],
) -> None:
    with pytest.raises(ClientError) as s3_error:
        via_s3(s3)
    assert s3_error.value.response["Error"]["Code"] == code
    with pytest.raises(errors.StorageError) as grpc_error:
        grpc(daemon, via_grpc)
    assert grpc_error.value.code == code


def test_buckets_agree(daemon: Daemon, s3: Any, filled: None) -> None:
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]

    async def buckets(ls: Client) -> list[str]:
        return [b.name for b in await ls.list_buckets()]

    assert grpc(daemon, buckets) == names
