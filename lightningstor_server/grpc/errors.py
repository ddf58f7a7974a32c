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

from lightningstor import errors as e
from lightningstor.errors import InternalError, InvalidRange, StorageError, server_fault

# The trailing metadata names are the wire's, shared with the client that parses them.
from lightningstor.wire import DELETE_MARKER_KEY, ERROR_CODE_KEY, OBJECT_SIZE_KEY, REQUEST_ID_KEY
from lightningstor_server.grpc.auth import OPEN_METHOD_PREFIXES, caller_key_id
from lightningstor_server.grpc.wrapping import AroundInterceptor, Context
from lightningstor_server.logs import log_fields
from lightningstor_server.metrics import observe_request

log = logging.getLogger("lightningstor.grpc")

S = grpc.StatusCode
# By class, walking each error's MRO, as the S3 table does: a family's status unless a member
# says otherwise.
STATUS_BY_CLASS: dict[type[StorageError], grpc.StatusCode] = {
    # families
    e.NotFound: S.NOT_FOUND,
    e.Conflict: S.ABORTED,
    e.InvalidInput: S.INVALID_ARGUMENT,
    e.IntegrityError: S.INVALID_ARGUMENT,
    e.AuthError: S.UNAUTHENTICATED,
    e.PreconditionFailed: S.FAILED_PRECONDITION,
    e.NotModified: S.FAILED_PRECONDITION,
    e.InsufficientStorage: S.RESOURCE_EXHAUSTED,
    # UNAVAILABLE, not INTERNAL: it is the status gRPC clients' retry policies act on.
    e.ServiceUnavailable: S.UNAVAILABLE,
    e.InternalError: S.INTERNAL,
    # members whose status is not their family's
    e.BucketAlreadyExists: S.ALREADY_EXISTS,
    e.BucketAlreadyOwnedByYou: S.ALREADY_EXISTS,
    e.BucketNotEmpty: S.FAILED_PRECONDITION,
    e.InvalidBucketState: S.FAILED_PRECONDITION,
    e.IsDeleteMarker: S.FAILED_PRECONDITION,
    e.LastAdminKey: S.FAILED_PRECONDITION,
    e.InvalidRange: S.OUT_OF_RANGE,
    e.InvalidPartNumber: S.OUT_OF_RANGE,
    e.EntityTooLarge: S.RESOURCE_EXHAUSTED,
    e.AccessDenied: S.PERMISSION_DENIED,
}


def status_of(error: StorageError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        status = STATUS_BY_CLASS.get(cls)
        if status is not None:
            return status
    return S.INTERNAL


def new_request_id() -> str:
    return secrets.token_hex(8).upper()


async def abort_with(context: Context, error: StorageError, *, request_id: str) -> NoReturn:
    """End the call with ``error``'s status; raises (grpc.aio's abort always does)."""
    trailing: list[tuple[str, str]] = [(ERROR_CODE_KEY, error.code), (REQUEST_ID_KEY, request_id)]
    if isinstance(error, InvalidRange):
        trailing.append((OBJECT_SIZE_KEY, str(error.size)))
    marker = _delete_marker(error)
    if marker:
        trailing.append((DELETE_MARKER_KEY, marker))
    await context.abort(status_of(error), f"{error.code}: {error.message}", tuple(trailing))
    raise AssertionError("grpc.aio's abort returned")  # pragma: no cover


def _delete_marker(error: StorageError) -> str | None:
    if isinstance(error, e.IsDeleteMarker):
        return error.version_id
    if isinstance(error, e.NoSuchKey):
        return error.delete_marker
    return None


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
    status, code = "ok", ""
    try:
        yield
    except grpc.aio.AbortError:
        status, code = "client_error", "Aborted"
        raise  # the call already has its status
    except asyncio.CancelledError:
        status, code = "cancelled", "Cancelled"
        raise
    except StorageError as error:
        status, code = ("server_error" if server_fault(error) else "client_error"), error.code
        if isinstance(error, InternalError):
            log.error("request=%s failed: %r", request_id, error)
        await abort_with(context, error, request_id=request_id)
    except Exception:
        status, code = "server_error", "InternalError"
        log.exception("request=%s failed with an unexpected error", request_id)
        await abort_with(
            context,
            InternalError(f"We encountered an internal error (request id {request_id})."),
            request_id=request_id,
        )
    finally:
        elapsed = time.monotonic() - started
        name = method.rpartition("/")[2]
        observe_request("grpc", name, status, code, elapsed)
        log_fields(
            log,
            logging.INFO,
            {
                "request": request_id,
                "method": method,
                "op": name,
                "status": status,
                "code": code or "-",
                "key_id": caller_key_id(),
                "ms": f"{elapsed * 1000:.1f}",
                "peer": peer,
            },
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
