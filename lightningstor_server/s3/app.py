"""The S3 door: one aiohttp route that routes, authenticates once, dispatches and maps errors.

Order of a request: parse the target once (``target.py``; a target that is not a valid URI is
refused before anything else), route from that parse (method + path + query -> Endpoint),
authenticate over the same parse (SigV4 or SigV2, header or query), then the handler. With
``Expect: 100-continue`` all of this runs before the client is told to send its body, so a bad
signature or a malformed request is answered without reading it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from lightningstor.auth.access import Access, authorize
from lightningstor.errors import (
    AuthError,
    EntityTooLarge,
    InternalError,
    InvalidArgument,
    InvalidRequest,
    ServiceUnavailable,
    StorageError,
)
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from lightningstor_server.metrics import METRICS, observe_request
from lightningstor_server.ratelimit import FailedAuthLimiter
from lightningstor_server.s3 import (
    attributes,
    bucket,
    configuration,
    copy,
    delete,
    listing,
    multipart,
    object,
)
from lightningstor_server.s3.context import Gateway, S3Call
from lightningstor_server.s3.errors import error_response
from lightningstor_server.s3.post import handle_post_object
from lightningstor_server.s3.presign import query_headers, verify_presigned_v4, verify_v2
from lightningstor_server.s3.router import Endpoint, route
from lightningstor_server.s3.sigv4 import AuthResult, SecretLookup, SignedRequest, verify
from lightningstor_server.s3.target import RequestTarget, bucket_from_host, parse_target

log = logging.getLogger("lightningstor.s3")

Handler = Callable[[S3Call], Awaitable[web.StreamResponse]]

# Operations that only read; every other operation on a bucket needs write access to it (and
# CopyObject / UploadPartCopy also read access to their source, checked by their handlers).
READ_OPERATIONS = frozenset(
    {
        "GetObject", "HeadObject", "ListObjects", "ListObjectsV2", "ListObjectVersions",
        "HeadBucket", "GetBucketLocation", "GetBucketConfiguration", "GetObjectTagging",
        "GetObjectAcl", "ListParts", "ListMultipartUploads", "GetObjectAttributes",
    }
)  # fmt: skip

# A single PUT (object or part) carries at most 5 GiB; larger objects go multipart.
MAX_PUT_BYTES = 5 * 1024**3
_UPLOADS = frozenset({"PutObject", "UploadPart"})
# Request ids: 16 hex digits, a random per-process half and a counter (an os.urandom call per
# request showed up in profiles; ids need to be unique, not secret).
_REQUEST_ID_PREFIX = secrets.token_hex(4).upper()
# What one request keeps between its steps (aiohttp's typed request storage).
_TARGET = web.RequestKey("ls.target", RequestTarget)
_PREFLIGHT: web.RequestKey[tuple[Endpoint, AuthResult | None]] = web.RequestKey("ls.preflight")
_REQUEST_ID = web.RequestKey("ls.request_id", str)
_HEADERS: web.RequestKey[CIMultiDictProxy[str]] = web.RequestKey("ls.headers")
_request_numbers = itertools.count()

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
    "GetObjectTagging": configuration.handle_get_object_tagging,
    "GetObjectAcl": configuration.handle_get_object_acl,
    "GetObjectAttributes": attributes.handle_get_object_attributes,
}


_V4_QUERY_NAMES = frozenset({"X-Amz-Signature", "X-Amz-Algorithm", "X-Amz-Credential"})
_V2_QUERY_NAMES = frozenset({"Signature", "AWSAccessKeyId"})
_HEADER_KEY_ID = re.compile(r"AWS4-HMAC-SHA256\s+Credential=([^/,\s]*)|AWS ([^:]*):")


async def authenticate(req: SignedRequest, lookup: SecretLookup) -> AuthResult:
    """Whichever of the four S3 authentication forms the request uses; exactly one must be."""
    names = {name for name, _ in req.target.params}
    in_query_v4 = not names.isdisjoint(_V4_QUERY_NAMES)
    in_query_v2 = not names.isdisjoint(_V2_QUERY_NAMES)
    if in_query_v4 + in_query_v2 + ("authorization" in req.headers) > 1:
        raise InvalidArgument(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified"
        )
    if in_query_v4:
        return await verify_presigned_v4(req, lookup)
    if in_query_v2 or req.headers.get("authorization", "").startswith("AWS "):
        return await verify_v2(req, lookup)
    return await verify(req, lookup)


def _claims_a_signature(request: web.Request, target: RequestTarget) -> bool:
    names = {name for name, _ in target.params}
    return "Authorization" in request.headers or not names.isdisjoint(
        _V4_QUERY_NAMES | _V2_QUERY_NAMES
    )


def claimed_key_id(req: SignedRequest) -> str:
    """The access key id a request says it is signed by ("" if it names none)."""
    params = dict(req.target.params)
    claimed = params.get("AWSAccessKeyId") or params.get("X-Amz-Credential", "").split("/")[0]
    if claimed:
        return claimed
    match = _HEADER_KEY_ID.match(req.headers.get("authorization", ""))
    return (match[1] or match[2]) if match else ""


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
        app = web.Application(client_max_size=1024 * 1024)
        # One route for everything: target.py parses the target. (Not ".*": aiohttp matches
        # its decoded path, in which a key's "%0A" is a newline that "." does not match.)
        app.router.add_route("*", "/{tail:[\\s\\S]*}", self.handle, expect_handler=self.expect)
        app.on_response_prepare.append(_stamp_request_id)
        return app

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

    async def preflight(self, request: web.Request) -> tuple[Endpoint, AuthResult | None]:
        """Authenticate and route; a POST Object form authenticates inside its body (None).

        Authentication comes before routing, so an unsigned request learns nothing but 403
        (not which sub-resources exist). The one exception is a form POST, which carries its
        signature in the body: an unsigned POST that routes to PostObject goes on to the form.
        """
        if _PREFLIGHT in request:
            return request[_PREFLIGHT]
        target = self.target(request)
        headers = self.headers(request)
        if request.method == "POST" and not _claims_a_signature(request, target):
            with contextlib.suppress(StorageError):  # anything else is refused as unsigned
                endpoint = route(request.method, target.routed_path, target.query, headers)
                if endpoint.operation == "PostObject":
                    request[_PREFLIGHT] = (endpoint, None)
                    return endpoint, None
        raw = {name.lower(): ",".join(request.headers.getall(name)) for name in request.headers}
        signed = SignedRequest(method=request.method, target=target, headers=raw)
        try:
            auth = await authenticate(signed, self._lookup)
        except AuthError as error:
            raise self._limiter.refuse(
                error, door="s3", source=request.remote or "-", key_id=claimed_key_id(signed)
            ) from error
        endpoint = route(request.method, target.routed_path, target.query, headers)
        if endpoint.operation == "PostObject":
            raise InvalidRequest(
                "A POST to a bucket is a browser form upload, authenticated by the policy it "
                "carries, not by an Authorization header or a presigned URL."
            )
        if endpoint.bucket:
            credential = auth.credential
            authorize(
                admin=credential.admin,
                grants=credential.grants,
                bucket=endpoint.bucket,
                access=Access.READ if endpoint.operation in READ_OPERATIONS else Access.WRITE,
            )
        if endpoint.operation in _UPLOADS:
            await self._check_upload(request, endpoint)
        request[_PREFLIGHT] = (endpoint, auth)
        return endpoint, auth

    def headers(self, request: web.Request) -> CIMultiDictProxy[str]:
        """The request's headers with those its query carries (see with_query_headers)."""
        if _HEADERS not in request:
            request[_HEADERS] = with_query_headers(request.headers, self.target(request))
        return request[_HEADERS]

    async def _check_upload(self, request: web.Request, endpoint: Endpoint) -> None:
        """What can be refused before a body is invited: a size over the limit, a bucket
        that does not exist (S3-CLIENTS.md section 10)."""
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

    async def expect(self, request: web.Request) -> web.StreamResponse | None:
        """Answer ``Expect: 100-continue`` only once the request may proceed."""
        request_id = _request_id(request)
        if request.headers.get("Expect", "").lower() != "100-continue":
            return None
        try:
            await self.preflight(request)
        except Exception as exc:
            # As in _handle: an exception that is not ours is a bug, answered as InternalError
            # with the request id it was logged under, never by aiohttp's bare 500.
            if isinstance(exc, StorageError):
                error: StorageError = exc
            else:
                log.exception(
                    "request=%s %s %s failed unexpectedly",
                    request_id,
                    request.method,
                    _logged_path(request),
                )
                error = InternalError()
            response = self._fail(request, error, request_id, time.monotonic())
            response.force_close()  # the body was never invited, so it cannot be read
            return response
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        request_id = _request_id(request)
        started = time.monotonic()
        if self._draining:
            response = self._fail(
                request, ServiceUnavailable("The server is shutting down."), request_id, started
            )
            response.force_close()
            return response
        self._in_flight += 1
        try:
            return await self._handle(request, request_id, started)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _handle(
        self, request: web.Request, request_id: str, started: float
    ) -> web.StreamResponse:
        try:
            endpoint, auth = await self.preflight(request)
            if auth is None:
                response = await handle_post_object(
                    request, endpoint, self.gateway, self._lookup, self._limiter
                )
                _log_request(request, request_id, response.status, started, endpoint.operation)
                return response
            target = self.target(request)
            call = S3Call(
                request=request,
                target=target,
                headers=self.headers(request),
                endpoint=endpoint,
                auth=auth,
                gateway=self.gateway,
                request_id=request_id,
            )
            response = await HANDLERS[endpoint.operation](call)
        except StorageError as error:
            return self._fail(request, error, request_id, started)
        except (ConnectionResetError, TimeoutError) as exc:
            log.info("request=%s client went away: %s", request_id, type(exc).__name__)
            transport = request.transport
            if isinstance(exc, TimeoutError) or (transport and not transport.is_closing()):
                raise
            # Nobody is left to answer. Raising would make aiohttp log a traceback at ERROR
            # for every client that drops an upload; a reply to a closed connection is
            # dropped quietly.
            gone = web.Response(status=400)
            gone.force_close()
            return gone
        except Exception:
            log.exception(
                "request=%s %s %s failed unexpectedly",
                request_id,
                request.method,
                _logged_path(request),
            )
            return self._fail(request, InternalError(), request_id, started)
        # Bytes of bodies that were accepted and of responses that were sent whole.
        METRICS.traffic("s3", request.content_length or 0, response.content_length or 0)
        _log_request(request, request_id, response.status, started, endpoint.operation)
        return response

    def _fail(
        self, request: web.Request, error: StorageError, request_id: str, started: float
    ) -> web.Response:
        response = error_response(error, request_id=request_id, with_body=request.method != "HEAD")
        _log_request(request, request_id, response.status, started, error.code)
        return response


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


def _log_request(
    request: web.Request, request_id: str, status: int, started: float, what: str
) -> None:
    # Operator-facing: who asked for what, how it ended, how long it took. Never secrets.
    preflight = request.get(_PREFLIGHT)
    auth = preflight[1] if preflight else None  # None also for a POST form (signed inside)
    access_key = auth.credential.access_key_id if auth is not None else "-"
    elapsed = time.monotonic() - started
    observe_request("s3", what, str(status), elapsed)
    log.info(
        "request=%s method=%s path=%s op=%s status=%d key_id=%s ms=%.1f peer=%s",
        request_id,
        request.method,
        _logged_path(request),
        what,
        status,
        access_key,
        elapsed * 1000,
        request.remote,
    )


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
) -> S3App:
    gateway = Gateway(
        store=store,
        region=region,
        multipart=store.uploads,
        io=offloader,
        virtual_host_domains=virtual_host_domains,
    )
    return S3App(gateway=gateway, lookup=lookup, limiter=limiter)
