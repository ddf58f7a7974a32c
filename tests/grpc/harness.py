"""A real gRPC door on a loopback port over a real store in tmp_path, one per test.

pytest-asyncio is not a dependency, so :func:`grpc_test` turns ``async def test_x(env, ...)``
into a plain test that runs it under ``asyncio.run`` against a freshly started server. The
server, the channel and the client all live on that one loop, as grpc.aio requires.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from lightningstor.auth.credentials import CredentialStore
from lightningstor.client import Client, call_metadata
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from lightningstor.v1 import storage_pb2_grpc as pb_grpc
from lightningstor_server.grpc.server import start_grpc_door

KEY_ID = "LSGRPCTESTKEY00000001"
SECRET = "grpc-test-secret-0123456789"
MASTER_KEY = b"k" * 32
MiB = 1024 * 1024

BUCKETS = "/lightningstor.v1.BucketService/"
OBJECTS = "/lightningstor.v1.ObjectService/"


@dataclass(slots=True, kw_only=True)
class GrpcEnv:
    store: ObjectStore
    credentials: CredentialStore
    data_dir: Path
    target: str
    channel: grpc.aio.Channel
    buckets: Any  # BucketServiceStub: the generated stubs carry no types
    objects: Any  # ObjectServiceStub

    def signed(self, method: str) -> list[tuple[str, str]]:
        """Metadata that signs one call of ``method`` with the test key."""
        return call_metadata(KEY_ID, SECRET, method)

    def client(self) -> Client:
        return Client(self.target, access_key_id=KEY_ID, secret_access_key=SECRET)

    def staged_files(self) -> list[Path]:
        return sorted((self.data_dir / "tmp").iterdir())


Scenario = Callable[..., Awaitable[None]]


def grpc_test(scenario: Scenario) -> Callable[..., None]:
    """A pytest test that runs ``scenario(env, **params)`` against a live server.

    Parameters after ``env`` stay visible to pytest, so ``parametrize`` works as usual.
    """
    params = list(inspect.signature(scenario).parameters.values())[1:]

    def test(tmp_path: Path, **kwargs: Any) -> None:
        asyncio.run(_serve(tmp_path, scenario, kwargs))

    tmp = inspect.Parameter("tmp_path", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    test.__signature__ = inspect.Signature([tmp, *params])  # type: ignore[attr-defined]
    test.__name__ = scenario.__name__
    test.__qualname__ = scenario.__qualname__
    test.__doc__ = scenario.__doc__
    test.__module__ = scenario.__module__
    test.__dict__.update(scenario.__dict__)  # marks applied below this decorator (parametrize)
    return test


async def _serve(tmp_path: Path, scenario: Scenario, kwargs: dict[str, Any]) -> None:
    offloader = Offloader(workers=4)
    data_dir = tmp_path / "data"
    store = ObjectStore.open(data_dir, offloader=offloader)
    try:
        credentials = store.credential_store(MASTER_KEY)
        await credentials.create(
            access_key_id=KEY_ID, secret_access_key=SECRET, name="grpc-tests", admin=True
        )
        door = await start_grpc_door(store=store, credentials=credentials, listen="127.0.0.1:0")
        server, port = door.server, door.port
        try:
            target = f"127.0.0.1:{port}"
            async with grpc.aio.insecure_channel(target) as channel:
                env = GrpcEnv(
                    store=store,
                    credentials=credentials,
                    data_dir=data_dir,
                    target=target,
                    channel=channel,
                    buckets=pb_grpc.BucketServiceStub(channel),  # type: ignore[no-untyped-call]
                    objects=pb_grpc.ObjectServiceStub(channel),  # type: ignore[no-untyped-call]
                )
                await scenario(env, **kwargs)
        finally:
            await server.stop(None)
    finally:
        store.close()
        offloader.shutdown()


async def expect_status(
    call: Awaitable[Any], status: grpc.StatusCode, error_code: str
) -> grpc.aio.AioRpcError:
    """Await a call that must fail with ``status`` and S3 code ``error_code``."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    assert error.code() == status, error.details()
    assert trailers(error).get("x-ls-error-code") == error_code, error.details()
    assert (error.details() or "").startswith(f"{error_code}: ")
    return error


def trailers(error: grpc.aio.AioRpcError) -> dict[str, str]:
    pairs: Any = error.trailing_metadata() or ()
    return {str(key): str(value) for key, value in pairs}
