"""The parity matrix: each operation both doors have, done through one and observed through the
other, gives the same answer — bytes, ETag, size, headers, metadata, listing order, common
prefixes and error codes; and for versioned buckets version ids, version listing order, delete
markers, retention and legal holds."""

from __future__ import annotations

import asyncio
import datetime
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from botocore.exceptions import ClientError

from lightningstor import errors
from lightningstor.client import Client, retention_of
from lightningstor.model import Retention
from lightningstor.v1 import storage_pb2 as pb
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


# --- versions and object lock ------------------------------------------------------------------
VERSION_KEYS = ["v/a", "v/a", "v/b", "w"]  # v/a twice: two versions of one key
Version = tuple[str, str, bool, bool, str, int]  # key, version id, latest, marker, etag, size


def s3_versions(s3: Any, bucket: str, **kwargs: Any) -> tuple[list[Version], list[str]]:
    """Every version in listing order. One entry per page: boto3 parses a page's versions and
    delete markers into two lists, losing how they interleave."""
    found: list[Version] = []
    prefixes: list[str] = []
    for page in s3.get_paginator("list_object_versions").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 1}, **kwargs
    ):
        entries = [(v, False) for v in page.get("Versions", [])]
        entries += [(m, True) for m in page.get("DeleteMarkers", [])]
        assert len(entries) + len(page.get("CommonPrefixes", [])) <= 1
        for entry, marker in entries:
            found.append(
                (
                    entry["Key"],
                    entry["VersionId"],
                    entry["IsLatest"],
                    marker,
                    "" if marker else entry["ETag"].strip('"'),
                    0 if marker else entry["Size"],
                )
            )
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return found, prefixes


async def grpc_versions(
    ls: Client, bucket: str, *, prefix: str = "", delimiter: str = ""
) -> tuple[list[Version], list[str]]:
    found: list[Version] = []
    prefixes: list[str] = []
    async for item in ls.list_object_versions(
        bucket, prefix=prefix, delimiter=delimiter, page_size=2
    ):
        if isinstance(item, str):
            prefixes.append(item)
        else:
            found.append(
                (
                    item.key,
                    item.version_id,
                    item.is_latest,
                    item.delete_marker,
                    item.etag,
                    item.size,
                )
            )
    return found, prefixes


def s3_lock(s3: Any, bucket: str, key: str, version_id: str) -> tuple[str, int, bool]:
    """(mode, retain-until in unix ns, legal hold) as S3's HeadObject says."""
    head = s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)
    assert head["VersionId"] == version_id
    until = head.get("ObjectLockRetainUntilDate")
    return (
        head.get("ObjectLockMode", ""),
        0 if until is None else int(until.timestamp()) * 10**9,
        head.get("ObjectLockLegalHoldStatus") == "ON",
    )


async def grpc_lock(ls: Client, bucket: str, key: str, version_id: str) -> tuple[str, int, bool]:
    head = await ls.head_object(bucket, key, version_id=version_id)
    assert head.version_id == version_id
    retention = retention_of(head)
    if retention is None:
        return "", 0, head.legal_hold
    return retention.mode, retention.until_ns, head.legal_hold


def whole_seconds_from_now(days: int) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(
        days=days
    )


@pytest.fixture(scope="module")
def versioned_by_s3(daemon: Daemon, s3: Any) -> list[tuple[str, str]]:
    """Bucket "by-s3", with object lock: versions, a delete marker and locks, all through S3;
    (key, version id) of each write in order."""
    s3.create_bucket(Bucket="by-s3", ObjectLockEnabledForBucket=True)
    written: list[tuple[str, str]] = []
    for n, key in enumerate(VERSION_KEYS):
        put = s3.put_object(Bucket="by-s3", Key=key, Body=f"{key}-{n}".encode())
        written.append((key, put["VersionId"]))
    s3.delete_object(Bucket="by-s3", Key="v/b")
    until = whole_seconds_from_now(3)
    s3.put_object_retention(
        Bucket="by-s3",
        Key="v/a",
        VersionId=written[0][1],
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until},
    )
    s3.put_object_legal_hold(
        Bucket="by-s3", Key="w", VersionId=written[3][1], LegalHold={"Status": "ON"}
    )
    locked = s3.put_object(
        Bucket="by-s3",
        Key="w",
        Body=b"locked",
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=until,
        ObjectLockLegalHoldStatus="ON",
    )
    written.append(("w", locked["VersionId"]))
    return written


@pytest.fixture(scope="module")
def versioned_by_grpc(daemon: Daemon) -> list[tuple[str, str]]:
    """The same history as ``versioned_by_s3``, in bucket "by-grpc", all through gRPC."""

    async def write(ls: Client) -> list[tuple[str, str]]:
        await ls.create_bucket("by-grpc", object_lock_enabled=True)
        written: list[tuple[str, str]] = []
        for n, key in enumerate(VERSION_KEYS):
            put = await ls.put_object("by-grpc", key, f"{key}-{n}".encode())
            written.append((key, put.version_id))
        await ls.delete("by-grpc", "v/b")
        until_ns = int(whole_seconds_from_now(3).timestamp()) * 10**9
        await ls.set_object_retention(
            "by-grpc",
            "v/a",
            Retention(mode="GOVERNANCE", until_ns=until_ns),
            version_id=written[0][1],
        )
        await ls.set_object_legal_hold("by-grpc", "w", True, version_id=written[3][1])
        locked = await ls.put_object(
            "by-grpc",
            "w",
            b"locked",
            retention=Retention(mode="COMPLIANCE", until_ns=until_ns),
            legal_hold=True,
        )
        written.append(("w", locked.version_id))
        return written

    return grpc(daemon, write)


@pytest.mark.parametrize("bucket", ["by-s3", "by-grpc"])
@pytest.mark.parametrize(
    "options", [{}, {"Prefix": "v/"}, {"Delimiter": "/"}, {"Prefix": "v/", "Delimiter": "/"}]
)
def test_version_listings_agree(
    daemon: Daemon,
    s3: Any,
    versioned_by_s3: list[tuple[str, str]],
    versioned_by_grpc: list[tuple[str, str]],
    bucket: str,
    options: dict[str, str],
) -> None:
    expected = s3_versions(s3, bucket, **options)
    got = grpc(
        daemon,
        lambda ls: grpc_versions(
            ls, bucket, prefix=options.get("Prefix", ""), delimiter=options.get("Delimiter", "")
        ),
    )
    assert got == expected
    if not options:
        written = versioned_by_s3 if bucket == "by-s3" else versioned_by_grpc
        # Keys in order, each newest first; the delete marker is v/b's latest version.
        assert [(v[0], v[1]) for v in got[0] if not v[3]] == sorted(
            written, key=lambda w: (w[0], -written.index(w))
        )
        assert [(v[0], v[2]) for v in got[0] if v[3]] == [("v/b", True)]


@pytest.mark.parametrize("bucket", ["by-s3", "by-grpc"])
def test_versions_and_their_locks_read_alike(
    daemon: Daemon,
    s3: Any,
    versioned_by_s3: list[tuple[str, str]],
    versioned_by_grpc: list[tuple[str, str]],
    bucket: str,
) -> None:
    written = versioned_by_s3 if bucket == "by-s3" else versioned_by_grpc
    locks = [s3_lock(s3, bucket, key, version) for key, version in written]
    bodies = [
        s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
        for key, version in written
    ]

    async def read(ls: Client) -> tuple[list[tuple[str, int, bool]], list[bytes]]:
        return (
            [await grpc_lock(ls, bucket, key, version) for key, version in written],
            [await ls.get_object(bucket, key, version_id=version) for key, version in written],
        )

    assert grpc(daemon, read) == (locks, bodies)
    assert locks[0][0] == "GOVERNANCE" and locks[3] == ("", 0, True)
    assert locks[4][0] == "COMPLIANCE" and locks[4][2]
    assert locks[0][1] == locks[4][1] > 0


@pytest.mark.parametrize("bucket", ["by-s3", "by-grpc"])
def test_bucket_versioning_and_lock_configuration_agree(
    daemon: Daemon,
    s3: Any,
    versioned_by_s3: list[tuple[str, str]],
    versioned_by_grpc: list[tuple[str, str]],
    bucket: str,
) -> None:
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock == {"ObjectLockEnabled": "Enabled"}
    got = grpc(daemon, lambda ls: ls.get_bucket(bucket))
    assert got.versioning == pb.VERSIONING_STATUS_ENABLED
    assert got.HasField("object_lock") and not got.object_lock.HasField("default_retention")


def test_a_default_retention_set_through_one_door_is_read_through_the_other(
    daemon: Daemon, s3: Any
) -> None:
    s3.create_bucket(Bucket="defaults")
    s3.put_bucket_versioning(Bucket="defaults", VersioningConfiguration={"Status": "Enabled"})
    grpc(daemon, lambda ls: ls.set_object_lock_configuration("defaults", mode="GOVERNANCE", days=4))
    lock = s3.get_object_lock_configuration(Bucket="defaults")["ObjectLockConfiguration"]
    assert lock["Rule"] == {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 4}}
    s3.put_object_lock_configuration(
        Bucket="defaults",
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 1}},
        },
    )
    default = grpc(daemon, lambda ls: ls.get_bucket("defaults")).object_lock.default_retention
    assert (default.mode, default.days, default.years) == (pb.RETENTION_MODE_COMPLIANCE, 0, 1)


def _delete_compliance_via_s3(s3: Any, written: list[tuple[str, str]]) -> Any:
    key, version = written[4]
    return s3.delete_object(
        Bucket="by-s3", Key=key, VersionId=version, BypassGovernanceRetention=True
    )


VERSION_ERROR_CASES: list[
    tuple[str, Callable[[Any, list[tuple[str, str]]], Any], Callable[..., Awaitable[Any]]]
] = [
    (
        "NoSuchVersion",
        lambda s3, _w: s3.get_object(Bucket="by-s3", Key="w", VersionId="0" * 32),
        lambda ls, _w: ls.head_object("by-grpc", "w", version_id="0" * 32),
    ),
    (
        "InvalidArgument",
        lambda s3, _w: s3.get_object(Bucket="by-s3", Key="w", VersionId="not-a-version"),
        lambda ls, _w: ls.get_object("by-grpc", "w", version_id="not-a-version"),
    ),
    (
        "InvalidBucketState",
        lambda s3, _w: s3.put_bucket_versioning(
            Bucket="by-s3", VersioningConfiguration={"Status": "Suspended"}
        ),
        lambda ls, _w: ls.set_bucket_versioning("by-grpc", enabled=False),
    ),
    (
        "AccessDenied",
        _delete_compliance_via_s3,
        lambda ls, w: ls.delete_object(
            "by-grpc", w[4][0], version_id=w[4][1], bypass_governance_retention=True
        ),
    ),
    (
        "InvalidRequest",
        lambda s3, _w: s3.put_object_legal_hold(Bucket=BUCKET, Key="a", LegalHold={"Status": "ON"}),
        lambda ls, _w: ls.set_object_legal_hold(BUCKET, "a", True),
    ),
]


@pytest.mark.parametrize(
    ("code", "via_s3", "via_grpc"), VERSION_ERROR_CASES, ids=[c[0] for c in VERSION_ERROR_CASES]
)
def test_version_error_codes_agree(
    daemon: Daemon,
    s3: Any,
    filled: None,
    versioned_by_s3: list[tuple[str, str]],
    versioned_by_grpc: list[tuple[str, str]],
    code: str,
    via_s3: Callable[[Any, list[tuple[str, str]]], Any],
    via_grpc: Callable[..., Awaitable[Any]],
) -> None:
    before = (s3_versions(s3, "by-s3"), s3_versions(s3, "by-grpc"))
    with pytest.raises(ClientError) as s3_error:
        via_s3(s3, versioned_by_s3)
    assert s3_error.value.response["Error"]["Code"] == code
    with pytest.raises(errors.StorageError) as grpc_error:
        grpc(daemon, lambda ls: via_grpc(ls, versioned_by_grpc))
    assert grpc_error.value.code == code
    assert (s3_versions(s3, "by-s3"), s3_versions(s3, "by-grpc")) == before


def test_a_delete_marker_version_is_refused_alike(
    daemon: Daemon,
    s3: Any,
    versioned_by_s3: list[tuple[str, str]],
    versioned_by_grpc: list[tuple[str, str]],
) -> None:
    markers = {
        bucket: next(v[1] for v in s3_versions(s3, bucket)[0] if v[3])
        for bucket in ("by-s3", "by-grpc")
    }
    for bucket, marker in markers.items():
        with pytest.raises(ClientError) as s3_error:
            s3.get_object(Bucket=bucket, Key="v/b", VersionId=marker)
        assert s3_error.value.response["Error"]["Code"] == "MethodNotAllowed"
        assert (
            s3_error.value.response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-delete-marker")
            == "true"
        )
        with pytest.raises(errors.IsDeleteMarker) as grpc_error:
            grpc(daemon, functools.partial(_read_version, bucket=bucket, version_id=marker))
        assert grpc_error.value.version_id == marker
        with pytest.raises(errors.NoSuchKey) as hidden:
            grpc(daemon, functools.partial(_read_version, bucket=bucket, version_id=""))
        assert hidden.value.delete_marker == marker


async def _read_version(ls: Client, *, bucket: str, version_id: str) -> bytes:
    return await ls.get_object(bucket, "v/b", version_id=version_id)
