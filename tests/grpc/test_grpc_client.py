"""lightningstor.client against a real server: round trips, paging and error translation."""

from __future__ import annotations

import ast
import asyncio
import hashlib
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

import lightningstor.client
from lightningstor import errors
from lightningstor.client import Client, SyncClient, retention_of
from lightningstor.model import Retention, derived_canonical_id
from lightningstor.v1 import storage_pb2 as pb
from tests.grpc.harness import KEY_ID, SECRET, GrpcEnv, MiB, _serve, grpc_test

BUCKET = "bkt"


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        await asyncio.sleep(0)
        yield data[start : start + size]


@grpc_test
async def test_buckets(env: GrpcEnv) -> None:
    async with env.client() as client:
        created = await client.create_bucket(BUCKET)
        assert created.owner == derived_canonical_id(KEY_ID)
        assert await client.get_bucket(BUCKET) == created
        assert [b.name for b in await client.list_buckets()] == [BUCKET]
        with pytest.raises(errors.BucketAlreadyOwnedByYou):
            await client.create_bucket(BUCKET)
        await client.delete_bucket(BUCKET)
        with pytest.raises(errors.NoSuchBucket) as caught:
            await client.get_bucket(BUCKET)
        assert caught.value.message == errors.NoSuchBucket.default_message


@grpc_test
async def test_large_round_trip_from_a_stream(env: GrpcEnv) -> None:
    payload = hashlib.sha256(b"seed").digest() * (5 * MiB // 32)
    async with env.client() as client:
        await client.create_bucket(BUCKET)
        # 3 MiB pieces: the client re-cuts them to the 2 MiB the server accepts.
        written = await client.put_object(
            BUCKET,
            "big",
            pieces(payload, 3 * MiB),
            content_type="application/x-big",
            metadata={"origin": "test"},
        )
        assert written.size == len(payload)
        assert written.etag == hashlib.md5(payload).hexdigest()
        assert await client.get_object(BUCKET, "big") == payload
        head = await client.head_object(BUCKET, "big")
        assert head.headers.content_type == "application/x-big"
        assert dict(head.metadata) == {"origin": "test"}
        assert head.etag == written.etag
        tail = b"".join([c async for c in client.iter_object(BUCKET, "big", suffix_length=10)])
        assert tail == payload[-10:]
        middle = await client.get_object(BUCKET, "big", offset=MiB, limit=3 * MiB)
        assert middle == payload[MiB : 4 * MiB]


@grpc_test
async def test_bytes_with_checksum_and_conditions(env: GrpcEnv) -> None:
    async with env.client() as client:
        await client.create_bucket(BUCKET)
        sha = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="  # sha256 of b"test", base64
        written = await client.put_object(BUCKET, "k", b"test", checksums={"sha256": sha})
        assert written.checksums["sha256"] == sha
        with pytest.raises(errors.BadDigest):
            await client.put_object(BUCKET, "k", b"tesT", checksums={"sha256": sha})
        with pytest.raises(errors.PreconditionFailed):
            await client.put_object(BUCKET, "k", b"new", if_none_match="*")
        assert await client.get_object(BUCKET, "k") == b"test"
        assert await client.delete_object(BUCKET, "k")
        assert not await client.delete_object(BUCKET, "k")


@grpc_test
async def test_errors_become_core_exceptions(env: GrpcEnv) -> None:
    async with env.client() as client:
        await client.create_bucket(BUCKET)
        await client.put_object(BUCKET, "k", b"0123456789")
        with pytest.raises(errors.NoSuchKey):
            await client.head_object(BUCKET, "absent")
        with pytest.raises(errors.NoSuchKey):
            await client.get_object(BUCKET, "absent")
        with pytest.raises(errors.InvalidRange) as caught:
            await client.get_object(BUCKET, "k", offset=10)
        assert caught.value.size == 10
        with pytest.raises(errors.InvalidBucketName):
            await client.create_bucket("Not A Bucket")
    async with Client(env.target, access_key_id=KEY_ID, secret_access_key="x" * 20) as bad:
        with pytest.raises(errors.SignatureDoesNotMatch):
            await bad.list_buckets()


@grpc_test
async def test_transport_failures_stay_grpc_errors(env: GrpcEnv) -> None:
    async with Client(
        "127.0.0.1:1", access_key_id=KEY_ID, secret_access_key="x" * 20, timeout_seconds=2
    ) as nowhere:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await nowhere.list_buckets()
    assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


@grpc_test
async def test_failing_data_source_stores_nothing(env: GrpcEnv) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"a" * MiB
        raise OSError("disk on fire")

    async with env.client() as client:
        await client.create_bucket(BUCKET)
        with pytest.raises(OSError, match="disk on fire"):
            await client.put_object(BUCKET, "k", broken())
        with pytest.raises(errors.NoSuchKey):
            await client.head_object(BUCKET, "k")
    for _ in range(100):  # the server learns of the cancellation a moment later
        if not env.staged_files():
            break
        await asyncio.sleep(0.02)
    assert env.staged_files() == []


@grpc_test
async def test_early_error_stops_the_upload(env: GrpcEnv) -> None:
    """A write to a missing bucket fails at once, before the client has sent its data."""
    async with env.client() as client:
        with pytest.raises(errors.NoSuchBucket):
            await client.put_object("absent", "k", pieces(b"x" * 8 * MiB, MiB))


@grpc_test
async def test_list_objects_pages_in_key_order(env: GrpcEnv) -> None:
    keys = [f"d{i // 10}/k{i % 10}" for i in range(30)] + ["top1", "top2"]
    async with env.client() as client:
        await client.create_bucket(BUCKET)
        for key in keys:
            await client.put_object(BUCKET, key, key.encode())
        listed = [item async for item in client.list_objects(BUCKET, page_size=7)]
        assert [item.key for item in listed if isinstance(item, pb.Object)] == sorted(keys)
        assert len(listed) == len(keys)
        grouped = [item async for item in client.list_objects(BUCKET, delimiter="/", page_size=2)]
        assert grouped[:3] == ["d0/", "d1/", "d2/"]
        assert [i.key for i in grouped[3:] if isinstance(i, pb.Object)] == ["top1", "top2"]
        under = [
            item async for item in client.list_objects(BUCKET, prefix="d1/", start_after="d1/k7")
        ]
        assert [i.key for i in under if isinstance(i, pb.Object)] == ["d1/k8", "d1/k9"]


@grpc_test
async def test_abandoned_read_is_cancelled(env: GrpcEnv) -> None:
    async with env.client() as client:
        await client.create_bucket(BUCKET)
        await client.put_object(BUCKET, "k", b"y" * (6 * MiB))
        chunks = client.iter_object(BUCKET, "k")
        first = await anext(chunks)
        assert first
        await chunks.aclose()  # stops the call; the server closes the blob
        assert await client.get_object(BUCKET, "k", limit=1) == b"y"


def test_client_imports_no_server_or_http_code() -> None:
    """The client ships with the core to internal services: grpc and stubs only."""
    source = Path(lightningstor.client.__file__).read_text()
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not {m for m in imported if m.split(".")[0] in ("aiohttp", "lightningstor_server")}


def test_sync_client_without_an_event_loop(tmp_path: Path) -> None:
    """The sync wrapper against a live server whose loop runs in another thread."""
    started = threading.Event()
    stop = threading.Event()
    target: list[str] = []

    async def serve() -> None:
        async def scenario(env: GrpcEnv) -> None:
            target.append(env.target)
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.02)

        await _serve(tmp_path, scenario, {})

    server = threading.Thread(target=lambda: asyncio.run(serve()))
    server.start()
    assert started.wait(30)
    try:
        with SyncClient(target[0], access_key_id=KEY_ID, secret_access_key=SECRET) as ls:
            ls.create_bucket("sync")
            ls.put_object("sync", "a/b", b"synchronous")
            assert ls.get_object("sync", "a/b") == b"synchronous"
            assert [o.key for o in ls.list_objects("sync")] == ["a/b"]
    finally:
        stop.set()
        server.join(30)


@grpc_test
async def test_versions_and_locks_through_the_client(env: GrpcEnv) -> None:
    day_ns = 86_400 * 10**9
    async with env.client() as client:
        bucket = await client.create_bucket("locked", object_lock_enabled=True)
        assert bucket.versioning == pb.VERSIONING_STATUS_ENABLED
        with pytest.raises(errors.InvalidBucketState):
            await client.set_bucket_versioning("locked", enabled=False)
        configured = await client.set_object_lock_configuration("locked", mode="GOVERNANCE", days=1)
        assert configured.object_lock.default_retention.days == 1

        until = time.time_ns() + 2 * day_ns
        held = Retention(mode="COMPLIANCE", until_ns=until)
        first = await client.put_object("locked", "k", b"one", retention=held, legal_hold=True)
        assert retention_of(first) == held and first.legal_hold
        second = await client.put_object("locked", "k", b"two")
        assert retention_of(second) is not None  # the bucket's default
        assert await client.get_object("locked", "k", version_id=first.version_id) == b"one"
        head = await client.head_object("locked", "k", version_id=first.version_id)
        assert head.version_id == first.version_id

        marker = await client.delete("locked", "k")
        assert marker.delete_marker and marker.existed
        with pytest.raises(errors.NoSuchKey) as hidden:
            await client.head_object("locked", "k")
        assert hidden.value.delete_marker == marker.version_id
        with pytest.raises(errors.IsDeleteMarker) as refused:
            await client.get_object("locked", "k", version_id=marker.version_id)
        assert refused.value.version_id == marker.version_id
        with pytest.raises(errors.NoSuchVersion):
            await client.head_object("locked", "k", version_id="0" * 32)
        with pytest.raises(errors.InvalidArgument):
            await client.head_object("locked", "k", version_id="bad")

        listed = [item async for item in client.list_object_versions("locked", page_size=1)]
        assert [(v.version_id, v.is_latest, v.delete_marker) for v in listed] == [  # type: ignore[union-attr]
            (marker.version_id, True, True),
            (second.version_id, False, False),
            (first.version_id, False, False),
        ]

        # COMPLIANCE holds even for an admin bypassing; GOVERNANCE gives way to one.
        lifted = await client.set_object_legal_hold(
            "locked", "k", False, version_id=first.version_id
        )
        assert not lifted.legal_hold
        with pytest.raises(errors.AccessDenied):
            await client.delete_object(
                "locked", "k", version_id=first.version_id, bypass_governance_retention=True
            )
        longer = Retention(mode="COMPLIANCE", until_ns=until + day_ns)
        changed = await client.set_object_retention(
            "locked", "k", longer, version_id=first.version_id
        )
        assert retention_of(changed) == longer
        assert await client.delete_object(
            "locked", "k", version_id=second.version_id, bypass_governance_retention=True
        )
        copied = await client.copy_object(
            ("locked", "k"), ("locked", "copy"), source_version_id=first.version_id
        )
        assert await client.get_object("locked", "copy") == b"one"
        assert copied.version_id != first.version_id
        with pytest.raises(ValueError, match="GOVERNANCE or COMPLIANCE"):
            await client.put_object("locked", "k", b"x", retention=Retention(mode="x", until_ns=1))
