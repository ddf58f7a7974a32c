"""The servicers' translation, called directly with a fake context.

grpcio-testing (``grpc_testing.server_from_dictionary``) drives only synchronous servicers: it
calls each behaviour on a thread and treats the coroutine or async generator an aio servicer
returns as the response. So these tests call the aio servicers themselves, with a stand-in for
``grpc.aio.ServicerContext`` that records what the servicer asked of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from lightningstor import errors
from lightningstor.model import Owner, RangeRequest, derived_canonical_id
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from lightningstor.v1 import storage_pb2 as pb
from lightningstor_server.grpc.auth import Caller, act_as
from lightningstor_server.grpc.buckets import BucketServicer
from lightningstor_server.grpc.errors import translating_errors
from lightningstor_server.grpc.messages import parse_range
from lightningstor_server.grpc.objects import ObjectServicer


class FakeContext:
    """Just enough of grpc.aio.ServicerContext for the servicers and the error translator."""

    def __init__(self) -> None:
        self.initial_metadata: Any = None
        self.aborted: tuple[grpc.StatusCode, str, dict[str, str]] | None = None

    def set_trailing_metadata(self, metadata: Any) -> None:
        self.trailing_metadata = metadata

    async def send_initial_metadata(self, metadata: Any) -> None:
        self.initial_metadata = metadata

    async def abort(self, code: grpc.StatusCode, details: str, trailing_metadata: Any = ()) -> None:
        self.aborted = (code, details, dict(trailing_metadata))
        raise grpc.aio.AbortError()

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"


def with_store(tmp_path: Path, scenario: Callable[[ObjectStore], Awaitable[None]]) -> None:
    async def main() -> None:
        offloader = Offloader(workers=2)
        store = ObjectStore.open(tmp_path / "data", offloader=offloader)
        try:
            await scenario(store)
        finally:
            store.close()
            offloader.shutdown()

    asyncio.run(main())


ADMIN = Caller(access_key_id="LSUNITADMIN000000000", admin=True)


async def messages(*items: pb.WriteObjectRequest) -> AsyncIterator[pb.WriteObjectRequest]:
    for item in items:
        yield item


def test_create_bucket_is_owned_by_the_caller(tmp_path: Path) -> None:
    async def scenario(store: ObjectStore) -> None:
        servicer = BucketServicer(store=store)
        context: Any = FakeContext()
        with pytest.raises(errors.AccessDenied):  # no verified caller: fail closed
            await servicer.CreateBucket(pb.CreateBucketRequest(name="bkt"), context)
        act_as(
            Caller(access_key_id="LSOWNER0000000000000", admin=False, grants={"bkt": "readwrite"})
        )
        bucket = await servicer.CreateBucket(pb.CreateBucketRequest(name="bkt"), context)
        owner = derived_canonical_id("LSOWNER0000000000000")
        assert (bucket.name, bucket.owner) == ("bkt", owner)
        assert (await store.head_bucket("bkt")).owner.id == owner

    with_store(tmp_path, scenario)


def test_write_then_read_translate_to_and_from_the_core(tmp_path: Path) -> None:
    async def scenario(store: ObjectStore) -> None:
        act_as(ADMIN)
        await store.create_bucket("bkt", owner=Owner("o"))
        servicer = ObjectServicer(store=store)
        context: Any = FakeContext()
        spec = pb.WriteSpec(
            bucket="bkt",
            key="k",
            headers=pb.ContentHeaders(content_language="de"),
            metadata={"X-Y": "z"},
            size=6,
        )
        reply = await servicer.WriteObject(
            messages(
                pb.WriteObjectRequest(spec=spec),
                pb.WriteObjectRequest(data=b"abc", write_offset=0),
                pb.WriteObjectRequest(data=b"def", write_offset=3, finish_write=True),
            ),
            context,
        )
        assert context.initial_metadata == (("x-ls-write-accepted", "1"),)
        head = await store.head_object("bkt", "k")
        assert head.headers.content_type == "binary/octet-stream"
        assert head.headers.content_language == "de"
        assert dict(head.user_metadata) == {"x-y": "z"}
        assert reply.object.etag == head.etag
        assert reply.object.modified_unix_nanos == head.mtime_ns

        request = pb.ReadObjectRequest(bucket="bkt", key="k", read_offset=2, read_limit=3)
        replies = [r async for r in servicer.ReadObject(request, context)]
        assert replies[0].metadata == reply.object
        assert (replies[0].content_range.start, replies[0].content_range.end) == (2, 4)
        assert b"".join(r.data for r in replies) == b"cde"

    with_store(tmp_path, scenario)


def test_list_tokens_continue_where_the_page_ended(tmp_path: Path) -> None:
    async def scenario(store: ObjectStore) -> None:
        act_as(ADMIN)
        await store.create_bucket("bkt", owner=Owner("o"))
        for key in ("a", "b", "c"):
            await store.put_object("bkt", key, _body(b"x"))
        servicer = ObjectServicer(store=store)
        context: Any = FakeContext()
        page = await servicer.ListObjects(pb.ListObjectsRequest(bucket="bkt", page_size=2), context)
        assert [o.key for o in page.objects] == ["a", "b"]
        assert page.objects[0].bucket == "bkt"
        rest = await servicer.ListObjects(
            pb.ListObjectsRequest(bucket="bkt", page_token=page.next_page_token), context
        )
        assert [o.key for o in rest.objects] == ["c"]
        assert rest.next_page_token == ""

    with_store(tmp_path, scenario)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, None),
        ({"read_offset": 5}, RangeRequest(first=5)),
        ({"read_limit": 5}, RangeRequest(first=0, last=4)),
        ({"read_offset": 2, "read_limit": 1}, RangeRequest(first=2, last=2)),
        ({"suffix_length": 7}, RangeRequest(suffix=7)),
    ],
)
def test_parse_range(fields: dict[str, Any], expected: RangeRequest | None) -> None:
    assert parse_range(pb.ReadObjectRequest(**fields)) == expected


def test_translator_maps_core_errors() -> None:
    async def scenario() -> FakeContext:
        context = FakeContext()
        with pytest.raises(grpc.aio.AbortError):
            async with translating_errors(context):  # type: ignore[arg-type]
                raise errors.InvalidRange(size=42)
        return context

    context = asyncio.run(scenario())
    assert context.aborted is not None
    code, details, trailing = context.aborted
    assert code == grpc.StatusCode.OUT_OF_RANGE
    assert details == "InvalidRange: The requested range is not satisfiable"
    assert trailing["x-ls-error-code"] == "InvalidRange"
    assert trailing["x-ls-object-size"] == "42"


def test_translator_lets_aborts_and_cancellation_through() -> None:
    async def scenario(error: BaseException) -> FakeContext:
        context = FakeContext()
        with pytest.raises(type(error)):
            async with translating_errors(context):  # type: ignore[arg-type]
                raise error
        return context

    assert asyncio.run(scenario(grpc.aio.AbortError())).aborted is None
    assert asyncio.run(scenario(asyncio.CancelledError())).aborted is None


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data
