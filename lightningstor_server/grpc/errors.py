"""The gRPC mapping table: core error code -> status code, and the interceptor that applies it.

A failed call ends with status "<S3Code>: <message>" and trailing metadata naming the S3 code
alone (``x-ls-error-code``) and the request id (``x-ls-request-id``); responses never carry
error strings. An exception that is not a StorageError is a bug: it is logged with its request
id and the client sees INTERNAL with that id, never the traceback.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import NoReturn

import grpc

from lightningstor.errors import InternalError, InvalidRange, StorageError

# The trailing metadata names are the wire's, shared with the client that parses them.
from lightningstor.wire import ERROR_CODE_KEY, OBJECT_SIZE_KEY, REQUEST_ID_KEY
from lightningstor_server.grpc.auth import OPEN_METHOD_PREFIXES, caller_key_id
from lightningstor_server.grpc.wrapping import AroundInterceptor, Context
from lightningstor_server.metrics import observe_request

log = logging.getLogger("lightningstor.grpc")

S = grpc.StatusCode
STATUS_BY_CODE: dict[str, grpc.StatusCode] = {
    "NoSuchBucket": S.NOT_FOUND,
    "NoSuchKey": S.NOT_FOUND,
    "NoSuchUpload": S.NOT_FOUND,
    "NoSuchConfiguration": S.NOT_FOUND,
    "BucketAlreadyExists": S.ALREADY_EXISTS,
    "BucketAlreadyOwnedByYou": S.ALREADY_EXISTS,
    "BucketNotEmpty": S.FAILED_PRECONDITION,
    "PreconditionFailed": S.FAILED_PRECONDITION,
    "NotModified": S.FAILED_PRECONDITION,
    "ConditionalRequestConflict": S.ABORTED,
    "OperationAborted": S.ABORTED,
    "LastAdminKey": S.FAILED_PRECONDITION,
    "InvalidBucketName": S.INVALID_ARGUMENT,
    "KeyTooLongError": S.INVALID_ARGUMENT,
    "InvalidArgument": S.INVALID_ARGUMENT,
    "InvalidRequest": S.INVALID_ARGUMENT,
    "InvalidURI": S.INVALID_ARGUMENT,
    "MalformedXML": S.INVALID_ARGUMENT,
    "InvalidBucketAclWithObjectOwnership": S.INVALID_ARGUMENT,
    "AccessControlListNotSupported": S.INVALID_ARGUMENT,
    "MalformedPOSTRequest": S.INVALID_ARGUMENT,
    "InvalidPolicyDocument": S.INVALID_ARGUMENT,
    "MetadataTooLarge": S.INVALID_ARGUMENT,
    "MissingContentLength": S.INVALID_ARGUMENT,
    "MethodNotAllowed": S.INVALID_ARGUMENT,
    "BadDigest": S.INVALID_ARGUMENT,
    "InvalidDigest": S.INVALID_ARGUMENT,
    "XAmzContentSHA256Mismatch": S.INVALID_ARGUMENT,
    "IncompleteBody": S.INVALID_ARGUMENT,
    "InvalidRange": S.OUT_OF_RANGE,
    "InvalidPartNumber": S.OUT_OF_RANGE,
    "InvalidPart": S.INVALID_ARGUMENT,
    "InvalidPartOrder": S.INVALID_ARGUMENT,
    "EntityTooSmall": S.INVALID_ARGUMENT,
    "InvalidAccessKeyId": S.UNAUTHENTICATED,
    "SignatureDoesNotMatch": S.UNAUTHENTICATED,
    "AuthorizationHeaderMalformed": S.UNAUTHENTICATED,
    "AuthorizationQueryParametersError": S.UNAUTHENTICATED,
    "RequestTimeTooSkewed": S.UNAUTHENTICATED,
    "MissingSecurityHeader": S.UNAUTHENTICATED,
    "AccessDenied": S.PERMISSION_DENIED,
    "InsufficientStorage": S.RESOURCE_EXHAUSTED,
    "EntityTooLarge": S.RESOURCE_EXHAUSTED,
    "NotImplemented": S.UNIMPLEMENTED,
    # UNAVAILABLE, not INTERNAL: it is the status gRPC clients' retry policies act on.
    "ServiceUnavailable": S.UNAVAILABLE,
    "SlowDown": S.UNAVAILABLE,
    "InternalError": S.INTERNAL,
}


def status_of(error: StorageError) -> grpc.StatusCode:
    return STATUS_BY_CODE.get(error.code, grpc.StatusCode.INTERNAL)


def new_request_id() -> str:
    return secrets.token_hex(8).upper()


async def abort_with(context: Context, error: StorageError, *, request_id: str) -> NoReturn:
    """End the call with ``error``'s status; raises (grpc.aio's abort always does)."""
    trailing: list[tuple[str, str]] = [(ERROR_CODE_KEY, error.code), (REQUEST_ID_KEY, request_id)]
    if isinstance(error, InvalidRange):
        trailing.append((OBJECT_SIZE_KEY, str(error.size)))
    await context.abort(status_of(error), f"{error.code}: {error.message}", tuple(trailing))
    raise AssertionError("grpc.aio's abort returned")  # pragma: no cover


@asynccontextmanager
async def translating_errors(context: Context, *, method: str = "-") -> AsyncIterator[None]:
    """Turn whatever escapes a servicer method into a status, as the table says.

    Each call gets a request id, sent to the client in the trailers whatever the outcome, and
    one log line, like the S3 door's, to find the call by.
    """
    request_id = new_request_id()
    context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
    # Asked first, before any await: grpc.aio's peer() on a call the client has cancelled can
    # crash the process (seen with grpcio 1.85 after an abandoned server-streaming read).
    peer = context.peer()
    started = time.monotonic()
    outcome = "OK"
    try:
        yield
    except grpc.aio.AbortError:
        outcome = "Aborted"
        raise  # the call already has its status
    except asyncio.CancelledError:
        outcome = "Cancelled"
        raise
    except StorageError as error:
        outcome = error.code
        if isinstance(error, InternalError):
            log.error("request=%s failed: %r", request_id, error)
        await abort_with(context, error, request_id=request_id)
    except Exception:
        outcome = "InternalError"
        log.exception("request=%s failed with an unexpected error", request_id)
        await abort_with(
            context,
            InternalError(f"We encountered an internal error (request id {request_id})."),
            request_id=request_id,
        )
    finally:
        elapsed = time.monotonic() - started
        observe_request("grpc", method.rpartition("/")[2], outcome, elapsed)
        log.info(
            "request=%s method=%s outcome=%s key_id=%s ms=%.1f peer=%s",
            request_id,
            method,
            outcome,
            caller_key_id(),
            elapsed * 1000,
            peer,
        )


class ErrorInterceptor(AroundInterceptor):
    """Outermost interceptor, so failures inside the others (auth) map here too.

    Health checks pass untouched: they raise nothing of ours, and probes every few seconds
    would drown the call log.
    """

    def __init__(self) -> None:
        super().__init__(open_prefixes=OPEN_METHOD_PREFIXES)

    def around(self, method: str, context: Context) -> AbstractAsyncContextManager[None]:
        return translating_errors(context, method=method)
