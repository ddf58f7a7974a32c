"""The gRPC door as generic tools and load balancers see it: reflection, health, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from lightningstor import errors
from lightningstor.client import Client, call_metadata
from lightningstor.v1 import storage_pb2 as pb
from lightningstor.v1 import storage_pb2_grpc as pb_grpc
from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon

OBJECTS = "/lightningstor.v1.ObjectService/"


def test_reflection_lists_and_describes_the_api_without_credentials(daemon: Daemon) -> None:
    with grpc.insecure_channel(daemon.grpc_target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {
            "lightningstor.v1.BucketService",
            "lightningstor.v1.ObjectService",
            "lightningstor.v1.MultipartService",
            "grpc.health.v1.Health",
        } <= services
        described = database.FindFileContainingSymbol("lightningstor.v1.ObjectService")
        assert any("ReadObject" in [m.name for m in s.method] for s in described.service)


def test_health_turns_not_serving_on_sigterm(fresh_daemon: Daemon) -> None:
    fresh_daemon.start()
    seen: list[int] = []
    ready = threading.Event()

    def watch() -> None:
        with grpc.insecure_channel(fresh_daemon.grpc_target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            stream: Iterator[health_pb2.HealthCheckResponse] = stub.Watch(
                health_pb2.HealthCheckRequest(service="lightningstor.v1.ObjectService")
            )
            try:
                for update in stream:
                    seen.append(update.status)
                    ready.set()
            except grpc.RpcError:
                pass  # the server went away after saying goodbye

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert ready.wait(10)
    assert fresh_daemon.proc is not None
    fresh_daemon.proc.send_signal(signal.SIGTERM)
    watcher.join(30)
    assert fresh_daemon.proc.wait(timeout=30) == 0
    fresh_daemon.proc = None
    assert seen[0] == health_pb2.HealthCheckResponse.SERVING
    assert health_pb2.HealthCheckResponse.NOT_SERVING in seen[1:]


def _open_blob_fds(daemon: Daemon) -> list[str]:
    assert daemon.proc is not None
    fd_dir = Path(f"/proc/{daemon.proc.pid}/fd")
    targets = []
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            targets.append(os.readlink(fd))
    return [t for t in targets if "/blobs/" in t or ("/tmp/" in t and t.endswith(".part"))]


def test_cancelled_calls_leave_nothing_behind(daemon: Daemon) -> None:
    async def scenario() -> None:
        async with Client(
            daemon.grpc_target, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
        ) as ls:
            await ls.create_bucket("cancelled")
            await ls.put_object("cancelled", "big", os.urandom(16 * 1024 * 1024))
            channel = grpc.aio.insecure_channel(daemon.grpc_target)
            objects = pb_grpc.ObjectServiceStub(channel)  # type: ignore[no-untyped-call]
            # An upload cancelled mid-stream: no object, no staged file.
            write = objects.WriteObject(
                metadata=call_metadata(ACCESS_KEY, SECRET_KEY, OBJECTS + "WriteObject")
            )
            await write.write(
                pb.WriteObjectRequest(
                    spec=pb.WriteSpec(bucket="cancelled", key="half"), write_offset=0
                )
            )
            await write.initial_metadata()
            await write.write(pb.WriteObjectRequest(data=b"x" * 1024 * 1024, write_offset=0))
            write.cancel()
            # A download cancelled after its first chunk stops reading the blob.
            read = objects.ReadObject(
                pb.ReadObjectRequest(bucket="cancelled", key="big"),
                metadata=call_metadata(ACCESS_KEY, SECRET_KEY, OBJECTS + "ReadObject"),
            )
            await read.read()
            await read.read()
            read.cancel()
            await channel.close(None)
            for _ in range(100):
                if not _open_blob_fds(daemon) and not list((daemon.data_dir / "tmp").iterdir()):
                    break
                await asyncio.sleep(0.05)
            assert _open_blob_fds(daemon) == []
            assert list((daemon.data_dir / "tmp").iterdir()) == []
            with pytest.raises(errors.NoSuchKey):
                await ls.head_object("cancelled", "half")

    asyncio.run(scenario())


def test_open_streams_cannot_crowd_out_authenticated_calls(tmp_path: Path) -> None:
    """More health Watch and reflection streams than grpc_max_concurrent_calls: the ones
    past grpc_max_open_calls are refused at once, and signed calls keep being served."""
    daemon = Daemon(
        tmp_path / "data",
        extra_env={
            "LIGHTNINGSTOR_GRPC_MAX_CONCURRENT_CALLS": "40",
            "LIGHTNINGSTOR_GRPC_MAX_OPEN_CALLS": "8",
        },
    ).start()

    async def scenario() -> None:
        async with grpc.aio.insecure_channel(daemon.grpc_target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            watches = [health.Watch(health_pb2.HealthCheckRequest()) for _ in range(60)]
            firsts = await asyncio.gather(*(w.read() for w in watches), return_exceptions=True)
            served = [f for f in firsts if isinstance(f, health_pb2.HealthCheckResponse)]
            refused = [f for f in firsts if isinstance(f, grpc.aio.AioRpcError)]
            assert len(served) == 8 and len(refused) == 52, firsts
            assert {r.code() for r in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
            # Probes still answer, and so do signed calls, many at once.
            check = await health.Check(health_pb2.HealthCheckRequest())
            assert check.status == health_pb2.HealthCheckResponse.SERVING
            async with Client(
                daemon.grpc_target, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
            ) as ls:
                await ls.create_bucket("crowded")
                listed = await asyncio.gather(*(ls.list_buckets() for _ in range(20)))
                assert all([b.name for b in page] == ["crowded"] for page in listed)
            # Reflection streams count against the same quota ...
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            listing = reflection_pb2.ServerReflectionRequest(list_services="")
            crowded = reflection.ServerReflectionInfo()
            # The server refuses the call as it opens, before any request: nothing is written
            # (a write racing the refusal can lose its status to grpc.aio's "Internal error
            # from Core", grpc/grpc#36066, as CI saw once under load).
            with pytest.raises(grpc.aio.AioRpcError):
                await crowded.read()
            assert await crowded.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            for watch in watches:
                watch.cancel()
            # ... and are served again once the server has seen the watchers go (each try
            # that comes too early is refused at once, so this waits on that, not on time).
            for _ in range(500):
                freed = reflection.ServerReflectionInfo()
                try:
                    await freed.write(listing)
                    answer = await freed.read()
                    break
                except grpc.aio.AioRpcError:
                    assert await freed.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    await asyncio.sleep(0.01)
            else:
                raise AssertionError("the cancelled watchers kept their slots")
            assert any(
                s.name == "lightningstor.v1.ObjectService"
                for s in answer.list_services_response.service
            )
            await freed.done_writing()

    try:
        asyncio.run(scenario())
    finally:
        assert daemon.stop() == 0
