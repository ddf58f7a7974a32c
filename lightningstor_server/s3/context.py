"""What every S3 handler receives: the parsed request, who signed it and the store."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDictProxy, MultiDictProxy

from lightningstor.auth.access import Access, authorize
from lightningstor.objects.multipart import MultipartUploads
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from lightningstor_server.s3.params import Params
from lightningstor_server.s3.router import Endpoint
from lightningstor_server.s3.sigv4 import AuthResult
from lightningstor_server.s3.target import RequestTarget


@dataclass(frozen=True, slots=True, kw_only=True)
class Gateway:
    """Settings and shared objects of the S3 door."""

    store: ObjectStore
    multipart: MultipartUploads
    # The door's own use of the thread pool (hashing and decoding bodies), not the store's.
    io: Offloader
    region: str
    virtual_host_domains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class S3Call:
    request: web.Request
    target: RequestTarget  # the one parse of the target: read parameters here, not in request
    # The request's headers with those its query carries (presigned URLs): read them here.
    headers: CIMultiDictProxy[str]
    endpoint: Endpoint
    auth: AuthResult
    gateway: Gateway
    request_id: str

    @property
    def query(self) -> MultiDictProxy[str]:
        return self.target.query

    @property
    def params(self) -> Params:
        """The operation's parameters, parsed by the router."""
        return self.endpoint.params

    @property
    def store(self) -> ObjectStore:
        return self.gateway.store

    @property
    def caller(self) -> str:
        return self.auth.credential.access_key_id

    def may_read(self, bucket: str) -> None:
        """Raise AccessDenied unless the caller may read ``bucket`` (a copy's source)."""
        credential = self.auth.credential
        authorize(
            admin=credential.admin, grants=credential.grants, bucket=bucket, access=Access.READ
        )


def may_bypass_governance(call: S3Call) -> bool:
    """Whether the request asks to bypass GOVERNANCE retention and its caller may: admin keys
    only (a bucket grant is not the s3:BypassGovernanceRetention permission). Asked by
    anyone else, the lock simply holds."""
    asked = call.headers.get("x-amz-bypass-governance-retention", "").lower() == "true"
    return asked and call.auth.credential.admin
