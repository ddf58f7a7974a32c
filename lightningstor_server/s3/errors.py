"""The S3 mapping table: core error code -> HTTP status, and the S3 XML error body."""

from __future__ import annotations

from aiohttp import web

from lightningstor.errors import InvalidRange, NoSuchConfiguration, NotModified, StorageError
from lightningstor_server.s3.headers import http_date
from lightningstor_server.s3.xml import document, element

STATUS_BY_CODE: dict[str, int] = {
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "NoSuchUpload": 404,
    "InvalidPart": 400,
    "InvalidPartOrder": 400,
    "EntityTooSmall": 400,
    "NoSuchConfiguration": 404,
    "BucketAlreadyExists": 409,
    "BucketAlreadyOwnedByYou": 409,
    "BucketNotEmpty": 409,
    "ConditionalRequestConflict": 409,
    "OperationAborted": 409,
    "LastAdminKey": 409,
    "InvalidBucketName": 400,
    "KeyTooLongError": 400,
    "InvalidArgument": 400,
    "InvalidRange": 416,
    "InvalidPartNumber": 416,
    "InvalidRequest": 400,
    "InvalidURI": 400,
    "MalformedXML": 400,
    "InvalidBucketAclWithObjectOwnership": 400,
    "AccessControlListNotSupported": 400,
    "MalformedPOSTRequest": 400,
    "InvalidPolicyDocument": 400,
    "EntityTooLarge": 400,
    "MetadataTooLarge": 400,
    "MissingContentLength": 411,
    "MethodNotAllowed": 405,
    "NotImplemented": 501,
    "BadDigest": 400,
    "InvalidDigest": 400,
    "XAmzContentSHA256Mismatch": 400,
    "IncompleteBody": 400,
    "PreconditionFailed": 412,
    "NotModified": 304,
    "AccessDenied": 403,
    "InvalidAccessKeyId": 403,
    "SignatureDoesNotMatch": 403,
    "AuthorizationHeaderMalformed": 400,
    "AuthorizationQueryParametersError": 400,
    "RequestTimeTooSkewed": 403,
    "MissingSecurityHeader": 400,
    "InsufficientStorage": 507,
    "InternalError": 500,
    "ServiceUnavailable": 503,
    "SlowDown": 503,
}


def status_of(error: StorageError) -> int:
    if isinstance(error, NoSuchConfiguration):
        return 404  # one per kind of configuration, see configuration.py
    return STATUS_BY_CODE.get(error.code, 500)


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
