"""The S3 door: one way through, as aiohttp middlewares (outermost first), then the handler.

    request id   names the request (x-amz-request-id on every answer)
    access log   one log line and one metric per answer, exactly as it was sent
    drain        refuses new requests while the daemon shuts down
    errors       turns any exception into S3's XML error (an unexpected one is logged and
                 answered as InternalError, never as aiohttp's bare 500)
    preflight    parses the target once (a target that is not a valid URI is refused first),
                 authenticates over that parse, routes to a typed Endpoint, authorizes it and
                 checks an upload's declared size; only then invites the body (100-continue)
    dispatch     the operation's handler, given an S3Call

The access log sits outside the drain and the error mapping so that it sees every answer,
the drain's refusals too. Authentication comes before routing, so a badly signed request
learns nothing but 403 (not which sub-resources exist); an unsigned one is anonymous. With
``Expect: 100-continue`` the client is told to send its body only once the preflight passed:
a bad signature or a malformed request is answered without reading the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from lightningstor.auth.access import AccessSettings
from lightningstor.auth.identities import Identities
from lightningstor.errors import (
    AccessDenied,
    AuthError,
    EntityTooLarge,
    InternalError,
    InvalidRequest,
    ServiceUnavailable,
    StorageError,
)
from lightningstor.objects.gatekeeper import Gatekeeper
from lightningstor.objects.limits import MAX_PUT_BYTES
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from lightningstor_server.logs import log_fields
from lightningstor_server.metrics import METRICS, observe_request
from lightningstor_server.ratelimit import FailedAuthLimiter
from lightningstor_server.s3 import (
    acl,
    attributes,
    bucket,
    configuration,
    copy,
    delete,
    lifecycle,
    listing,
    multipart,
    object,
    policies,
    tagging,
    versioning,
)
from lightningstor_server.s3.authentication import (
    anonymous,
    authenticate,
    claimed_key_id,
    claims_a_signature,
)
from lightningstor_server.s3.authorization import authorize
from lightningstor_server.s3.context import STREAMED, Gateway, S3Call, caller_of
from lightningstor_server.s3.error_reply import error_response
from lightningstor_server.s3.errors import CorsNotEnabled, PreflightWithoutOrigin
from lightningstor_server.s3.post import handle_post_object
from lightningstor_server.s3.presign import query_headers
from lightningstor_server.s3.router import Endpoint, route
from lightningstor_server.s3.sigv4 import AuthResult, SecretLookup, SignedRequest
from lightningstor_server.s3.target import RequestTarget, bucket_from_host, parse_target

log = logging.getLogger("lightningstor.s3")

Handler = Callable[[S3Call], Awaitable[web.StreamResponse]]
_Next = Callable[[web.Request], Awaitable[web.StreamResponse]]

_UPLOADS = frozenset({"PutObject", "UploadPart"})
# Request ids: 16 hex digits, a random per-process half and a counter (an os.urandom call per
# request showed up in profiles; ids need to be unique, not secret).
_REQUEST_ID_PREFIX = secrets.token_hex(4).upper()
_request_numbers = itertools.count()
# What one request keeps between its steps (aiohttp's typed request storage).
_REQUEST_ID = web.RequestKey("ls.request_id", str)
_TARGET = web.RequestKey("ls.target", RequestTarget)
_HEADERS: web.RequestKey[CIMultiDictProxy[str]] = web.RequestKey("ls.headers")
_PREFLIGHT: web.RequestKey[tuple[Endpoint, AuthResult | None]] = web.RequestKey("ls.preflight")
# The error code an answer carries, for the access log ("-" for none).
_ERROR_CODE = web.RequestKey("ls.error_code", str)
_CONTINUED = web.RequestKey("ls.continued", bool)
CLIENT_GONE = "ClientGone"  # the code of a request whose client left before its answer
# For the access log: the operation routed to and the key that signed, as soon as known, so a
# refused request's line still names both.
_OPERATION = web.RequestKey("ls.operation", str)
_KEY_ID = web.RequestKey("ls.key_id", str)

HANDLERS: dict[str, Handler] = {
    "ListBuckets": bucket.handle_list_buckets,
    "CreateBucket": bucket.handle_create_bucket,
    "DeleteBucket": bucket.handle_delete_bucket,
    "HeadBucket": bucket.handle_head_bucket,
    "GetBucketLocation": bucket.handle_get_bucket_location,
    "ListObjects": listing.handle_list_objects,
    "ListObjectsV2": listing.handle_list_objects_v2,
    "PutObject": object.handle_put_object,
    "GetObject": object.handle_get_object,
    "HeadObject": object.handle_head_object,
    "DeleteObject": object.handle_delete_object,
    "CopyObject": copy.handle_copy_object,
    "DeleteObjects": delete.handle_delete_objects,
    "ListObjectVersions": listing.handle_list_object_versions,
    "ListMultipartUploads": multipart.handle_list_multipart_uploads,
    "CreateMultipartUpload": multipart.handle_create_multipart_upload,
    "UploadPart": multipart.handle_upload_part,
    "UploadPartCopy": multipart.handle_upload_part_copy,
    "CompleteMultipartUpload": multipart.handle_complete_multipart_upload,
    "AbortMultipartUpload": multipart.handle_abort_multipart_upload,
    "ListParts": multipart.handle_list_parts,
    "GetBucketConfiguration": configuration.handle_get_bucket_configuration,
    "GetObjectTagging": tagging.handle_get_object_tagging,
    "PutObjectTagging": tagging.handle_put_object_tagging,
    "DeleteObjectTagging": tagging.handle_delete_object_tagging,
    "GetBucketLifecycleConfiguration": lifecycle.handle_get_bucket_lifecycle,
    "PutBucketLifecycleConfiguration": lifecycle.handle_put_bucket_lifecycle,
    "DeleteBucketLifecycle": lifecycle.handle_delete_bucket_lifecycle,
    "GetBucketTagging": tagging.handle_get_bucket_tagging,
    "PutBucketTagging": tagging.handle_put_bucket_tagging,
    "DeleteBucketTagging": tagging.handle_delete_bucket_tagging,
    "GetObjectAcl": acl.handle_get_object_acl,
    "PutObjectAcl": acl.handle_put_object_acl,
    "GetBucketAcl": acl.handle_get_bucket_acl,
    "PutBucketAcl": acl.handle_put_bucket_acl,
    "GetBucketPolicy": policies.handle_get_bucket_policy,
    "PutBucketPolicy": policies.handle_put_bucket_policy,
    "DeleteBucketPolicy": policies.handle_delete_bucket_policy,
    "GetBucketPolicyStatus": policies.handle_get_bucket_policy_status,
    "GetPublicAccessBlock": policies.handle_get_public_access_block,
    "PutPublicAccessBlock": policies.handle_put_public_access_block,
    "DeletePublicAccessBlock": policies.handle_delete_public_access_block,
    "GetBucketOwnershipControls": policies.handle_get_ownership_controls,
    "PutBucketOwnershipControls": policies.handle_put_ownership_controls,
    "DeleteBucketOwnershipControls": policies.handle_delete_ownership_controls,
    "GetObjectAttributes": attributes.handle_get_object_attributes,
    "PutBucketVersioning": versioning.handle_put_bucket_versioning,
    "GetBucketVersioning": versioning.handle_get_bucket_versioning,
    "PutObjectLockConfiguration": versioning.handle_put_object_lock_configuration,
    "GetObjectLockConfiguration": versioning.handle_get_object_lock_configuration,
    "PutObjectRetention": versioning.handle_put_object_retention,
    "GetObjectRetention": versioning.handle_get_object_retention,
    "PutObjectLegalHold": versioning.handle_put_object_legal_hold,
    "GetObjectLegalHold": versioning.handle_get_object_legal_hold,
}


class S3App:
    def __init__(
        self, *, gateway: Gateway, lookup: SecretLookup, limiter: FailedAuthLimiter | None = None
    ) -> None:
        self.gateway = gateway
        self._lookup = lookup
        self._limiter = limiter or FailedAuthLimiter()
        self._in_flight = 0
        self._draining = False
        self._idle = asyncio.Event()

    async def drain(self, grace_seconds: float) -> int:
        """Refuse new requests and wait up to ``grace_seconds`` for in-flight ones; returns how many
        were still running. aiohttp's own shutdown stops reading request bodies at once, which
        would cut off uploads in progress, so the daemon drains here first."""
        self._draining = True
        if self._in_flight:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace_seconds)
        return self._in_flight

    def build(self) -> web.Application:
        # client_max_size only bounds read()/post(); object bodies are streamed regardless.
        app = web.Application(
            client_max_size=1024 * 1024,
            middlewares=[
                web.middleware(_with_request_id),
                web.middleware(_logged),
                web.middleware(functools.partial(S3App._drained, self)),
                web.middleware(_mapped_errors),
                web.middleware(functools.partial(S3App._preflighted, self)),
            ],
        )
        # One route for everything: target.py parses the target. (Not ".*": aiohttp matches
        # its decoded path, in which a key's "%0A" is a newline that "." does not match.)
        app.router.add_route("*", "/{tail:[\\s\\S]*}", self._dispatch, expect_handler=_later)
        app.on_response_prepare.append(_stamp_request_id)
        return app

    # --- middlewares and the handler ---------------------------------------------------------

    async def _drained(self, request: web.Request, handler: _Next) -> web.StreamResponse:
        if self._draining:
            response = _error(request, ServiceUnavailable("The server is shutting down."))
            response.force_close()
            return response
        self._in_flight += 1
        try:
            return await handler(request)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _preflighted(self, request: web.Request, handler: _Next) -> web.StreamResponse:
        await self.preflight(request)
        if request.headers.get("Expect", "").lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0
            request[_CONTINUED] = True
        return await handler(request)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        endpoint, auth = request[_PREFLIGHT]
        if auth is None:
            return await handle_post_object(
                request, endpoint, self.gateway, self._lookup, self._limiter
            )
        call = S3Call(
            request=request,
            target=self.target(request),
            headers=self.headers(request),
            endpoint=endpoint,
            auth=auth,
            gateway=self.gateway,
            request_id=_request_id(request),
        )
        response = await HANDLERS[endpoint.operation](call)
        # Bytes of bodies that were accepted and of responses that were sent whole.
        METRICS.traffic("s3", request.content_length or 0, response.content_length or 0)
        return response

    # --- the preflight -----------------------------------------------------------------------

    def target(self, request: web.Request) -> RequestTarget:
        """The one parse of the request target everything else reads; raises InvalidURI."""
        if _TARGET in request:
            return request[_TARGET]
        # The Host header, which SigV4 signs; not aiohttp's request.host, which an
        # absolute-form target would override (such a target is refused anyway).
        host = request.headers.get("Host", "")
        domains = self.gateway.virtual_host_domains
        target = parse_target(request.raw_path, bucket_from_host=bucket_from_host(host, domains))
        request[_TARGET] = target
        return target

    def headers(self, request: web.Request) -> CIMultiDictProxy[str]:
        """The request's headers with those its query carries (see with_query_headers)."""
        if _HEADERS not in request:
            request[_HEADERS] = with_query_headers(request.headers, self.target(request))
        return request[_HEADERS]

    async def preflight(self, request: web.Request) -> tuple[Endpoint, AuthResult | None]:
        """Authenticate, route and authorize; a POST Object form authenticates inside its body
        (None). An unsigned POST that routes to PostObject goes on to the form; any other
        unsigned request is the anonymous principal's, authorized as such (by default that
        refuses it: only a bucket's policy or ACL can let anonymous requests in)."""
        if _PREFLIGHT in request:
            return request[_PREFLIGHT]
        target = self.target(request)
        headers = self.headers(request)
        if request.method == "OPTIONS":
            # A CORS preflight carries no credentials (browsers never sign it), so it is
            # answered before authentication, as S3 answers it for a bucket without CORS.
            raise CorsNotEnabled() if "Origin" in request.headers else PreflightWithoutOrigin()
        signed = claims_a_signature("Authorization" in request.headers, target)
        if request.method == "POST" and not signed:
            with contextlib.suppress(StorageError):
                endpoint = route(request.method, target.routed_path, target.query, headers)
                if endpoint.operation == "PostObject":
                    request[_OPERATION] = endpoint.operation
                    request[_PREFLIGHT] = (endpoint, None)
                    return endpoint, None
        auth = await self._authenticate(request, target) if signed else anonymous(headers)
        if auth.credential is not None:
            request[_KEY_ID] = auth.credential.access_key_id
        try:
            endpoint = route(request.method, target.routed_path, target.query, headers)
            request[_OPERATION] = endpoint.operation
        except StorageError:
            if auth.credential is None:  # nobody learns which sub-resources exist unsigned
                raise AccessDenied() from None
            raise
        if endpoint.operation == "PostObject":
            raise InvalidRequest(
                "A POST to a bucket is a browser form upload, authenticated by the policy it "
                "carries, not by an Authorization header or a presigned URL."
            )
        caller = caller_of(auth)
        gatekeeper = self.gateway.gatekeeper
        await authorize(request, endpoint, caller, gatekeeper, target=target, headers=headers)
        if endpoint.operation in _UPLOADS:
            await self._check_upload(request, endpoint)
        request[_PREFLIGHT] = (endpoint, auth)
        return endpoint, auth

    async def _authenticate(self, request: web.Request, target: RequestTarget) -> AuthResult:
        raw = {name.lower(): ",".join(request.headers.getall(name)) for name in request.headers}
        signed = SignedRequest(method=request.method, target=target, headers=raw)
        try:
            return await authenticate(signed, self._lookup)
        except AuthError as error:
            raise self._limiter.refuse(
                error, door="s3", source=request.remote or "-", key_id=claimed_key_id(signed)
            ) from error

    async def _check_upload(self, request: web.Request, endpoint: Endpoint) -> None:
        """What can be refused before a body is invited: a size over the store's limit (which
        the store enforces too, on the bytes), a bucket that does not exist (S3-CLIENTS.md
        section 10)."""
        declared = request.headers.get("x-amz-decoded-content-length") or request.headers.get(
            "Content-Length"
        )
        if declared is not None and _digits_over(declared, MAX_PUT_BYTES):
            raise EntityTooLarge(
                extra={"ProposedSize": declared, "MaxSizeAllowed": str(MAX_PUT_BYTES)}
            )
        small = declared is not None and not _digits_over(
            declared, self.gateway.store.inline_max_bytes
        )
        if small and endpoint.operation == "PutObject" and "Expect" not in request.headers:
            return  # nothing to spare: the commit checks the bucket, one pool trip fewer
        await self.gateway.store.head_bucket(endpoint.bucket)


async def _later(request: web.Request) -> None:
    """aiohttp's expect handler runs before the middlewares; the preflight middleware answers
    ``Expect: 100-continue`` once the request may proceed."""
    return None


async def _with_request_id(request: web.Request, handler: _Next) -> web.StreamResponse:
    _request_id(request)
    return await handler(request)


async def _logged(request: web.Request, handler: _Next) -> web.StreamResponse:
    # Operator-facing: who asked for what, how it ended, how long it took. Never secrets.
    started = time.monotonic()
    response = await handler(request)
    operation = request.get(_OPERATION, "-")
    code = request.get(_ERROR_CODE, "")
    streamed = request.get(STREAMED)
    status = _status_class(response.status, code, cut=streamed is not None)
    elapsed = time.monotonic() - started
    observe_request("s3", operation, status, code, elapsed)
    log_fields(
        log,
        logging.INFO,
        {
            "request": _request_id(request),
            "method": request.method,
            "path": _logged_path(request),
            "op": operation,
            "status": response.status,
            "code": code or "-",
            "key_id": request.get(_KEY_ID, "-"),
            "bytes_sent": _bytes_sent(response, streamed),
            "ms": f"{elapsed * 1000:.1f}",
            "peer": request.remote,
        },
    )
    return response


def _bytes_sent(response: web.StreamResponse, streamed: tuple[int, int, str] | None) -> int:
    """The body bytes of the answer: what went out of a cut stream, what a streamed answer
    wrote, or what a whole one (sent after this middleware returns) is about to."""
    if streamed is not None:
        return streamed[1]
    if response.prepared:
        return response.body_length
    return response.content_length or 0


def _status_class(status: int, code: str, *, cut: bool = False) -> str:
    """What the metrics' ``status`` says, the same on both doors (see metrics.py). A body
    ``cut`` off for a failed read is ours, whatever status went out before it."""
    if code == CLIENT_GONE:
        return "cancelled"
    if status >= 500 or (cut and code):
        return "server_error"
    return "client_error" if status >= 400 else "ok"


async def _mapped_errors(request: web.Request, handler: _Next) -> web.StreamResponse:
    try:
        return await handler(request)
    except StorageError as error:
        response = _error(request, error)
    except (ConnectionResetError, TimeoutError) as exc:
        log.info("request=%s client went away: %s", _request_id(request), type(exc).__name__)
        transport = request.transport
        if isinstance(exc, TimeoutError) or (transport and not transport.is_closing()):
            raise
        # Nobody is left to answer. Raising would make aiohttp log a traceback at ERROR for
        # every client that drops an upload; a reply to a closed connection is dropped quietly.
        streamed = request.get(STREAMED)
        request[_ERROR_CODE] = streamed[2] if streamed and streamed[2] else CLIENT_GONE
        response = web.Response(status=streamed[0] if streamed else 400)
    except Exception:
        log.exception(
            "request=%s %s %s failed unexpectedly",
            _request_id(request),
            request.method,
            _logged_path(request),
        )
        response = _error(request, InternalError())
    if request.headers.get("Expect", "").lower() == "100-continue" and _CONTINUED not in request:
        response.force_close()  # the body was never invited, so it cannot be read
    return response


def _error(request: web.Request, error: StorageError) -> web.Response:
    request[_ERROR_CODE] = error.code
    return error_response(
        error, request_id=_request_id(request), with_body=request.method != "HEAD"
    )


def _digits_over(value: str, limit: int) -> bool:
    """Whether ``value`` is a decimal number above ``limit``. Its length is checked before it
    is converted: Python refuses int() of more than 4300 digits, and str.isdigit() admits
    characters such as "²" that int() refuses too. Anything else is for the handler to refuse.
    """
    if not (value.isascii() and value.isdigit()):
        return False
    significant = value.lstrip("0")
    return len(significant) > len(str(limit)) or int(significant or "0") > limit


async def _stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["x-amz-request-id"] = _request_id(request)


def _request_id(request: web.Request) -> str:
    if _REQUEST_ID in request:
        return request[_REQUEST_ID]
    request_id = f"{_REQUEST_ID_PREFIX}{next(_request_numbers) & 0xFFFFFFFF:08X}"
    request[_REQUEST_ID] = request_id
    return request_id


def with_query_headers(
    headers: CIMultiDictProxy[str], target: RequestTarget
) -> CIMultiDictProxy[str]:
    """``headers`` and the headers the query carries (see presign.is_query_header); a name
    given both ways must have one value (the signature covers the query's)."""
    carried = query_headers(target.params)
    if not carried:
        return headers
    merged = CIMultiDict(headers)
    for name, value in carried.items():
        if name in merged and merged[name] != value:
            raise InvalidRequest(
                f"{name} is given both as a header and in the query, with different values.",
                resource=name,
            )
        merged[name] = value
    return CIMultiDictProxy(merged)


def _logged_path(request: web.Request) -> str:
    """The path as received, up to its query (aiohttp's own ``path`` would hide what follows
    a '#', which is what an operator looking at a refused request needs to see)."""
    return request.raw_path.partition("?")[0]


def make_gateway(
    store: ObjectStore,
    *,
    offloader: Offloader,
    region: str,
    lookup: SecretLookup,
    virtual_host_domains: tuple[str, ...] = (),
    limiter: FailedAuthLimiter | None = None,
    access: AccessSettings | None = None,
    identities: Identities | None = None,
) -> S3App:
    gateway = Gateway(
        store=store,
        region=region,
        multipart=store.uploads,
        io=offloader,
        virtual_host_domains=virtual_host_domains,
        gatekeeper=Gatekeeper(store, access or AccessSettings()),
        identities=identities,
    )
    return S3App(gateway=gateway, lookup=lookup, limiter=limiter)
