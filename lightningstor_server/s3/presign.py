"""Query-string (presigned URL) authentication, SigV4 and SigV2, and SigV2 header auth.

The installed aws-cli and boto3 presign with SigV2 when the region is us-east-1 (and with SigV4
elsewhere), so both are accepted (S3-CLIENTS.md section 8):

- SigV4 query: ``X-Amz-Algorithm/Credential/Date/Expires/SignedHeaders/Signature``; the
  canonical request is built as for header auth, from the query without ``X-Amz-Signature``,
  with an UNSIGNED-PAYLOAD hash; valid from X-Amz-Date for X-Amz-Expires seconds (at most 7
  days).
- SigV2 (AWS Signature Version 2, "HMAC-SHA1 over VERB, Content-MD5, Content-Type, Date or
  Expires, canonicalized x-amz- headers and resource"): as a query (``AWSAccessKeyId``,
  ``Expires``, ``Signature``) or as ``Authorization: AWS <key>:<signature>``.

Signatures are compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from lightningstor.errors import (
    AccessDenied,
    InvalidAccessKeyId,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
)
from lightningstor_server.s3.errors import AuthorizationQueryParametersError
from lightningstor_server.s3.params import plain_number
from lightningstor_server.s3.sigv4 import (
    ALGORITHM,
    MAX_SKEW_SECONDS,
    MISSING_DATE,
    UNSIGNED_PAYLOAD,
    AuthResult,
    SecretLookup,
    SignedRequest,
    canonical_request,
    check_all_signed,
    parse_amz_date,
    signatures_match,
    signing_key,
    string_to_sign,
)

MAX_PRESIGN_SECONDS = 7 * 24 * 3600
V4_QUERY = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
V2_QUERY = ("AWSAccessKeyId", "Signature", "Expires")
# Query parameters that are part of the resource a SigV2 signature covers: the S3 docs' list
# and what botocore's HmacV1Auth adds to it (its QSAOfInterest), so both sign the same string.
_V2_SUBRESOURCES = frozenset(
    {
        "accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete", "inventory",
        "lifecycle", "location", "logging", "metrics", "notification", "object-lock",
        "partNumber", "policy", "replication", "requestPayment", "restore", "select",
        "select-type", "storageClass", "tagging", "torrent", "uploadId", "uploads", "versionId",
        "versioning", "versions", "website",
        "response-cache-control", "response-content-disposition", "response-content-encoding",
        "response-content-language", "response-content-type", "response-expires",
    }
)  # fmt: skip
# What SigV2 leaves unsigned by AWS's rules: parameters that page or filter a listing, and the
# SDKs' operation label. Every other parameter of a SigV2 request must be a signed sub-resource
# above, or the request is refused: one that selects an operation (``encryption``, say) and is
# not signed could be appended to a signed URL and served.
V2_UNSIGNED_PARAMETERS = frozenset(
    {
        "prefix", "delimiter", "marker", "max-keys", "encoding-type", "list-type",
        "continuation-token", "start-after", "fetch-owner", "key-marker", "version-id-marker",
        "upload-id-marker", "max-uploads", "part-number-marker", "max-parts", "max-buckets",
        "bucket-region", "x-id",
    }
)  # fmt: skip
AUTH_QUERY_PARAMETERS = frozenset((*V4_QUERY, "X-Amz-Expires", "X-Amz-Security-Token", *V2_QUERY))
_AUTH_NAMES = frozenset(name.lower() for name in AUTH_QUERY_PARAMETERS)


def is_query_header(name: str) -> bool:
    """Whether a query parameter is a header in disguise: presigners move the headers a URL
    must carry into its query (botocore's SigV2 presigner Content-Type, Content-MD5 and
    x-amz-*; the JavaScript v3 one X-Amz-Content-Sha256, x-amz-checksum-*...), where a browser
    link can carry them. They are applied as those headers, and signed as such (SigV4: in the
    canonical query; SigV2: as the headers they stand for)."""
    lowered = name.lower()
    if lowered in _AUTH_NAMES:
        return False
    return lowered.startswith("x-amz-") or lowered in ("content-type", "content-md5")


def query_headers(params: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The headers a request carries in its query (lowercase names)."""
    return {name.lower(): value for name, value in params if is_query_header(name)}


async def verify_presigned_v4(
    req: SignedRequest, lookup: SecretLookup, *, now: datetime | None = None
) -> AuthResult:
    """Raises AuthorizationQueryParametersError, AccessDenied (expired), InvalidAccessKeyId,
    SignatureDoesNotMatch."""
    params = dict(req.target.params)
    if params.get("X-Amz-Algorithm") != ALGORITHM or any(p not in params for p in V4_QUERY):
        raise AuthorizationQueryParametersError(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
            "X-Amz-Expires parameters."
        )
    parts = params["X-Amz-Credential"].split("/")
    expires = params.get("X-Amz-Expires", "")
    if len(parts) != 5 or parts[3] != "s3" or parts[4] != "aws4_request":
        raise AuthorizationQueryParametersError("Error parsing the X-Amz-Credential parameter.")
    if plain_number(expires.removeprefix("-")) is None:
        raise AuthorizationQueryParametersError("X-Amz-Expires should be a number")
    # A negative lifetime (boto3's ExpiresIn=-1000) is a URL that expired before it was made:
    # 403 "Request has expired" below, as S3 answers it.
    if int(expires) > MAX_PRESIGN_SECONDS:
        raise AuthorizationQueryParametersError(
            "X-Amz-Expires must be less than a week (in seconds) that is; 604800"
        )
    amz_date = params["X-Amz-Date"]
    signed_at = parse_amz_date(amz_date)
    if signed_at is None:
        raise AuthorizationQueryParametersError("X-Amz-Date must be in the ISO8601 Long Format")
    if amz_date[:8] != parts[1]:
        # The scope's date keys the signature; AWS requires it to be X-Amz-Date's day.
        raise AuthorizationQueryParametersError(
            f'Invalid credential date "{parts[1]}". This date is not the same as X-Amz-Date: '
            f'"{amz_date[:8]}".'
        )
    now = now or datetime.now(UTC)
    age = (now - signed_at).total_seconds()
    if age > int(expires):
        raise AccessDenied(
            "Request has expired", extra={"X-Amz-Expires": expires, "Expires": amz_date}
        )
    if age < -MAX_SKEW_SECONDS:
        raise AccessDenied("Request is not valid yet")
    signed_headers = tuple(params["X-Amz-SignedHeaders"].split(";"))
    check_all_signed(req.headers, signed_headers)
    credential = await lookup(parts[0])
    if credential is None or not credential.active:
        raise InvalidAccessKeyId(extra={"AWSAccessKeyId": parts[0]})
    # The signature covers every parameter but itself.
    payload_hash = req.headers.get("x-amz-content-sha256", UNSIGNED_PAYLOAD)
    canonical = canonical_request(
        req, signed_headers, payload_hash, params=req.target.without("X-Amz-Signature")
    )
    scope = "/".join(parts[1:])
    to_sign = string_to_sign(amz_date, scope, canonical)
    key = signing_key(credential.secret_access_key, parts[1], parts[2], parts[3])
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not signatures_match(expected, params["X-Amz-Signature"]):
        raise SignatureDoesNotMatch(
            extra={
                "AWSAccessKeyId": parts[0],
                "StringToSign": to_sign,
                "CanonicalRequest": canonical,
            }
        )
    return AuthResult(
        credential=credential,
        payload_hash=payload_hash,
        signature=params["X-Amz-Signature"],
        scope=scope,
        amz_date=amz_date,
        signing_key=key,
    )


def v2_strings_to_sign(req: SignedRequest, expires_or_date: str) -> list[str]:
    """What a SigV2 signature may sign for ``req``: one string, or two for a bucket-level
    request (see :func:`_v2_resources`). ``expires_or_date``: the Expires parameter (query
    auth) or the Date header (header auth; empty when an x-amz-date header stands in for it,
    which is then signed as an amz header)."""
    headers = {**req.headers, **query_headers(req.target.params)}  # what botocore signed
    amz = sorted(
        (name, " ".join(value.split()))
        for name, value in headers.items()
        if name.startswith("x-amz-")
    )
    lines = [
        req.method,
        headers.get("content-md5", ""),
        headers.get("content-type", ""),
        expires_or_date,
        *(f"{name}:{value}" for name, value in amz),
    ]
    head = "\n".join(lines) + "\n"
    return [head + resource for resource in _v2_resources(req)]


def _v2_resources(req: SignedRequest) -> list[str]:
    """The canonicalized resource: the raw path in path-style form (AWS: "/bucket" first for a
    virtual-hosted request, so a signature names its bucket whatever the Host), plus the
    sub-resources, sorted. A bucket's own resource is "/bucket/" as botocore signs it, or
    "/bucket" as the path-style request has it: both name the same bucket and nothing else.
    Raises AccessDenied for a parameter SigV2 cannot cover."""
    target = req.target
    subresources = []
    for name, value in target.params:
        if name in _V2_SUBRESOURCES:
            subresources.append((name, value))
        elif not (
            name in V2_UNSIGNED_PARAMETERS
            or name in AUTH_QUERY_PARAMETERS
            or is_query_header(name)  # signed as the header it stands for
        ):
            raise AccessDenied(
                f"The query parameter {name!r} is not covered by a Signature Version 2 "
                "signature; sign this request with Signature Version 4.",
                resource=name,
            )
    subresources.sort()
    rendered = "&".join(f"{name}={value}" if value else name for name, value in subresources)
    query = f"?{rendered}" if rendered else ""
    path = target.routed_raw_path
    paths = [path + "/", path] if path.count("/") == 1 and path != "/" else [path]
    return [p + query for p in paths]


async def verify_v2(
    req: SignedRequest, lookup: SecretLookup, *, now: float | None = None
) -> AuthResult:
    """SigV2 in the query (presigned) or in the Authorization header. Raises AccessDenied
    (expired, or a Date too far off), InvalidAccessKeyId, SignatureDoesNotMatch."""
    now = time.time() if now is None else now
    params = dict(req.target.params)
    if "Signature" in params:
        if any(p not in params for p in V2_QUERY) or plain_number(params["Expires"]) is None:
            raise AuthorizationQueryParametersError(
                "Query-string authentication requires the Signature, Expires and AWSAccessKeyId "
                "parameters"
            )
        if now > int(params["Expires"]):
            raise AccessDenied("Request has expired", extra={"Expires": params["Expires"]})
        if int(params["Expires"]) - now > MAX_PRESIGN_SECONDS:
            # SigV4's limit (a week), for SigV2 too: a URL must not grant access for ever.
            raise AuthorizationQueryParametersError(
                "Expires must be at most a week (604800 seconds) from now."
            )
        key_id, signature, when = params["AWSAccessKeyId"], params["Signature"], params["Expires"]
    else:
        key_id, _, signature = req.headers.get("authorization", "")[4:].partition(":")
        when = "" if "x-amz-date" in req.headers else req.headers.get("date", "")
        _check_v2_date(req.headers, now)
    credential = await lookup(key_id)
    if credential is None or not credential.active:
        raise InvalidAccessKeyId(extra={"AWSAccessKeyId": key_id})
    candidates = v2_strings_to_sign(req, when)
    secret = credential.secret_access_key.encode()
    if not any(
        signatures_match(_v2_signature(secret, to_sign), signature) for to_sign in candidates
    ):
        raise SignatureDoesNotMatch(extra={"AWSAccessKeyId": key_id, "StringToSign": candidates[0]})
    return AuthResult(
        credential=credential,
        payload_hash=UNSIGNED_PAYLOAD,  # SigV2 signs no payload hash; Content-MD5 if any
        signature=signature,
        scope="",
        amz_date="",
        signing_key=b"",
    )


def _v2_signature(secret: bytes, to_sign: str) -> str:
    return base64.b64encode(hmac.new(secret, to_sign.encode(), hashlib.sha1).digest()).decode()


def _check_v2_date(headers: Mapping[str, str], now: float) -> None:
    value = headers.get("x-amz-date") or headers.get("date")
    try:
        stamp = parsedate_to_datetime(value or "").timestamp()
    except (TypeError, ValueError):
        raise AccessDenied(MISSING_DATE) from None
    if abs(now - stamp) > MAX_SKEW_SECONDS:
        raise RequestTimeTooSkewed(
            extra={"MaxAllowedSkewMilliseconds": str(MAX_SKEW_SECONDS * 1000)}
        )
