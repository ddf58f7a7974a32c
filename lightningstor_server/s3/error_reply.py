"""The S3 error reply: status from the error table, S3's XML Error document, and the headers
some errors carry (Content-Range of a 416, the validators of a 304)."""

from __future__ import annotations

from aiohttp import web

from lightningstor.errors import (
    InvalidRange,
    IsDeleteMarker,
    NoSuchKey,
    NotModified,
    StorageError,
)
from lightningstor_server.s3.documents import ErrorDocument
from lightningstor_server.s3.errors import status_of
from lightningstor_server.s3.headers import http_date


def error_response(error: StorageError, *, request_id: str, with_body: bool) -> web.Response:
    """The S3 error reply. HEAD and 304 replies carry no body, as S3's do."""
    status = status_of(error)
    headers = {"x-amz-request-id": request_id}
    if isinstance(error, InvalidRange):
        headers["Content-Range"] = f"bytes */{error.size}"
    if isinstance(error, NoSuchKey) and error.delete_marker is not None:
        headers["x-amz-delete-marker"] = "true"
        headers["x-amz-version-id"] = error.delete_marker
    if isinstance(error, IsDeleteMarker):
        headers["x-amz-delete-marker"] = "true"
        headers["x-amz-version-id"] = error.version_id
        headers["Allow"] = "DELETE"
    if isinstance(error, NotModified) and error.etag:
        headers["ETag"] = f'"{error.etag}"'
        headers["Last-Modified"] = http_date(error.mtime_ns)
    if not with_body or status == 304:
        return web.Response(status=status, headers=headers)
    body = ErrorDocument(
        code=error.code,
        message=error.message,
        resource=error.resource,
        request_id=request_id,
        extra=error.extra,
    ).render()
    headers["Content-Type"] = "application/xml"
    return web.Response(status=status, body=body, headers=headers)
