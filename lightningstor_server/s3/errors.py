"""The S3 door's errors: the codes only S3 has (its URI, header, form and XML refusals), each
with its HTTP status beside it, and the status of every core error, by class.

A core error's status is found by walking its MRO: a family's status unless a member says
otherwise, so a new core error gets its family's answer without an entry here (a test checks
that every class resolves, and that none but InternalError falls through to 500).
"""

from __future__ import annotations

from typing import ClassVar

from lightningstor import errors as e
from lightningstor.errors import StorageError


class S3Error(StorageError):
    """Marks the errors only the S3 door raises; each names its own ``http_status``."""

    http_status: ClassVar[int]


class InvalidURI(e.InvalidInput, S3Error):
    code = "InvalidURI"
    http_status = 400
    default_message = "Couldn't parse the specified URI."


class MalformedPOSTRequest(e.InvalidInput, S3Error):
    code = "MalformedPOSTRequest"
    http_status = 400
    default_message = "The body of your POST request is not well-formed multipart/form-data."


class InvalidPolicyDocument(e.InvalidInput, S3Error):
    code = "InvalidPolicyDocument"
    http_status = 400
    default_message = (
        "The content of the form does not meet the conditions specified in the policy document."
    )


class MalformedXML(e.InvalidInput, S3Error):
    code = "MalformedXML"
    http_status = 400
    default_message = (
        "The XML you provided was not well-formed or did not validate against our published schema"
    )


class InvalidRetentionPeriod(e.InvalidInput, S3Error):
    code = "InvalidRetentionPeriod"
    http_status = 400
    default_message = "Default retention period must be a positive integer value."


class MissingContentLength(e.InvalidInput, S3Error):
    code = "MissingContentLength"
    http_status = 411
    default_message = "You must provide the Content-Length HTTP header."


class MethodNotAllowed(e.InvalidInput, S3Error):
    code = "MethodNotAllowed"
    http_status = 405
    default_message = "The specified method is not allowed against this resource."


class NotImplementedByServer(e.InvalidInput, S3Error):
    code = "NotImplemented"
    http_status = 501
    default_message = (
        "A header or query you provided implies functionality that is not implemented."
    )


class PreflightWithoutOrigin(e.InvalidInput, S3Error):
    """An OPTIONS request (a CORS preflight) without an Origin header, answered as S3 does."""

    code = "BadRequest"
    http_status = 400
    default_message = "Insufficient information. Origin request header needed."


class CorsNotEnabled(e.AuthError, S3Error):
    """A CORS preflight: no bucket here has a CORS configuration, so none is allowed."""

    code = "AccessForbidden"
    http_status = 403
    default_message = "CORSResponse: CORS is not enabled for this bucket."


class InvalidDigest(e.IntegrityError, S3Error):
    code = "InvalidDigest"
    http_status = 400
    default_message = "The Content-MD5 or checksum you specified is not valid."


class AuthorizationQueryParametersError(e.AuthError, S3Error):
    code = "AuthorizationQueryParametersError"
    http_status = 400
    default_message = "The query-string authentication parameters are malformed."


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
    e.IsDeleteMarker: 405,
    e.InvalidPartNumber: 416,
    e.AuthorizationHeaderMalformed: 400,
    e.MissingSecurityHeader: 400,
}


def status_of(error: StorageError) -> int:
    if isinstance(error, S3Error):
        return error.http_status
    for cls in type(error).__mro__:
        status = STATUS_BY_CLASS.get(cls)
        if status is not None:
            return status
    return 500
