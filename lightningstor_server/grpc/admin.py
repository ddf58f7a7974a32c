"""AdminService: access keys and their grants, buckets' policies and owners. Admin keys only
(``access.py``); every call is audited."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from lightningstor.auth.access import check_policy
from lightningstor.auth.credentials import (
    Credential,
    CredentialStore,
    new_access_key_id,
    new_secret_access_key,
)
from lightningstor.auth.identities import Identities
from lightningstor.errors import (
    InvalidAccessKeyId,
    InvalidArgument,
    NoSuchConfiguration,
    StorageError,
)
from lightningstor.objects.gatekeeper import Gatekeeper
from lightningstor.v1 import admin_pb2 as pb
from lightningstor.v1 import admin_pb2_grpc as pb_grpc
from lightningstor.v1 import storage_pb2
from lightningstor_server.grpc.auth import caller_key_id
from lightningstor_server.grpc.messages import render_bucket
from lightningstor_server.grpc.wrapping import Context
from lightningstor_server.logs import log_fields

audit = logging.getLogger("lightningstor.audit")


def render_key(credential: Credential) -> pb.AccessKey:
    return pb.AccessKey(
        access_key_id=credential.access_key_id,
        name=credential.name,
        created_unix_nanos=credential.created_ns,
        active=credential.active,
        admin=credential.admin,
        grants=dict(credential.grants),
        canonical_id=credential.owner.id,
    )


def _with_secret(credential: Credential) -> pb.AccessKeyWithSecret:
    return pb.AccessKeyWithSecret(
        key=render_key(credential), secret_access_key=credential.secret_access_key
    )


@contextmanager
def _audited(action: str, subject: str = "-", detail: str = "") -> Iterator[None]:
    """Record what an admin did and how it ended (key ids only, never secrets). That the
    caller is an admin was checked before the servicer ran (``access.py``)."""
    outcome = "ok"
    try:
        yield
    except StorageError as error:
        outcome = error.code
        raise
    except BaseException:
        outcome = "InternalError"
        raise
    finally:
        fields = {"action": action, "subject": subject, "by": caller_key_id(), "outcome": outcome}
        if detail:
            fields["detail"] = detail
        log_fields(audit, logging.INFO, fields)


class AdminServicer(pb_grpc.AdminServiceServicer):
    def __init__(self, *, credentials: CredentialStore, gatekeeper: Gatekeeper) -> None:
        self._credentials = credentials
        self._identities = Identities(credentials)
        self._gatekeeper = gatekeeper
        self._store = gatekeeper.store

    async def CreateAccessKey(
        self, request: pb.CreateAccessKeyRequest, context: Context
    ) -> pb.AccessKeyWithSecret:
        access_key_id = new_access_key_id()
        with _audited(
            "create-key",
            access_key_id,
            f"name={request.name!r} admin={request.admin} grants={dict(request.grants)}",
        ):
            created = await self._credentials.create(
                access_key_id=access_key_id,
                secret_access_key=new_secret_access_key(),
                name=request.name,
                admin=request.admin,
                grants=dict(request.grants),
                canonical_id=request.canonical_id,
            )
            return _with_secret(created)

    async def ListAccessKeys(
        self, request: pb.ListAccessKeysRequest, context: Context
    ) -> pb.ListAccessKeysResponse:
        with _audited("list-keys"):
            return pb.ListAccessKeysResponse(
                keys=[render_key(c) for c in await self._credentials.list()]
            )

    async def _get(self, access_key_id: str) -> Credential:
        credential = await self._credentials.lookup(access_key_id)
        if credential is None:
            # About the key named in the request, not the caller's (AWS's default wording).
            raise InvalidAccessKeyId(
                f"No access key {access_key_id} exists on this server.", resource=access_key_id
            )
        return credential

    async def GetAccessKey(self, request: pb.GetAccessKeyRequest, context: Context) -> pb.AccessKey:
        with _audited("show-key", request.access_key_id):
            return render_key(await self._get(request.access_key_id))

    async def GetAccessKeySecret(
        self, request: pb.GetAccessKeyRequest, context: Context
    ) -> pb.AccessKeyWithSecret:
        with _audited("reveal-secret", request.access_key_id):
            return _with_secret(await self._get(request.access_key_id))

    async def SetAccessKeyActive(
        self, request: pb.SetAccessKeyActiveRequest, context: Context
    ) -> pb.AccessKey:
        with _audited("enable-key" if request.active else "disable-key", request.access_key_id):
            return render_key(
                await self._credentials.update(request.access_key_id, active=request.active)
            )

    async def SetAccessKeyGrants(
        self, request: pb.SetAccessKeyGrantsRequest, context: Context
    ) -> pb.AccessKey:
        with _audited("grant", request.access_key_id, f"grants={dict(request.grants)}"):
            updated = await self._credentials.update(
                request.access_key_id, grants=dict(request.grants)
            )
            return render_key(updated)

    async def DeleteAccessKey(
        self, request: pb.DeleteAccessKeyRequest, context: Context
    ) -> pb.DeleteAccessKeyResponse:
        with _audited("delete-key", request.access_key_id):
            await self._credentials.delete(request.access_key_id)
            return pb.DeleteAccessKeyResponse()

        # --- buckets' policies and owners -------------------------------------------------------

    async def SetBucketPolicy(
        self, request: pb.SetBucketPolicyRequest, context: Context
    ) -> pb.BucketPolicy:
        with _audited("set-policy", request.bucket, f"bytes={len(request.policy)}"):
            bucket = await self._gatekeeper.bucket(request.bucket)
            await check_policy(
                request.policy,
                bucket,
                self._gatekeeper.settings,
                principal_exists=self._identities.principal_exists,
            )
            await self._store.set_bucket_policy(bucket.name, request.policy)
            return pb.BucketPolicy(bucket=bucket.name, policy=request.policy)

    async def GetBucketPolicy(
        self, request: pb.GetBucketPolicyRequest, context: Context
    ) -> pb.BucketPolicy:
        with _audited("show-policy", request.bucket):
            bucket = await self._store.head_bucket(request.bucket)
            if not bucket.policy:
                raise NoSuchConfiguration.of("policy", bucket.name)
            return pb.BucketPolicy(bucket=bucket.name, policy=bucket.policy)

    async def DeleteBucketPolicy(
        self, request: pb.DeleteBucketPolicyRequest, context: Context
    ) -> pb.DeleteBucketPolicyResponse:
        with _audited("delete-policy", request.bucket):
            await self._store.set_bucket_policy(request.bucket, "")
            return pb.DeleteBucketPolicyResponse()

    async def SetBucketOwner(
        self, request: pb.SetBucketOwnerRequest, context: Context
    ) -> storage_pb2.Bucket:
        with _audited("set-owner", request.bucket, f"owner={request.canonical_id}"):
            owner = await self._identities.owner(request.canonical_id)
            if owner is None:
                raise InvalidArgument(
                    "No key has that canonical id.", resource=request.canonical_id
                )
            return render_bucket(await self._store.set_bucket_owner(request.bucket, owner))
