"""The one error hierarchy of the core.

Every failure the core reports is a :class:`StorageError` carrying the S3 error code that names
it, a human message and the resource it concerns. The doors translate these by class, walking
the MRO with family defaults (``lightningstor_server/s3/errors.py``,
``lightningstor_server/grpc/errors.py``); the core knows nothing of HTTP statuses or gRPC
codes. Errors only S3 has (its URI, header, form and XML refusals) live in the S3 door.

    StorageError
    ├── NotFound ............. NoSuchBucket, NoSuchKey, NoSuchVersion, NoSuchUpload,
    │                          NoSuchConfiguration (one code per kind of configuration)
    ├── Conflict ............. BucketAlreadyExists, BucketAlreadyOwnedByYou, BucketNotEmpty,
    │                          ConditionalRequestConflict, OperationAborted, LastAdminKey,
    │                          InvalidBucketState
    ├── InvalidInput ......... InvalidBucketName, KeyTooLongError, InvalidArgument, InvalidRange,
    │                          IsDeleteMarker (a 405 in S3),
    │                          InvalidRequest, InvalidPartNumber, InvalidPart, InvalidPartOrder,
    │                          EntityTooSmall, EntityTooLarge, MetadataTooLarge,
    │                          InvalidTag, InvalidStorageClass, MalformedPolicy, MalformedACLError,
    │                          AccessControlListNotSupported,
    │                          InvalidBucketAclWithObjectOwnership, UnresolvableGrantByEmailAddress
    ├── IntegrityError ....... BadDigest, XAmzContentSHA256Mismatch, IncompleteBody
    ├── PreconditionFailed / NotModified
    ├── AuthError ............ AccessDenied, ObjectLocked, InvalidAccessKeyId,
    │                          SignatureDoesNotMatch, AuthorizationHeaderMalformed,
    │                          RequestTimeTooSkewed, MissingSecurityHeader (both doors
    │                          authenticate)
    ├── InsufficientStorage
    └── InternalError, ServiceUnavailable (SlowDown)
"""

from __future__ import annotations

import errno
from typing import ClassVar


def server_fault(error: StorageError) -> bool:
    """Whether ``error`` is the server's doing (S3 answers those 5xx), not the caller's."""
    return isinstance(error, InternalError | ServiceUnavailable | InsufficientStorage)


class StorageError(Exception):
    """Base of every error the core raises on purpose."""

    code: str = "InternalError"  # instances may narrow it (see NoSuchConfiguration)
    default_message: ClassVar[str] = "We encountered an internal error. Please try again."

    def __init__(
        self,
        message: str | None = None,
        *,
        resource: str = "",
        extra: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.resource = resource
        # Extra S3 error-body fields (e.g. RequestTime/ServerTime for clock skew).
        self.extra = dict(extra or {})
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, resource={self.resource!r})"


class InternalError(StorageError):
    code = "InternalError"


class ServiceUnavailable(StorageError):
    code = "ServiceUnavailable"
    default_message = "Please reduce your request rate."


class SlowDown(ServiceUnavailable):
    code = "SlowDown"
    default_message = "Please reduce your request rate."


class InsufficientStorage(StorageError):
    code = "InsufficientStorage"
    default_message = "There is not enough space on the server to store the object."


# --- not found ------------------------------------------------------------------------------
class NotFound(StorageError):
    pass


class NoSuchBucket(NotFound):
    code = "NoSuchBucket"
    default_message = "The specified bucket does not exist"


class NoSuchKey(NotFound):
    code = "NoSuchKey"
    default_message = "The specified key does not exist."

    def __init__(
        self,
        message: str | None = None,
        *,
        resource: str = "",
        delete_marker: str | None = None,
    ) -> None:
        super().__init__(message, resource=resource)
        # The version id of the delete marker that is the key's current version, if one is.
        self.delete_marker = delete_marker


class NoSuchVersion(NotFound):
    code = "NoSuchVersion"
    default_message = "The specified version does not exist."


class NoSuchUpload(NotFound):
    code = "NoSuchUpload"
    default_message = (
        "The specified multipart upload does not exist. The upload ID might be invalid, or the "
        "multipart upload might have been aborted or completed."
    )


class NoSuchConfiguration(NotFound):
    """A bucket has no configuration of some kind; S3 names each kind's absence by its own code
    (NoSuchTagSet, NoSuchCORSConfiguration, ...)."""

    code = "NoSuchConfiguration"

    def __init__(self, code: str, message: str, *, resource: str = "") -> None:
        super().__init__(message, resource=resource)
        self.code = code

    @classmethod
    def of(cls, kind: str, bucket: str) -> NoSuchConfiguration:
        """What a read of a configuration ``bucket`` does not have answers, by the kind's
        S3 sub-resource name (both doors say it alike)."""
        code, message = ABSENT_CONFIGURATIONS[kind]
        return cls(code, message, resource=bucket)


# Configurations whose absence S3 reports as an error: sub-resource -> (code, message).
ABSENT_CONFIGURATIONS: dict[str, tuple[str, str]] = {
    "tagging": ("NoSuchTagSet", "The TagSet does not exist"),
    "policy": ("NoSuchBucketPolicy", "The bucket policy does not exist"),
    "ownershipControls": (
        "OwnershipControlsNotFoundError",
        "The bucket ownership controls were not found",
    ),
    "publicAccessBlock": (
        "NoSuchPublicAccessBlockConfiguration",
        "The public access block configuration was not found",
    ),
    "cors": ("NoSuchCORSConfiguration", "The CORS configuration does not exist"),
    "lifecycle": ("NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist"),
    "encryption": (
        "ServerSideEncryptionConfigurationNotFoundError",
        "The server side encryption configuration was not found",
    ),
    "website": (
        "NoSuchWebsiteConfiguration",
        "The specified bucket does not have a website configuration",
    ),
    "replication": (
        "ReplicationConfigurationNotFoundError",
        "The replication configuration was not found",
    ),
}


# --- conflicts ------------------------------------------------------------------------------
class Conflict(StorageError):
    pass


class BucketAlreadyExists(Conflict):
    code = "BucketAlreadyExists"
    default_message = (
        "The requested bucket name is not available. The bucket namespace is shared by all "
        "users of the system. Please select a different name and try again."
    )


class BucketAlreadyOwnedByYou(Conflict):
    code = "BucketAlreadyOwnedByYou"
    default_message = (
        "Your previous request to create the named bucket succeeded and you already own it."
    )


class BucketNotEmpty(Conflict):
    code = "BucketNotEmpty"
    default_message = "The bucket you tried to delete is not empty"


class ConditionalRequestConflict(Conflict):
    code = "ConditionalRequestConflict"
    default_message = (
        "A conflicting operation occurred. If using PutObject you can retry the request."
    )


class LastAdminKey(Conflict):
    code = "LastAdminKey"
    default_message = (
        "This is the last active admin key: disabling or deleting it would leave no key that "
        "can manage keys. Create another admin key first (or see `lightningstor admin "
        "recover` for a stopped store)."
    )


class OperationAborted(Conflict):
    code = "OperationAborted"
    default_message = (
        "A conflicting conditional operation is currently in progress against this resource. "
        "Please try again."
    )


class InvalidBucketState(Conflict):
    code = "InvalidBucketState"
    default_message = "The request is not valid with the current state of the bucket."


# --- invalid input --------------------------------------------------------------------------
class InvalidInput(StorageError):
    pass


class IsDeleteMarker(InvalidInput):
    """A read of a version that is a delete marker (S3 answers 405 MethodNotAllowed)."""

    code = "MethodNotAllowed"
    default_message = "The specified method is not allowed against this resource."

    def __init__(self, version_id: str, *, resource: str = "") -> None:
        super().__init__(resource=resource)
        self.version_id = version_id


class InvalidBucketName(InvalidInput):
    code = "InvalidBucketName"
    default_message = "The specified bucket is not valid."


class KeyTooLongError(InvalidInput):
    code = "KeyTooLongError"
    default_message = "Your key is too long"


class InvalidArgument(InvalidInput):
    code = "InvalidArgument"
    default_message = "Invalid Argument"


class InvalidRange(InvalidInput):
    code = "InvalidRange"
    default_message = "The requested range is not satisfiable"

    def __init__(self, message: str | None = None, *, resource: str = "", size: int) -> None:
        super().__init__(message, resource=resource)
        self.size = size


class InvalidPartNumber(InvalidInput):
    code = "InvalidPartNumber"
    default_message = "The requested partnumber is not satisfiable"


class InvalidPart(InvalidInput):
    code = "InvalidPart"
    default_message = (
        "One or more of the specified parts could not be found. The part might not have been "
        "uploaded, or the specified entity tag might not have matched the part's entity tag."
    )


class InvalidPartOrder(InvalidInput):
    code = "InvalidPartOrder"
    default_message = (
        "The list of parts was not in ascending order. Parts must be ordered by part number."
    )


class EntityTooSmall(InvalidInput):
    code = "EntityTooSmall"
    default_message = "Your proposed upload is smaller than the minimum allowed object size."


class InvalidRequest(InvalidInput):
    code = "InvalidRequest"
    default_message = "Invalid Request"


class InvalidStorageClass(InvalidInput):
    code = "InvalidStorageClass"
    default_message = "The storage class you specified is not valid"


class EntityTooLarge(InvalidInput):
    code = "EntityTooLarge"
    default_message = "Your proposed upload exceeds the maximum allowed object size."


class MalformedPolicy(InvalidInput):
    """A bucket policy the evaluator would not apply exactly as written (unknown actions,
    operators or keys are refused, never ignored)."""

    code = "MalformedPolicy"
    default_message = "This policy contains invalid Json"


class MalformedACLError(InvalidInput):
    code = "MalformedACLError"
    default_message = (
        "The XML you provided was not well-formed or did not validate against our published schema"
    )


class AccessControlListNotSupported(InvalidInput):
    """An ACL on a bucket whose Object Ownership is BucketOwnerEnforced (ACLs disabled)."""

    code = "AccessControlListNotSupported"
    default_message = "The bucket does not allow ACLs"


class InvalidBucketAclWithObjectOwnership(InvalidInput):
    code = "InvalidBucketAclWithObjectOwnership"
    default_message = (
        "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
    )


class UnresolvableGrantByEmailAddress(InvalidInput):
    code = "UnresolvableGrantByEmailAddress"
    default_message = "The e-mail address you provided does not match any account on record."


class InvalidTag(InvalidInput):
    """A tag set S3 would refuse: too many tags, a key or value too long, a key twice."""

    code = "InvalidTag"
    default_message = "The TagSet you have provided is invalid."


class MetadataTooLarge(InvalidInput):
    code = "MetadataTooLarge"
    default_message = "Your metadata headers exceed the maximum allowed metadata size."


# --- integrity ------------------------------------------------------------------------------
class IntegrityError(StorageError):
    pass


class BadDigest(IntegrityError):
    code = "BadDigest"
    default_message = "The Content-MD5 or checksum you specified did not match what we received."


class ContentSHA256Mismatch(IntegrityError):
    code = "XAmzContentSHA256Mismatch"
    default_message = "The provided 'x-amz-content-sha256' header does not match what was computed."


class IncompleteBody(IntegrityError):
    code = "IncompleteBody"
    default_message = (
        "You did not provide the number of bytes specified by the Content-Length HTTP header."
    )


# --- preconditions --------------------------------------------------------------------------
class PreconditionFailed(StorageError):
    code = "PreconditionFailed"
    default_message = "At least one of the pre-conditions you specified did not hold"


class NotModified(StorageError):
    code = "NotModified"
    default_message = "Not Modified"

    def __init__(self, *, resource: str = "", etag: str = "", mtime_ns: int = 0) -> None:
        super().__init__(resource=resource)
        # A 304 still describes the representation (RFC 9110 section 15.4.5).
        self.etag = etag
        self.mtime_ns = mtime_ns


# --- authentication and authorization -------------------------------------------------------
class AuthError(StorageError):
    pass


class AccessDenied(AuthError):
    code = "AccessDenied"
    default_message = "Access Denied"


class ObjectLocked(AccessDenied):
    """A version its retention or legal hold protects (S3 answers 403 AccessDenied)."""

    code = "AccessDenied"
    default_message = "forbidden by object lock"


class InvalidAccessKeyId(AuthError):
    code = "InvalidAccessKeyId"
    default_message = "The AWS Access Key Id you provided does not exist in our records."


class SignatureDoesNotMatch(AuthError):
    code = "SignatureDoesNotMatch"
    default_message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method."
    )


class AuthorizationHeaderMalformed(AuthError):
    code = "AuthorizationHeaderMalformed"
    default_message = "The authorization header you provided is invalid."


class RequestTimeTooSkewed(AuthError):
    code = "RequestTimeTooSkewed"
    default_message = "The difference between the request time and the current time is too large."


class MissingSecurityHeader(AuthError):
    code = "MissingSecurityHeader"
    default_message = "Your request is missing a required header."


def from_os_error(exc: OSError) -> StorageError:
    """The one translation of an operating-system error: a full disk or quota is
    InsufficientStorage (the client may retry elsewhere or later), anything else is an
    InternalError that names the OS's reason, never a path."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage()
    return InternalError(f"I/O error: {exc.strerror}")
