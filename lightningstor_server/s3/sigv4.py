"""AWS Signature Version 4 verification of S3 requests (header form).

Follows "Signature Version 4 signing process" of the AWS General Reference, with S3's rules:
the canonical URI is the request path, percent-decoded once and re-encoded per segment (no
double encoding, no dot-segment normalization); the canonical query is every parameter,
decoded and re-encoded; the payload hash is the ``x-amz-content-sha256`` value. Both are
rendered from the one parse of the target the router also reads (``target.py``), so what is
signed is what runs.
The signature is compared in constant time. The signing key, date and scope it was checked
with stay in the result, so the chunk and trailer signatures of an aws-chunked body (see
``chunked.py``) are verified with one HMAC each, chained from it.

This module is pure: it takes the parts of a request and a secret lookup, and returns who
signed it or raises an :mod:`lightningstor.errors` AuthError.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from lightningstor.auth.credentials import Credential
from lightningstor.errors import (
    AccessDenied,
    AuthorizationHeaderMalformed,
    InvalidAccessKeyId,
    InvalidRequest,
    MissingSecurityHeader,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
)
from lightningstor_server.s3.target import RequestTarget

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_SECONDS = 15 * 60
MISSING_DATE = "AWS authentication requires a valid Date or x-amz-date header"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# x-amz-content-sha256 sentinels of aws-chunked bodies ("sigv4-streaming.html" and
# "sigv4-streaming-trailers.html" of the S3 API reference).
STREAMING_PREFIX = "STREAMING-"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED = "STREAMING-UNSIGNED-PAYLOAD"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
_CHUNK_ALGORITHM = "AWS4-HMAC-SHA256-PAYLOAD"
_TRAILER_ALGORITHM = "AWS4-HMAC-SHA256-TRAILER"
EMPTY_SHA256_HEX = hashlib.sha256(b"").hexdigest()
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<sig>[0-9a-f]{64})\s*$"
)
_SPACES = re.compile(r"\s+")
# Characters AWS leaves unencoded (RFC 3986 unreserved).
_UNRESERVED = "-_.~"
# Text made only of these needs no encoding: the common case, checked before quote() runs.
_PLAIN = re.compile(r"[A-Za-z0-9\-_.~]*")
_PLAIN_PATH = re.compile(r"[A-Za-z0-9\-_.~/]*")
_AMZ_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")

SecretLookup = Callable[[str], Awaitable[Credential | None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedRequest:
    """The parts of an HTTP request that SigV4 covers."""

    method: str
    target: RequestTarget
    headers: Mapping[str, str]  # lowercase names; multi-values already joined by ','


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkSigner:
    """Signs (and so verifies) what follows the headers of an aws-chunked request: every chunk
    and the trailer, each chained to the signature before it, starting from the header's.

    It reuses the header signature's signing key, date and scope, so verifying a chunk costs
    one SHA-256 of its data and one HMAC, never a key derivation.
    """

    key: bytes = field(repr=False)
    amz_date: str
    scope: str

    def chunk_signature(self, previous_signature: str, chunk_sha256_hex: str) -> str:
        to_sign = "\n".join(
            (
                _CHUNK_ALGORITHM,
                self.amz_date,
                self.scope,
                previous_signature,
                EMPTY_SHA256_HEX,  # the chunk's (always empty) headers
                chunk_sha256_hex,
            )
        )
        return _hmac_hex(self.key, to_sign)

    def trailer_signature(self, previous_signature: str, trailer_sha256_hex: str) -> str:
        """``trailer_sha256_hex`` hashes the canonical trailer lines, each ``name:value\\n``."""
        to_sign = "\n".join(
            (_TRAILER_ALGORITHM, self.amz_date, self.scope, previous_signature, trailer_sha256_hex)
        )
        return _hmac_hex(self.key, to_sign)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthResult:
    credential: Credential | None  # None: an anonymous (unsigned) request
    payload_hash: str  # hex SHA-256, UNSIGNED-PAYLOAD or a STREAMING-* sentinel
    signature: str
    scope: str
    amz_date: str
    # Kept for the chunk signatures of an aws-chunked body; never logged.
    signing_key: bytes = field(repr=False)

    @property
    def chunk_signer(self) -> ChunkSigner:
        return ChunkSigner(key=self.signing_key, amz_date=self.amz_date, scope=self.scope)


@dataclass(frozen=True, slots=True, kw_only=True)
class _AuthHeader:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def _parse_authorization(value: str) -> _AuthHeader:
    match = _AUTH_RE.match(value.strip())
    if match is None:
        raise AuthorizationHeaderMalformed(
            "The authorization header is malformed; expected AWS4-HMAC-SHA256 Credential=..., "
            "SignedHeaders=..., Signature=..."
        )
    parts = match["cred"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or parts[3] != "s3":
        raise AuthorizationHeaderMalformed(
            "The authorization header is malformed; the Credential is mal-formed; expecting "
            '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
        )
    signed = tuple(match["signed"].split(";"))
    return _AuthHeader(
        access_key_id=parts[0],
        date=parts[1],
        region=parts[2],
        service=parts[3],
        signed_headers=signed,
        signature=match["sig"],
    )


def uri_encode(text: str, *, keep_slash: bool) -> str:
    if (_PLAIN_PATH if keep_slash else _PLAIN).fullmatch(text):
        return text
    return quote(text, safe=_UNRESERVED + ("/" if keep_slash else ""))


def canonical_uri(path: str) -> str:
    """``path`` is the decoded request path."""
    return uri_encode(path, keep_slash=True) or "/"


def canonical_query(params: Sequence[tuple[str, str]]) -> str:
    """``params`` are decoded (name, value) pairs."""
    pairs = sorted(
        (uri_encode(name, keep_slash=False), uri_encode(value, keep_slash=False))
        for name, value in params
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_request(
    req: SignedRequest,
    signed_headers: Sequence[str],
    payload_hash: str,
    *,
    params: Sequence[tuple[str, str]] | None = None,
) -> str:
    """``params`` replaces the target's query (a presigned URL signs all but its signature)."""
    lines = [
        req.method,
        canonical_uri(req.target.path),
        canonical_query(req.target.params if params is None else params),
    ]
    for name in signed_headers:
        lines.append(f"{name}:{_SPACES.sub(' ', req.headers.get(name, '').strip())}")
    return "\n".join([*lines, "", ";".join(signed_headers), payload_hash])


@functools.lru_cache(maxsize=256)  # one per key and day: four HMACs saved on every request
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _hmac_hex(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def signatures_match(expected: str, provided: str) -> bool:
    """Constant-time comparison, so a forger learns nothing from how long a refusal takes."""
    return hmac.compare_digest(expected.encode(), provided.encode())


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    # aiohttp decodes header bytes with surrogateescape; encoding the same way hashes exactly
    # the bytes the client signed, whatever they were.
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def parse_amz_date(value: str) -> datetime | None:
    """An ISO 8601 basic-format UTC time (``20261124T013000Z``), or None if it is not one.
    (strptime does the same at ten times the cost, on every signed request.)"""
    match = _AMZ_DATE.fullmatch(value)
    if match is None:
        return None
    try:
        year, month, day, hour, minute, second = map(int, match.groups())
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


def _amz_date_of(date_header: str | None) -> str:
    """The signing time a request without x-amz-date states in its Date header (SigV4 allows
    either; botocore signs with Date when the caller set one), in x-amz-date's format."""
    try:
        stated = parsedate_to_datetime(date_header or "")
    except (TypeError, ValueError):
        raise AccessDenied(MISSING_DATE) from None
    if stated.tzinfo is None:
        stated = stated.replace(tzinfo=UTC)
    return stated.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _parse_amz_date(value: str) -> datetime:
    parsed = parse_amz_date(value)
    if parsed is None:
        raise AccessDenied(MISSING_DATE)
    return parsed


def _check_payload_hash(value: str | None) -> str:
    if value is None:
        raise MissingSecurityHeader(
            "Missing required header for this request: x-amz-content-sha256"
        )
    if value == UNSIGNED_PAYLOAD or value.startswith(STREAMING_PREFIX) or _SHA256_HEX.match(value):
        return value
    raise InvalidRequest(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* value "
        "or a valid sha256 value."
    )


def check_all_signed(headers: Mapping[str, str], signed: tuple[str, ...]) -> None:
    """Every x-amz-* header (and Content-MD5) that is present must be signed, as AWS requires:
    otherwise whoever replays a signed request could add, say, an x-amz-copy-source to it."""
    unsigned = sorted(
        name
        for name in headers
        if (name.startswith("x-amz-") or name == "content-md5") and name not in signed
    )
    if unsigned:
        raise AccessDenied(
            "There were headers present in the request which were not signed",
            extra={"HeadersNotSigned": ", ".join(unsigned)},
        )


async def verify(
    req: SignedRequest, lookup: SecretLookup, *, now: datetime | None = None
) -> AuthResult:
    """Verify the request's SigV4 Authorization header; return the signer.

    Raises AccessDenied (no or unsupported authentication), AuthorizationHeaderMalformed,
    InvalidAccessKeyId, RequestTimeTooSkewed, SignatureDoesNotMatch, MissingSecurityHeader.
    """
    authorization = req.headers.get("authorization")
    if authorization is None:
        raise AccessDenied()
    if not authorization.startswith(ALGORITHM):
        raise InvalidRequest(
            "The authorization mechanism you have provided is not supported. "
            "Please use AWS4-HMAC-SHA256."
        )
    auth = _parse_authorization(authorization)
    amz_date = req.headers.get("x-amz-date") or _amz_date_of(req.headers.get("date"))
    request_time = _parse_amz_date(amz_date)
    now = now or datetime.now(UTC)
    if abs((now - request_time).total_seconds()) > MAX_SKEW_SECONDS:
        raise RequestTimeTooSkewed(
            extra={
                "RequestTime": amz_date,
                "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "MaxAllowedSkewMilliseconds": str(MAX_SKEW_SECONDS * 1000),
            }
        )
    if amz_date[:8] != auth.date:
        raise AuthorizationHeaderMalformed(
            f"The authorization header is malformed; Invalid credential date. Date is not the "
            f"same as X-Amz-Date: {auth.date}."
        )
    if "host" not in auth.signed_headers:
        raise AuthorizationHeaderMalformed("The host header must be signed.")
    check_all_signed(req.headers, auth.signed_headers)
    payload_hash = _check_payload_hash(req.headers.get("x-amz-content-sha256"))
    credential = await lookup(auth.access_key_id)
    if credential is None or not credential.active:
        raise InvalidAccessKeyId(extra={"AWSAccessKeyId": auth.access_key_id})
    canonical = canonical_request(req, auth.signed_headers, payload_hash)
    to_sign = string_to_sign(amz_date, auth.scope, canonical)
    key = signing_key(credential.secret_access_key, auth.date, auth.region, auth.service)
    expected = _hmac_hex(key, to_sign)
    if not signatures_match(expected, auth.signature):
        raise SignatureDoesNotMatch(
            extra={
                "AWSAccessKeyId": auth.access_key_id,
                "StringToSign": to_sign,
                "SignatureProvided": auth.signature,
                "CanonicalRequest": canonical,
            }
        )
    return AuthResult(
        credential=credential,
        payload_hash=payload_hash,
        signature=auth.signature,
        scope=auth.scope,
        amz_date=amz_date,
        signing_key=key,
    )
