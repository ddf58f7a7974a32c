"""POST Object: browser form uploads authorized by a signed policy document (V4 and V2).

The form's fields come first and the ``file`` part last; fields are read with a bound on their
size, the file is streamed into the store like any PUT body. The request carries no
Authorization header: the policy (base64 JSON with an expiration and conditions) is what was
signed, and every condition is enforced, as is S3's rule that each form field must be named
by a condition (``policy``, the signature fields, ``file`` and ``x-ignore-*`` aside).

Bad input is a client error with S3's code, never an internal one: a body that is not
well-formed multipart/form-data is MalformedPOSTRequest, a policy that is not a valid policy
document is InvalidPolicyDocument. Signature failures go through the same failed-auth policy as
every other way in (``ratelimit.py``). The bucket a ``{"bucket": ...}`` condition is checked
against is the bucket of the URL, which is the bucket written, whatever the form says.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import BadHttpMessage

from lightningstor.auth.access import AccessRequest
from lightningstor.auth.credentials import Credential
from lightningstor.errors import (
    AccessDenied,
    AuthError,
    EntityTooLarge,
    EntityTooSmall,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidRequest,
    SignatureDoesNotMatch,
)
from lightningstor.model import DEFAULT_CONTENT_TYPE, ContentHeaders
from lightningstor_server.ratelimit import FailedAuthLimiter
from lightningstor_server.s3.body import BODY_CHUNK_BYTES
from lightningstor_server.s3.context import Gateway
from lightningstor_server.s3.documents import PostResponse, xml_response
from lightningstor_server.s3.errors import InvalidPolicyDocument, MalformedPOSTRequest
from lightningstor_server.s3.headers import META_PREFIX
from lightningstor_server.s3.router import Endpoint
from lightningstor_server.s3.sigv4 import SecretLookup, signatures_match, signing_key

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 64
# Fields a policy need not mention (S3's POST Object rules).
_EXEMPT = frozenset(
    {"policy", "x-amz-signature", "signature", "awsaccesskeyid", "file", "x-amz-security-token"}
)  # (x-amz-algorithm/-credential/-date must be in a V4 policy, as boto3 puts them)


@dataclass(frozen=True, slots=True)
class _Form:
    fields: dict[str, str]  # lowercase names
    file: BodyPartReader
    filename: str


# What aiohttp's multipart reader raises for a body that is not multipart/form-data as sent:
# no or a bad boundary, a boundary that never comes, a bad part header (no colon, a NUL, a line
# over its limit), a body cut short.
_FORM_ERRORS = (ValueError, BadHttpMessage, RuntimeError, EOFError)


async def _read_form(request: web.Request) -> _Form:
    if not request.content_type.startswith("multipart/form-data"):
        raise InvalidRequest("POST requires a multipart/form-data body.")
    try:
        return await _read_fields(request)
    except _FORM_ERRORS as exc:
        raise MalformedPOSTRequest(f"{MalformedPOSTRequest.default_message} ({exc})") from None


async def _read_fields(request: web.Request) -> _Form:
    reader = await request.multipart()
    fields: dict[str, str] = {}
    for _ in range(MAX_FIELDS + 1):
        part = await reader.next()
        if part is None:
            raise InvalidArgument(
                "POST requires exactly one file upload per request.", resource="file"
            )
        if not isinstance(part, BodyPartReader) or part.name is None:
            raise MalformedPOSTRequest("A form part has no name.")
        if part.name.lower() == "file":
            return _Form(fields=fields, file=part, filename=part.filename or "")
        fields[part.name.lower()] = await _read_field(part)
    raise InvalidArgument("Too many form fields.")


async def _read_field(part: BodyPartReader) -> str:
    value = bytearray()
    while chunk := await part.read_chunk(MAX_FIELD_BYTES + 1 - len(value)):
        value += chunk
        if len(value) > MAX_FIELD_BYTES:
            raise InvalidArgument(
                f"The form field {part.name} is too large.", resource=part.name or ""
            )
    return value.decode("utf-8", "replace")


async def _authorize(
    request: web.Request, gateway: Gateway, credential: Credential, bucket: str, key: str
) -> None:
    """s3:PutObject on the key the form names, as any upload is authorized."""
    context = {"aws:SourceIp": [request.remote or ""]}
    access = AccessRequest(action="s3:PutObject", bucket=bucket, key=key, context=context)
    await gateway.gatekeeper.check(credential.caller, access)


def _policy(fields: Mapping[str, str]) -> dict[str, Any]:
    try:
        policy = json.loads(base64.b64decode(fields["policy"], validate=True))
    except (KeyError, ValueError, binascii.Error):
        raise InvalidPolicyDocument("Invalid Policy: Invalid JSON.", resource="policy") from None
    if not isinstance(policy, dict) or "expiration" not in policy or "conditions" not in policy:
        raise InvalidPolicyDocument(
            "Invalid Policy: expiration and conditions are required.", resource="policy"
        )
    if not isinstance(policy["conditions"], list):
        raise InvalidPolicyDocument("Invalid Policy: conditions must be a list.", resource="policy")
    return policy


async def _authenticate(fields: Mapping[str, str], lookup: SecretLookup) -> Credential:
    """Check the policy's signature, V4 (x-amz-*) or V2 (AWSAccessKeyId, signature)."""
    policy_b64 = fields.get("policy", "")
    if "x-amz-signature" in fields:
        parts = fields.get("x-amz-credential", "").split("/")
        if fields.get("x-amz-algorithm") != "AWS4-HMAC-SHA256" or len(parts) != 5:
            raise InvalidArgument(
                "Invalid x-amz-credential or x-amz-algorithm.", resource="x-amz-credential"
            )
        key_id = parts[0]
        credential = await _credential(key_id, lookup)
        key = signing_key(credential.secret_access_key, parts[1], parts[2], parts[3])
        expected = hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()
        provided = fields["x-amz-signature"]
    elif "signature" in fields:
        key_id = fields.get("awsaccesskeyid", "")
        credential = await _credential(key_id, lookup)
        digest = hmac.new(credential.secret_access_key.encode(), policy_b64.encode(), hashlib.sha1)
        expected = base64.b64encode(digest.digest()).decode()
        provided = fields["signature"]
    else:
        raise AccessDenied("Anonymous POST uploads are not allowed.")
    if not signatures_match(expected, provided):
        raise SignatureDoesNotMatch(extra={"AWSAccessKeyId": key_id})
    return credential


async def _credential(key_id: str, lookup: SecretLookup) -> Credential:
    credential = await lookup(key_id)
    if credential is None or not credential.active:
        raise InvalidAccessKeyId(extra={"AWSAccessKeyId": key_id})
    return credential


def _triple(condition: Any) -> tuple[str, Any, Any]:
    """A condition as (operator, subject, value); ``{"f": v}`` is ``["eq", "$f", v]``."""
    if isinstance(condition, dict) and len(condition) == 1:
        ((name, value),) = condition.items()
        return "eq", f"${name}", value
    if not isinstance(condition, list) or len(condition) != 3:
        raise InvalidPolicyDocument("Invalid Policy: Invalid condition.", resource="policy")
    return str(condition[0]).lower(), condition[1], condition[2]


def _length_range(low: Any, high: Any) -> tuple[int, int]:
    """A content-length-range's bounds: whole numbers, 0 <= low <= high."""
    if not all(_whole_number(bound) for bound in (low, high)) or not 0 <= int(low) <= int(high):
        raise InvalidPolicyDocument(
            "Invalid Policy: content-length-range takes two whole numbers, low <= high.",
            resource="policy",
        )
    return int(low), int(high)


def _whole_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19


def _check_expiration(policy: Mapping[str, Any]) -> None:
    try:
        expires = datetime.fromisoformat(str(policy["expiration"]).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(
            "Invalid Policy: Invalid 'expiration' value.", resource="policy"
        ) from None
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    if datetime.now(UTC) > expires:
        raise AccessDenied("Invalid according to Policy: Policy expired.")


def _check_conditions(policy: Mapping[str, Any], fields: Mapping[str, str]) -> tuple[int, int]:
    """Enforce expiration and every condition; returns the allowed content-length range."""
    _check_expiration(policy)
    covered: set[str] = set()
    size_range = (0, 5 * 1024**3)
    for op, subject, value in map(_triple, policy["conditions"]):
        if op == "content-length-range":
            size_range = _length_range(subject, value)
            continue
        if not isinstance(subject, str) or not isinstance(value, str):
            raise InvalidPolicyDocument(
                "Invalid Policy: a condition's field and value must be strings.",
                resource="policy",
            )
        name = subject.lstrip("$").lower()
        covered.add(name)
        actual = fields.get(name, "")
        if op not in ("eq", "starts-with"):
            raise InvalidPolicyDocument(
                f"Invalid Policy: Invalid condition operator {op!r}.", resource="policy"
            )
        if not (actual == value if op == "eq" else actual.startswith(value)):
            raise AccessDenied(
                f'Invalid according to Policy: Policy Condition failed: ["{op}", "{subject}", '
                f'"{value}"]'
            )
    extra = sorted(
        name
        for name in fields
        if name not in covered and name not in _EXEMPT and not name.startswith("x-ignore-")
    )
    if extra:
        raise AccessDenied(f"Invalid according to Policy: Extra input fields: {extra[0]}")
    return size_range


async def _file_body(part: BodyPartReader, low: int, high: int) -> AsyncIterator[bytes]:
    size = 0
    while chunk := await _read_file_chunk(part):
        size += len(chunk)
        if size > high:
            raise EntityTooLarge(extra={"MaxSizeAllowed": str(high)})
        yield chunk
    if size < low:  # before the core commits: the body is not over until this returns
        raise EntityTooSmall(extra={"MinSizeAllowed": str(low), "ProposedSize": str(size)})


async def _read_file_chunk(part: BodyPartReader) -> bytes:
    try:
        return await part.read_chunk(BODY_CHUNK_BYTES)
    except _FORM_ERRORS as exc:  # the file part's closing boundary never came
        raise MalformedPOSTRequest(f"{MalformedPOSTRequest.default_message} ({exc})") from None


async def handle_post_object(
    request: web.Request,
    endpoint: Endpoint,
    gateway: Gateway,
    lookup: SecretLookup,
    limiter: FailedAuthLimiter,
) -> web.StreamResponse:
    form = await _read_form(request)
    fields = form.fields
    try:
        credential = await _authenticate(fields, lookup)
    except AuthError as error:
        claimed = fields.get("awsaccesskeyid") or fields.get("x-amz-credential", "").split("/")[0]
        raise limiter.refuse(
            error, door="s3", source=request.remote or "-", key_id=claimed
        ) from error
    # The bucket a {"bucket": ...} condition is checked against is the bucket written: the
    # URL's. A form field naming another bucket is not believed.
    fields["bucket"] = endpoint.bucket
    low, high = _check_conditions(_policy(fields), fields)
    key = fields.get("key", "").replace("${filename}", form.filename)
    if not key:
        raise InvalidArgument("Bucket POST must contain a field named 'key'.", resource="key")
    await _authorize(request, gateway, credential, endpoint.bucket, key)
    headers = ContentHeaders(
        content_type=fields.get("content-type") or DEFAULT_CONTENT_TYPE,
        content_disposition=fields.get("content-disposition", ""),
        cache_control=fields.get("cache-control", ""),
        content_encoding=fields.get("content-encoding", ""),
        expires=fields.get("expires", ""),
    )
    metadata = {n[len(META_PREFIX) :]: v for n, v in fields.items() if n.startswith(META_PREFIX)}
    head = await gateway.store.put_object(
        endpoint.bucket,
        key,
        _file_body(form.file, low, high),
        headers=headers,
        user_metadata=metadata,
    )
    etag = f'"{head.etag}"'
    status = fields.get("success_action_status", "204")
    if status == "201":
        result = PostResponse(endpoint.bucket, key, head.etag)
        return xml_response(result, status=201, headers={"ETag": etag})
    return web.Response(status=200 if status == "200" else 204, headers={"ETag": etag})
