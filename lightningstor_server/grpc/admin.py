"""AdminService: access keys and their grants. Admin keys only (``access.py``); every call is
audited."""

from __future__ import annotations

import logging

from lightningstor.auth.credentials import (
    Credential,
    CredentialStore,
    new_access_key_id,
    new_secret_access_key,
)
from lightningstor.errors import InvalidAccessKeyId
from lightningstor.v1 import admin_pb2 as pb
from lightningstor.v1 import admin_pb2_grpc as pb_grpc
from lightningstor_server.grpc.auth import caller_key_id
from lightningstor_server.grpc.wrapping import Context

audit = logging.getLogger("lightningstor.audit")


def render_key(credential: Credential) -> pb.AccessKey:
    return pb.AccessKey(
        access_key_id=credential.access_key_id,
        name=credential.name,
        created_unix_nanos=credential.created_ns,
        active=credential.active,
        admin=credential.admin,
        grants=dict(credential.grants),
    )


def _with_secret(credential: Credential) -> pb.AccessKeyWithSecret:
    return pb.AccessKeyWithSecret(
        key=render_key(credential), secret_access_key=credential.secret_access_key
    )


def _admin(action: str, subject: str = "-", detail: str = "") -> None:
    """Record what an admin does (key ids only, never secrets). That the caller is an admin
    was checked before the servicer ran (``access.py``)."""
    audit.info("action=%s subject=%s by=%s %s", action, subject, caller_key_id(), detail)


class AdminServicer(pb_grpc.AdminServiceServicer):
    def __init__(self, *, credentials: CredentialStore) -> None:
        self._credentials = credentials

    async def CreateAccessKey(
        self, request: pb.CreateAccessKeyRequest, context: Context
    ) -> pb.AccessKeyWithSecret:
        access_key_id = new_access_key_id()
        _admin(
            "create-key",
            access_key_id,
            f"name={request.name!r} admin={request.admin} grants={dict(request.grants)}",
        )
        created = await self._credentials.create(
            access_key_id=access_key_id,
            secret_access_key=new_secret_access_key(),
            name=request.name,
            admin=request.admin,
            grants=dict(request.grants),
        )
        return _with_secret(created)

    async def ListAccessKeys(
        self, request: pb.ListAccessKeysRequest, context: Context
    ) -> pb.ListAccessKeysResponse:
        _admin("list-keys")
        return pb.ListAccessKeysResponse(
            keys=[render_key(c) for c in await self._credentials.list()]
        )

    async def _get(self, access_key_id: str) -> Credential:
        credential = await self._credentials.lookup(access_key_id)
        if credential is None:
            raise InvalidAccessKeyId(resource=access_key_id)
        return credential

    async def GetAccessKey(self, request: pb.GetAccessKeyRequest, context: Context) -> pb.AccessKey:
        _admin("show-key", request.access_key_id)
        return render_key(await self._get(request.access_key_id))

    async def GetAccessKeySecret(
        self, request: pb.GetAccessKeyRequest, context: Context
    ) -> pb.AccessKeyWithSecret:
        _admin("reveal-secret", request.access_key_id)
        return _with_secret(await self._get(request.access_key_id))

    async def SetAccessKeyActive(
        self, request: pb.SetAccessKeyActiveRequest, context: Context
    ) -> pb.AccessKey:
        _admin("enable-key" if request.active else "disable-key", request.access_key_id)
        return render_key(
            await self._credentials.update(request.access_key_id, active=request.active)
        )

    async def SetAccessKeyGrants(
        self, request: pb.SetAccessKeyGrantsRequest, context: Context
    ) -> pb.AccessKey:
        _admin("grant", request.access_key_id, f"grants={dict(request.grants)}")
        updated = await self._credentials.update(request.access_key_id, grants=dict(request.grants))
        return render_key(updated)

    async def DeleteAccessKey(
        self, request: pb.DeleteAccessKeyRequest, context: Context
    ) -> pb.DeleteAccessKeyResponse:
        _admin("delete-key", request.access_key_id)
        await self._credentials.delete(request.access_key_id)
        return pb.DeleteAccessKeyResponse()
