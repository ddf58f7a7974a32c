"""Request bodies: streamed for objects (plain or aws-chunked), bounded and verified for small
XML documents."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol
from xml.etree import ElementTree as ET

from lightningstor.errors import ContentSHA256Mismatch, InvalidRequest
from lightningstor.model import BodyExpectations, ContentHeaders
from lightningstor.offload import Offloader
from lightningstor_server.s3 import headers as h
from lightningstor_server.s3.chunked import (
    AwsChunkedDecoder,
    StreamingUpload,
    stored_content_encoding,
    streaming_upload,
)
from lightningstor_server.s3.context import S3Call
from lightningstor_server.s3.errors import MalformedXML, MissingContentLength
from lightningstor_server.s3.sigv4 import UNSIGNED_PAYLOAD
from lightningstor_server.s3.xml import fields_of, parse_request

# The loop hands the thread pool 1 MiB at a time: large enough that hashing and writing run at
# C speed, small enough that memory per request stays bounded whatever the object size.
BODY_CHUNK_BYTES = 1024 * 1024


class Readable(Protocol):
    """What is read of a request body (aiohttp's StreamReader, or a test double)."""

    async def read(self, n: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Upload:
    """An object body ready for the core: its bytes, what to verify them against and the
    representation headers to store with them."""

    chunks: AsyncIterator[bytes]
    expect: BodyExpectations
    headers: ContentHeaders


def object_upload(call: S3Call) -> Upload:
    """The body of a PutObject (or UploadPart), plain or aws-chunked.

    Everything the headers declare is checked here, before a byte of the body is read: a plain
    body needs Content-Length or HTTP chunked framing (aiohttp removes that framing); an
    aws-chunked one its decoded length, a known sentinel and, when it has no chunk signatures,
    a trailing checksum (see :mod:`.chunked`).
    """
    request, headers = call.request, call.headers
    expect = h.body_expectations(headers, call.auth.payload_hash)
    content = h.content_headers(headers)
    streaming = streaming_upload(headers, call.auth.payload_hash)
    if streaming is None:
        chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        if "Content-Length" not in headers and not chunked:
            raise MissingContentLength()
        stored = dataclasses.replace(
            content, content_encoding=stored_content_encoding(content.content_encoding)
        )
        return Upload(chunks=object_body(call), expect=expect, headers=stored)
    decoder = AwsChunkedDecoder(
        streaming,
        signer=call.auth.chunk_signer if streaming.framing.signed else None,
        seed_signature=call.auth.signature,
    )
    return Upload(
        chunks=decoded_body(request.content, decoder, call.gateway.io),
        expect=streaming_expectations(expect, streaming, decoder),
        # aws-chunked describes the transfer, not the object: S3 never stores it.
        headers=dataclasses.replace(content, content_encoding=streaming.content_encoding),
    )


def streaming_expectations(
    declared: BodyExpectations, streaming: StreamingUpload, decoder: AwsChunkedDecoder
) -> BodyExpectations:
    checksums = dict(declared.checksums)
    algorithm = streaming.trailer_algorithm
    if algorithm is not None:
        if any(value is not None for value in checksums.values()):
            raise InvalidRequest(
                "Expecting a single checksum: send it as an x-amz-checksum- header or as a "
                "trailer, not both."
            )
        # Computed while the body streams; its value is only known once the trailer has been
        # read, so the core fetches it then, before it commits.
        checksums = {algorithm: None}
    return dataclasses.replace(
        declared,
        sha256_hex=None,  # the header's hash is a STREAMING-* sentinel; chunks carry the proof
        checksums=checksums,
        size=streaming.decoded_length,
        late_checksums=decoder.trailer_checksums if algorithm is not None else None,
    )


async def object_body(call: S3Call) -> AsyncIterator[bytes]:
    """The request body in chunks of up to BODY_CHUNK_BYTES (the core verifies its digests)."""
    content = call.request.content
    # Pieces are joined once per chunk (a bytearray would copy every byte twice).
    pieces: list[bytes] = []
    held = 0
    while piece := await content.read(BODY_CHUNK_BYTES - held):
        pieces.append(piece)
        held += len(piece)
        if held >= BODY_CHUNK_BYTES:
            yield b"".join(pieces)
            pieces.clear()
            held = 0
    if pieces:
        yield b"".join(pieces)


async def decoded_body(
    content: Readable, decoder: AwsChunkedDecoder, offloader: Offloader | None
) -> AsyncIterator[bytes]:
    """The object bytes of an aws-chunked body, in chunks of up to BODY_CHUNK_BYTES.

    Memory stays O(BODY_CHUNK_BYTES): the framed body is read a bounded piece at a time and the
    decoder keeps at most one framing line. Decoding runs on the thread pool (``offloader``):
    signed framing hashes every byte, and a body of tiny chunks is many steps of Python, neither
    of which belongs on the event loop.
    """
    buffer = bytearray()
    while True:
        # Framing only ever shrinks what is read, so the buffer never passes BODY_CHUNK_BYTES.
        piece = await content.read(BODY_CHUNK_BYTES - len(buffer))
        if not piece:
            break
        if offloader is not None:
            decoded = await offloader.run(decoder.feed, piece)
        else:
            decoded = decoder.feed(piece)
        for part in decoded:
            buffer += part
        if len(buffer) >= BODY_CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    # Raises when the body ended early; the core then discards what it staged.
    decoder.finish()
    if buffer:
        yield bytes(buffer)


async def small_body(call: S3Call, limit: int) -> bytes:
    """A whole small body (XML configuration), refused past ``limit`` and checked against the
    signed payload hash (hashed on the pool: such bodies reach megabytes)."""
    body = bytearray()
    # One read returns what has arrived so far; a body split across TCP segments needs more.
    while piece := await call.request.content.read(limit + 1 - len(body)):
        body += piece
        if len(body) > limit:
            raise MalformedXML("The XML you provided was larger than the maximum allowed size.")
    declared = call.auth.payload_hash
    if declared != UNSIGNED_PAYLOAD:
        computed = await call.gateway.io.run(_sha256_hex, bytes(body))
        if not hmac.compare_digest(computed, declared):
            raise ContentSHA256Mismatch(
                extra={"ClientComputedContentSHA256": declared, "S3ComputedContentSHA256": computed}
            )
    return bytes(body)


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def request_document(call: S3Call, root: str, limit: int) -> dict[str, ET.Element]:
    """A small XML configuration body's top-level elements, by local name (MalformedXML)."""
    body = await small_body(call, limit)
    return fields_of(await call.gateway.io.run(parse_request, body, root))
