"""DeleteObjects: up to 1000 keys in one request (what ``aws s3 rm --recursive`` sends)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDictProxy

from lightningstor.auth.access import AccessRequest
from lightningstor.blobs.checksums import BodyDigests
from lightningstor.errors import BadDigest, InvalidRequest, StorageError
from lightningstor.model import DeleteConditions
from lightningstor_server.s3.authorization import condition_context
from lightningstor_server.s3.body import small_body
from lightningstor_server.s3.context import S3Call, may_bypass_governance
from lightningstor_server.s3.documents import DeleteOutcome, DeleteResult, xml_response
from lightningstor_server.s3.errors import MalformedXML
from lightningstor_server.s3.headers import (
    CHECKSUM_PREFIX,
    body_expectations,
    delete_conditions,
)
from lightningstor_server.s3.sigv4 import UNSIGNED_PAYLOAD
from lightningstor_server.s3.xml import local_name, parse_request

MAX_KEYS_PER_REQUEST = 1000
# 1000 keys of up to 1024 bytes each, escaped, plus the XML around them.
MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Target:
    key: str
    version_id: str | None
    conditions: DeleteConditions = field(default_factory=DeleteConditions)


def parse_delete(body: bytes) -> tuple[list[_Target], bool]:
    """The keys to delete and the Quiet flag; MalformedXML for anything S3 would refuse."""
    root = parse_request(body, "Delete")
    targets: list[_Target] = []
    quiet = False
    for child in root:
        name = local_name(child.tag)
        if name == "Quiet":
            quiet = (child.text or "").strip().lower() == "true"
        elif name == "Object":
            fields = {local_name(c.tag): c.text or "" for c in child}
            if "Key" not in fields:
                raise MalformedXML()
            conditions = delete_conditions(
                fields.get("ETag"), fields.get("LastModifiedTime"), fields.get("Size")
            )
            targets.append(_Target(fields["Key"], fields.get("VersionId"), conditions))
        else:
            raise MalformedXML()
    if not targets or len(targets) > MAX_KEYS_PER_REQUEST:
        raise MalformedXML()
    return targets, quiet


def _check_integrity(headers: CIMultiDictProxy[str], body: bytes) -> None:
    """S3 requires Content-MD5 or an x-amz-checksum-* on DeleteObjects; botocore now sends only
    a CRC32 (S3-CLIENTS.md section 7). Verify whichever came."""
    expect = body_expectations(headers, UNSIGNED_PAYLOAD)
    given = {a: v for a, v in expect.checksums.items() if v is not None}
    if expect.md5_b64 is None and not given:
        raise InvalidRequest("Missing required header for this request: Content-MD5")
    digests = BodyDigests(tuple(given))
    digests.update(body)
    if expect.md5_b64 is not None and not hmac.compare_digest(expect.md5_b64, digests.md5_b64):
        raise BadDigest(resource="Content-MD5")
    computed = digests.checksums()
    for algorithm, value in given.items():
        if computed.get(algorithm) != value:
            raise BadDigest(resource=CHECKSUM_PREFIX + algorithm)


async def _delete_one(
    call: S3Call, target: _Target, context: Mapping[str, Sequence[str]]
) -> DeleteOutcome:
    action = "s3:DeleteObject" if target.version_id is None else "s3:DeleteObjectVersion"
    access = AccessRequest(
        action=action, bucket=call.endpoint.bucket, key=target.key, context=context
    )
    try:
        # Each key is authorized on its own, as S3 does: a policy may allow some keys only.
        await call.gateway.gatekeeper.check(call.caller, access)
        bypass = await may_bypass_governance(call, target.key)
        result = await call.store.delete_object(
            call.endpoint.bucket,
            target.key,
            version_id=target.version_id,
            bypass_governance=bypass,
            conditions=target.conditions,
        )
    except StorageError as error:
        return DeleteOutcome(target.key, target.version_id, code=error.code, message=error.message)
    marker = result.version_id if result.delete_marker else None
    return DeleteOutcome(target.key, target.version_id, delete_marker_version_id=marker)


async def handle_delete_objects(call: S3Call) -> web.StreamResponse:
    body = await small_body(call, MAX_BODY_BYTES)
    # Up to megabytes of XML: hashed and parsed on the pool, not on the loop.
    await call.gateway.io.run(_check_integrity, call.headers, body)
    targets, quiet = await call.gateway.io.run(parse_delete, body)
    await call.store.head_bucket(call.endpoint.bucket)
    context = condition_context(call.request, call.target, call.headers, call.caller)
    outcomes = [await _delete_one(call, target, context) for target in targets]
    # Quiet: only the failures are reported.
    return xml_response(DeleteResult([o for o in outcomes if o.code or not quiet]))
