"""A small async client of the AdminService (access keys and grants), used by the
``lightningstor admin`` command and available to operators' own tooling."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

from lightningstor.client import ChannelOwner, translate_error
from lightningstor.v1 import admin_pb2 as pb
from lightningstor.v1 import admin_pb2_grpc as pb_grpc
from lightningstor.v1 import storage_pb2

ADMIN_SERVICE = f"/{pb.DESCRIPTOR.package}.AdminService/"


class AdminClient(ChannelOwner):
    def __init__(
        self,
        target: str,
        *,
        access_key_id: str,
        secret_access_key: str,
        channel_credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        super().__init__(
            target,
            channel_credentials,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
        )
        self._stub: Any = pb_grpc.AdminServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def _call(self, method: str, request: Any) -> Any:
        try:
            return await getattr(self._stub, method)(
                request, metadata=self._signed(ADMIN_SERVICE + method)
            )
        except grpc.aio.AioRpcError as error:
            raise translate_error(error) from error

    async def create(
        self,
        name: str,
        *,
        admin: bool = False,
        grants: Mapping[str, str] | None = None,
        canonical_id: str = "",
    ) -> pb.AccessKeyWithSecret:
        request = pb.CreateAccessKeyRequest(
            name=name, admin=admin, grants=dict(grants or {}), canonical_id=canonical_id
        )
        reply: pb.AccessKeyWithSecret = await self._call("CreateAccessKey", request)
        return reply

    async def list(self) -> list[pb.AccessKey]:
        reply: pb.ListAccessKeysResponse = await self._call(
            "ListAccessKeys", pb.ListAccessKeysRequest()
        )
        return list(reply.keys)

    async def show(self, access_key_id: str) -> pb.AccessKey:
        reply: pb.AccessKey = await self._call(
            "GetAccessKey", pb.GetAccessKeyRequest(access_key_id=access_key_id)
        )
        return reply

    async def secret(self, access_key_id: str) -> pb.AccessKeyWithSecret:
        request = pb.GetAccessKeyRequest(access_key_id=access_key_id)
        reply: pb.AccessKeyWithSecret = await self._call("GetAccessKeySecret", request)
        return reply

    async def set_active(self, access_key_id: str, active: bool) -> pb.AccessKey:
        request = pb.SetAccessKeyActiveRequest(access_key_id=access_key_id, active=active)
        reply: pb.AccessKey = await self._call("SetAccessKeyActive", request)
        return reply

    async def grant(self, access_key_id: str, grants: Mapping[str, str]) -> pb.AccessKey:
        request = pb.SetAccessKeyGrantsRequest(access_key_id=access_key_id, grants=dict(grants))
        reply: pb.AccessKey = await self._call("SetAccessKeyGrants", request)
        return reply

    async def delete(self, access_key_id: str) -> None:
        await self._call("DeleteAccessKey", pb.DeleteAccessKeyRequest(access_key_id=access_key_id))

    async def set_policy(self, bucket: str, policy: str) -> None:
        """Replace ``bucket``'s policy (MalformedPolicy leaves the old one in place)."""
        await self._call("SetBucketPolicy", pb.SetBucketPolicyRequest(bucket=bucket, policy=policy))

    async def get_policy(self, bucket: str) -> str:
        reply: pb.BucketPolicy = await self._call(
            "GetBucketPolicy", pb.GetBucketPolicyRequest(bucket=bucket)
        )
        return reply.policy

    async def delete_policy(self, bucket: str) -> None:
        await self._call("DeleteBucketPolicy", pb.DeleteBucketPolicyRequest(bucket=bucket))

    async def set_owner(self, bucket: str, canonical_id: str) -> storage_pb2.Bucket:
        request = pb.SetBucketOwnerRequest(bucket=bucket, canonical_id=canonical_id)
        reply: storage_pb2.Bucket = await self._call("SetBucketOwner", request)
        return reply
