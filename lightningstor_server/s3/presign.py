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
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl

from lightningstor.errors import (
    AccessDenied,
    AuthorizationQueryParametersError,
    InvalidAccessKeyId,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
)
from lightningstor_server.s3.headers import plain_number
from lightningstor_server.s3.sigv4 import (
    ALGORITHM,
    MAX_SKEW_SECONDS,
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
# Query parameters that are part of the resource a SigV2 signature covers (the S3 docs' list).
_V2_SUBRESOURCES = frozenset(
    {
        "acl", "delete", "lifecycle", "location", "logging", "notification", "partNumber",
        "policy", "requestPayment", "tagging", "torrent", "uploadId", "uploads", "versionId",
        "versioning", "versions", "website", "cors", "restore",
        "response-cache-control", "response-content-disposition", "response-content-encoding",
        "response-content-language", "response-content-type", "response-expires",
    }
)  # fmt: skip
AUTH_QUERY_PARAMETERS = frozenset((*V4_QUERY, "X-Amz-Expires", "X-Amz-Security-Token", *V2_QUERY))


def _query_pairs(raw_query: str) -> list[tuple[str, str]]:
    return parse_qsl(raw_query, keep_blank_values=True)


async def verify_presigned_v4(
    req: SignedRequest, lookup: SecretLookup, *, now: datetime | None = None
) -> AuthResult:
    """Raises AuthorizationQueryParametersError, AccessDenied (expired), InvalidAccessKeyId,
    SignatureDoesNotMatch."""
    params = dict(_query_pairs(req.raw_query))
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
    if plain_number(expires) is None:
        raise AuthorizationQueryParametersError("X-Amz-Expires should be a number")
    if int(expires) > MAX_PRESIGN_SECONDS:
        raise AuthorizationQueryParametersError(
            "X-Amz-Expires must be less than a week (in seconds) that is; 604800"
        )
    amz_date = params["X-Amz-Date"]
    signed_at = parse_amz_date(amz_date)
    if signed_at is None:
        raise AuthorizationQueryParametersError("X-Amz-Date must be in the ISO8601 Long Format")
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
    # The signature covers the query without itself, exactly as sent otherwise.
    unsigned_query = "&".join(
        item for item in req.raw_query.split("&") if not item.startswith("X-Amz-Signature=")
    )
    payload_hash = req.headers.get("x-amz-content-sha256", UNSIGNED_PAYLOAD)
    canonical = canonical_request(
        SignedRequest(
            method=req.method, raw_path=req.raw_path, raw_query=unsigned_query, headers=req.headers
        ),
        signed_headers,
        payload_hash,
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


def v2_string_to_sign(req: SignedRequest, expires_or_date: str) -> str:
    """``expires_or_date``: the Expires parameter (query auth) or the Date header (header auth;
    empty when an x-amz-date header stands in for it, which is then signed as an amz header)."""
    headers = req.headers
    amz = sorted(
        (name, " ".join(value.split()))
        for name, value in headers.items()
        if name.startswith("x-amz-")
    )
    return (
        "\n".join(
            [
                req.method,
                headers.get("content-md5", ""),
                headers.get("content-type", ""),
                expires_or_date,
                *(f"{name}:{value}" for name, value in amz),
            ]
        )
        + "\n"
        + _v2_resource(req)
    )


def _v2_resource(req: SignedRequest) -> str:
    """The canonicalized resource: the path as sent, plus the sub-resources, sorted."""
    subresources = sorted(
        (name, value) for name, value in _query_pairs(req.raw_query) if name in _V2_SUBRESOURCES
    )
    if not subresources:
        return req.raw_path
    rendered = "&".join(f"{name}={value}" if value else name for name, value in subresources)
    return f"{req.raw_path}?{rendered}"


async def verify_v2(
    req: SignedRequest, lookup: SecretLookup, *, now: float | None = None
) -> AuthResult:
    """SigV2 in the query (presigned) or in the Authorization header. Raises AccessDenied
    (expired, or a Date too far off), InvalidAccessKeyId, SignatureDoesNotMatch."""
    now = time.time() if now is None else now
    params = dict(_query_pairs(req.raw_query))
    if "Signature" in params:
        if any(p not in params for p in V2_QUERY) or plain_number(params["Expires"]) is None:
            raise AuthorizationQueryParametersError(
                "Query-string authentication requires the Signature, Expires and AWSAccessKeyId "
                "parameters"
            )
        if now > int(params["Expires"]):
            raise AccessDenied("Request has expired", extra={"Expires": params["Expires"]})
        key_id, signature, when = params["AWSAccessKeyId"], params["Signature"], params["Expires"]
    else:
        key_id, _, signature = req.headers.get("authorization", "")[4:].partition(":")
        when = "" if "x-amz-date" in req.headers else req.headers.get("date", "")
        _check_v2_date(req.headers, now)
    credential = await lookup(key_id)
    if credential is None or not credential.active:
        raise InvalidAccessKeyId(extra={"AWSAccessKeyId": key_id})
    to_sign = v2_string_to_sign(req, when)
    digest = hmac.new(
        credential.secret_access_key.encode(), to_sign.encode(), hashlib.sha1
    ).digest()
    if not signatures_match(base64.b64encode(digest).decode(), signature):
        raise SignatureDoesNotMatch(extra={"AWSAccessKeyId": key_id, "StringToSign": to_sign})
    return AuthResult(
        credential=credential,
        payload_hash=UNSIGNED_PAYLOAD,  # SigV2 signs no payload hash; Content-MD5 if any
        signature=signature,
        scope="",
        amz_date="",
        signing_key=b"",
    )


def _check_v2_date(headers: Mapping[str, str], now: float) -> None:
    value = headers.get("x-amz-date") or headers.get("date")
    try:
        stamp = parsedate_to_datetime(value or "").timestamp()
    except (TypeError, ValueError):
        raise AccessDenied(
            "AWS authentication requires a valid Date or x-amz-date header"
        ) from None
    if abs(now - stamp) > MAX_SKEW_SECONDS:
        raise RequestTimeTooSkewed(
            extra={"MaxAllowedSkewMilliseconds": str(MAX_SKEW_SECONDS * 1000)}
        )
