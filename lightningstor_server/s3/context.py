"""What every S3 handler receives: the parsed request, who signed it and the store."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDictProxy, MultiDictProxy

from lightningstor.auth.access import ANONYMOUS_CALLER, AccessSettings, Caller
from lightningstor.auth.identities import Identities
from lightningstor.model import BucketInfo, Owner
from lightningstor.objects.gatekeeper import Gatekeeper
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
    gatekeeper: Gatekeeper
    # The users ACL grants and policies name (None: only the store's own, e.g. in tests that
    # build a gateway without keys: then no grant or principal names anyone).
    identities: Identities | None = None


# A GET whose body stopped after its headers were sent: the bytes that went out, and why it
# stopped (an error code, or none when the client closed the connection), for the access log.
STREAMED = web.RequestKey("ls.streamed", tuple)  # (status, bytes sent, code)


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
    def access(self) -> AccessSettings:
        return self.gateway.gatekeeper.settings

    @property
    def caller(self) -> Caller:
        return caller_of(self.auth)

    @property
    def owner(self) -> Owner | None:
        """The signing key's canonical user (None for an anonymous request)."""
        return self.caller.owner

    async def bucket(self) -> BucketInfo:
        """The request's bucket as authorization read it (cached); raises NoSuchBucket."""
        return await self.gateway.gatekeeper.bucket(self.endpoint.bucket)


def caller_of(auth: AuthResult) -> Caller:
    return ANONYMOUS_CALLER if auth.credential is None else auth.credential.caller


async def may_bypass_governance(call: S3Call, key: str) -> bool:
    """Whether the request asks to bypass GOVERNANCE retention and its caller may (it holds
    s3:BypassGovernanceRetention: see Gatekeeper). Asked by anyone else, the lock holds."""
    asked = call.headers.get("x-amz-bypass-governance-retention", "").lower() == "true"
    gatekeeper = call.gateway.gatekeeper
    return asked and await gatekeeper.may_bypass_governance(call.caller, call.endpoint.bucket, key)
