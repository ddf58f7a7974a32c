"""Calls the versioning and object-lock tests share: signed stub calls as any key, and writes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from lightningstor.client import call_metadata
from lightningstor.v1 import storage_pb2 as pb
from lightningstor.v1 import storage_pb2_grpc as pb_grpc
from tests.grpc.harness import BUCKETS, KEY_ID, OBJECTS, SECRET, GrpcEnv

MULTIPART = "/lightningstor.v1.MultipartService/"
# A limited key: it may read and write bucket "locked" and "plain", and is no admin.
WRITER = "LSWRITERKEY000000001"


@dataclass(slots=True)
class Calls:
    """Unawaited stub calls signed with one key (await them, or hand them to expect_status)."""

    env: GrpcEnv
    key_id: str = KEY_ID

    def _signed(self, method: str) -> list[tuple[str, str]]:
        return call_metadata(self.key_id, SECRET, method)

    def bucket(self, method: str, request: Any) -> Any:
        return getattr(self.env.buckets, method)(request, metadata=self._signed(BUCKETS + method))

    def object(self, method: str, request: Any) -> Any:
        return getattr(self.env.objects, method)(request, metadata=self._signed(OBJECTS + method))

    def multipart(self, method: str, request: Any) -> Any:
        stub: Any = pb_grpc.MultipartServiceStub(self.env.channel)  # type: ignore[no-untyped-call]
        return getattr(stub, method)(request, metadata=self._signed(MULTIPART + method))

    def write(self, bucket: str, key: str, data: bytes, **spec: Any) -> Any:
        """A WriteObject call of ``data`` in one message; ``spec`` adds WriteSpec fields."""

        async def messages() -> AsyncIterator[pb.WriteObjectRequest]:
            yield pb.WriteObjectRequest(spec=pb.WriteSpec(bucket=bucket, key=key, **spec))
            yield pb.WriteObjectRequest(data=data, write_offset=0)
            yield pb.WriteObjectRequest(write_offset=len(data), finish_write=True)

        return self.env.objects.WriteObject(
            messages(), metadata=self._signed(OBJECTS + "WriteObject")
        )

    async def put(self, bucket: str, key: str, data: bytes, **spec: Any) -> pb.Object:
        reply: pb.WriteObjectResponse = await self.write(bucket, key, data, **spec)
        return reply.object

    async def read(self, bucket: str, key: str, version_id: str = "") -> bytes:
        request = pb.ReadObjectRequest(bucket=bucket, key=key, version_id=version_id)
        return b"".join([m.data async for m in self.object("ReadObject", request)])

    async def versions(self, bucket: str, **fields: Any) -> list[tuple[str, str, bool, bool]]:
        """(key, version id, is latest, delete marker) of every version, one page."""
        request = pb.ListObjectVersionsRequest(bucket=bucket, **fields)
        page = await self.object("ListObjectVersions", request)
        return [(v.key, v.version_id, v.is_latest, v.delete_marker) for v in page.versions]


async def writer_key(env: GrpcEnv) -> Calls:
    """Calls as WRITER, a non-admin key granted readwrite on "locked" and "plain"."""
    await env.credentials.create(
        access_key_id=WRITER,
        secret_access_key=SECRET,
        name="writer",
        admin=False,
        grants={"locked": "readwrite", "plain": "readwrite"},
    )
    return Calls(env, WRITER)
