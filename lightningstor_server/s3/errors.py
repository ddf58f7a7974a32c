"""The S3 mapping table: error class -> HTTP status, and the S3 XML error body."""

from __future__ import annotations

from aiohttp import web

from lightningstor import errors as e
from lightningstor.errors import InvalidRange, NotModified, StorageError
from lightningstor_server.s3.headers import http_date
from lightningstor_server.s3.xml import document, element

# By class, walking each error's MRO: a family's status unless a member says otherwise, so a
# new error class gets its family's answer without an entry here (a test checks every class
# resolves, and that none falls through to 500 but InternalError).
STATUS_BY_CLASS: dict[type[StorageError], int] = {
    # families
    e.NotFound: 404,
    e.Conflict: 409,
    e.InvalidInput: 400,
    e.IntegrityError: 400,
    e.AuthError: 403,
    e.PreconditionFailed: 412,
    e.NotModified: 304,
    e.InsufficientStorage: 507,
    e.ServiceUnavailable: 503,
    e.InternalError: 500,
    # members whose HTTP status is not their family's
    e.InvalidRange: 416,
    e.InvalidPartNumber: 416,
    e.MissingContentLength: 411,
    e.MethodNotAllowed: 405,
    e.NotImplementedByServer: 501,
    e.AuthorizationHeaderMalformed: 400,
    e.AuthorizationQueryParametersError: 400,
    e.MissingSecurityHeader: 400,
}


def status_of(error: StorageError) -> int:
    for cls in type(error).__mro__:
        status = STATUS_BY_CLASS.get(cls)
        if status is not None:
            return status
    return 500


def error_response(error: StorageError, *, request_id: str, with_body: bool) -> web.Response:
    """The S3 error reply. HEAD and 304 replies carry no body, as S3's do."""
    status = status_of(error)
    headers = {"x-amz-request-id": request_id}
    if isinstance(error, InvalidRange):
        headers["Content-Range"] = f"bytes */{error.size}"
    if isinstance(error, NotModified) and error.etag:
        headers["ETag"] = f'"{error.etag}"'
        headers["Last-Modified"] = http_date(error.mtime_ns)
    if not with_body or status == 304:
        return web.Response(status=status, headers=headers)
    body = document(
        "Error",
        [
            element("Code", error.code),
            element("Message", error.message),
            element("Resource", error.resource or None),
            element("RequestId", request_id),
            *(element(name, value) for name, value in error.extra.items()),
        ],
        namespace=False,
    )
    headers["Content-Type"] = "application/xml"
    return web.Response(status=status, body=body, headers=headers)
