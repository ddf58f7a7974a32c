"""Request bodies: streamed for objects, bounded and verified for small XML documents."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator

from lightningstor.errors import ContentSHA256Mismatch, MalformedXML, NotImplementedByServer
from lightningstor_server.s3.context import S3Call
from lightningstor_server.s3.sigv4 import UNSIGNED_PAYLOAD

# The loop hands the thread pool 1 MiB at a time: large enough that hashing and writing run at
# C speed, small enough that memory per request stays bounded whatever the object size.
BODY_CHUNK_BYTES = 1024 * 1024


def reject_streaming_payload(call: S3Call) -> None:
    """aws-chunked framing is not decoded yet: refuse it plainly, never as an auth error, and
    never store the framing as if it were the object."""
    encoding = call.request.headers.get("Content-Encoding", "")
    if call.auth.payload_hash.startswith("STREAMING-") or "aws-chunked" in encoding:
        raise NotImplementedByServer(
            "aws-chunked streaming uploads are not supported yet; send the payload unchunked "
            "(plain HTTP clients do so by default)."
        )


async def object_body(call: S3Call) -> AsyncIterator[bytes]:
    """The request body in chunks of up to BODY_CHUNK_BYTES (the core verifies its digests)."""
    content = call.request.content
    buffer = bytearray()
    while True:
        piece = await content.read(BODY_CHUNK_BYTES - len(buffer))
        if not piece:
            break
        buffer += piece
        if len(buffer) >= BODY_CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


async def small_body(call: S3Call, limit: int) -> bytes:
    """A whole small body (XML configuration), refused past ``limit`` and checked against the
    signed payload hash."""
    body = await call.request.content.read(limit + 1)
    if len(body) > limit:
        raise MalformedXML("The XML you provided was larger than the maximum allowed size.")
    declared = call.auth.payload_hash
    if declared != UNSIGNED_PAYLOAD:
        computed = hashlib.sha256(body).hexdigest()
        if not hmac.compare_digest(computed, declared):
            raise ContentSHA256Mismatch(
                extra={"ClientComputedContentSHA256": declared, "S3ComputedContentSHA256": computed}
            )
    return body
