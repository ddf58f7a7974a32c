"""Which of S3's four ways in a request uses (SigV4 or SigV2, header or query): exactly one."""

from __future__ import annotations

import re
from collections.abc import Mapping

from lightningstor.errors import AccessDenied, InvalidArgument
from lightningstor_server.s3.presign import verify_presigned_v4, verify_v2
from lightningstor_server.s3.sigv4 import (
    STREAMING_UNSIGNED_TRAILER,
    UNSIGNED_PAYLOAD,
    AuthResult,
    SecretLookup,
    SignedRequest,
    verify,
)
from lightningstor_server.s3.target import RequestTarget

_V4_QUERY_NAMES = frozenset({"X-Amz-Signature", "X-Amz-Algorithm", "X-Amz-Credential"})
_V2_QUERY_NAMES = frozenset({"Signature", "AWSAccessKeyId"})
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
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


def anonymous(headers: Mapping[str, str]) -> AuthResult:
    """An unsigned request: nobody's. Its body is checked against the x-amz-content-sha256 it
    declares (integrity, not identity); a signed aws-chunked body cannot be, without a key."""
    declared = headers.get("x-amz-content-sha256", UNSIGNED_PAYLOAD)
    if declared.startswith("STREAMING-") and declared != STREAMING_UNSIGNED_TRAILER:
        raise AccessDenied("A signed aws-chunked body needs a signed request.")
    payload = declared if _SHA256_HEX.fullmatch(declared) else UNSIGNED_PAYLOAD
    if declared == STREAMING_UNSIGNED_TRAILER:
        payload = declared
    return AuthResult(
        credential=None, payload_hash=payload, signature="", scope="", amz_date="", signing_key=b""
    )


def claims_a_signature(has_authorization: bool, target: RequestTarget) -> bool:
    names = {name for name, _ in target.params}
    return has_authorization or not names.isdisjoint(_V4_QUERY_NAMES | _V2_QUERY_NAMES)


def claimed_key_id(req: SignedRequest) -> str:
    """The access key id a request says it is signed by ("" if it names none)."""
    params = dict(req.target.params)
    claimed = params.get("AWSAccessKeyId") or params.get("X-Amz-Credential", "").split("/")[0]
    if claimed:
        return claimed
    match = _HEADER_KEY_ID.match(req.headers.get("authorization", ""))
    return (match[1] or match[2]) if match else ""
