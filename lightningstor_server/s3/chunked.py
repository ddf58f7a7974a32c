"""aws-chunked request bodies: the framing S3 clients stream uploads in, with a signature per
chunk and/or a checksum after the last one (S3 API reference, "sigv4-streaming.html" and
"sigv4-streaming-trailers.html"; botocore's ``AwsChunkedWrapper`` for the unsigned form).

    <hex size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n     once per chunk
    0[;chunk-signature=<sig>]\\r\\n                         the final, empty chunk
    [<trailer name>:<value>\\r\\n]                          only with a ...-TRAILER sentinel
    [x-amz-trailer-signature:<sig>\\r\\n]                   only with the signed ...-TRAILER one
    \\r\\n

Three sentinels in ``x-amz-content-sha256`` are accepted:

- ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``: every chunk signed, each signature chained to the one
  before it, starting from the header signature (the "seed");
- ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER``: the same, then a signed trailer;
- ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` (what boto3 and the aws-cli send over HTTPS): no
  signatures at all, so the trailing ``x-amz-checksum-<alg>`` is the body's only integrity check
  and is always required.

The decoder is sans-I/O: it is fed the framed bytes in pieces of any size (down to one byte),
returns the object's bytes as they pass, and holds at most one framing line besides. Data may
reach the core before its chunk's signature is checked: nothing commits until the body is
exhausted, and a failed check ends the body with an error, which discards the staged bytes.

Framing errors are 400s (InvalidRequest, or IncompleteBody when the body ends early or its
length is wrong), never auth errors: only a well-formed chunk whose signature differs gets
SignatureDoesNotMatch.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from lightningstor.blobs.checksums import SUPPORTED_ALGORITHMS
from lightningstor.errors import (
    IncompleteBody,
    InvalidArgument,
    InvalidRequest,
    SignatureDoesNotMatch,
)
from lightningstor_server.s3.errors import MissingContentLength, NotImplementedByServer
from lightningstor_server.s3.sigv4 import (
    STREAMING_PREFIX,
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED,
    STREAMING_UNSIGNED_TRAILER,
    UNSIGNED_PAYLOAD,
    ChunkSigner,
    signatures_match,
)

AWS_CHUNKED = "aws-chunked"
CHECKSUM_PREFIX = "x-amz-checksum-"
TRAILER_SIGNATURE = "x-amz-trailer-signature"
# A chunk header is at most 16 hex digits and one 64-digit signature (~100 bytes); a trailer
# line is a header name and a base64 digest. 4 KiB leaves room for extensions other clients add
# while keeping what a client can make us buffer per line small. The trailer has at most two
# lines (the declared checksum, then its signature): anything else is refused as it arrives.
MAX_LINE_BYTES = 4096
_HEX_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_SIGNATURE = re.compile(rb"[0-9a-f]{64}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class Framing(enum.Enum):
    SIGNED = STREAMING_SIGNED
    SIGNED_TRAILER = STREAMING_SIGNED_TRAILER
    UNSIGNED_TRAILER = STREAMING_UNSIGNED_TRAILER

    @property
    def signed(self) -> bool:
        return self is not Framing.UNSIGNED_TRAILER

    @property
    def has_trailer(self) -> bool:
        return self is not Framing.SIGNED


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamingUpload:
    """What the headers of an aws-chunked request declare about its body."""

    framing: Framing
    decoded_length: int  # the object's size, from x-amz-decoded-content-length
    trailer: str | None  # the trailing checksum header named by x-amz-trailer, lower case
    content_encoding: str  # Content-Encoding without aws-chunked: what the object stores

    @property
    def trailer_algorithm(self) -> str | None:
        return self.trailer[len(CHECKSUM_PREFIX) :] if self.trailer else None


def streaming_upload(headers: Mapping[str, str], payload_hash: str) -> StreamingUpload | None:
    """The aws-chunked declaration of a request, or None when its body is plain.

    A request is aws-chunked when its Content-Encoding lists ``aws-chunked`` or its
    ``x-amz-content-sha256`` is a ``STREAMING-*`` sentinel: some SDKs send only one of the two.
    But a body signed by its own SHA-256, with no decoded length, is plain whatever its
    Content-Encoding says (boto3 sends ``ContentEncoding="aws-chunked"`` so when a caller asks
    for it); :func:`stored_content_encoding` then keeps aws-chunked out of what is stored.
    Raises InvalidRequest, NotImplemented, MissingContentLength or InvalidArgument for a
    declaration that cannot be decoded safely.
    """
    encodings = [part.strip() for part in headers.get("Content-Encoding", "").split(",")]
    chunked = any(part.lower() == AWS_CHUNKED for part in encodings)
    if not payload_hash.startswith(STREAMING_PREFIX) and (
        not chunked
        or (_SHA256_HEX.fullmatch(payload_hash) and "x-amz-decoded-content-length" not in headers)
    ):
        return None
    trailer = _declared_trailer(headers.get("x-amz-trailer"))
    framing = _framing(payload_hash, trailer)
    if framing.has_trailer and trailer is None:
        raise InvalidRequest(
            f"x-amz-content-sha256 {framing.value} needs an x-amz-trailer header naming the "
            "trailing checksum."
        )
    if not framing.has_trailer and trailer is not None:
        raise InvalidRequest(
            f"x-amz-trailer is only allowed with x-amz-content-sha256 {STREAMING_SIGNED_TRAILER} "
            f"or {STREAMING_UNSIGNED_TRAILER}."
        )
    return StreamingUpload(
        framing=framing,
        decoded_length=_decoded_length(headers.get("x-amz-decoded-content-length")),
        trailer=trailer,
        content_encoding=stored_content_encoding(headers.get("Content-Encoding", "")),
    )


def stored_content_encoding(value: str) -> str:
    """``value`` without aws-chunked, which describes a transfer, never an object."""
    parts = [part.strip() for part in value.split(",")]
    if not any(part.lower() == AWS_CHUNKED for part in parts):
        return value
    return ", ".join(part for part in parts if part and part.lower() != AWS_CHUNKED)


def _framing(payload_hash: str, trailer: str | None) -> Framing:
    for framing in Framing:
        if payload_hash == framing.value:
            return framing
    if payload_hash == UNSIGNED_PAYLOAD and trailer is not None:
        # aws-chunked with a trailer but a plain UNSIGNED-PAYLOAD hash: some SDKs sign it so;
        # the framing is that of the unsigned trailer form.
        return Framing.UNSIGNED_TRAILER
    if payload_hash in (STREAMING_UNSIGNED, UNSIGNED_PAYLOAD):
        raise InvalidRequest(
            "An aws-chunked body without chunk signatures must end in a checksum: send "
            f"x-amz-content-sha256 {STREAMING_UNSIGNED_TRAILER} with an x-amz-trailer such as "
            "x-amz-checksum-crc32."
        )
    if payload_hash.startswith("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"):
        raise NotImplementedByServer("SigV4a (ECDSA) signed streaming uploads are not supported.")
    raise InvalidRequest(
        f"An aws-chunked body needs x-amz-content-sha256 {STREAMING_SIGNED}, "
        f"{STREAMING_SIGNED_TRAILER} or {STREAMING_UNSIGNED_TRAILER}, not {payload_hash!r}."
    )


def _declared_trailer(value: str | None) -> str | None:
    if value is None:
        return None
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    if not names:
        return None
    if len(names) > 1:
        raise InvalidRequest("Expecting a single trailing checksum in x-amz-trailer.")
    name = names[0]
    if not name.startswith(CHECKSUM_PREFIX):
        raise InvalidRequest(f"The trailing header {name} is not supported.")
    algorithm = name[len(CHECKSUM_PREFIX) :]
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise InvalidRequest(f"Checksum algorithm {algorithm.upper()} is not supported.")
    return name


def _decoded_length(value: str | None) -> int:
    if value is None:
        raise MissingContentLength(
            "You must provide x-amz-decoded-content-length with an aws-chunked body."
        )
    # Bounded before int(): Python refuses to convert more than 4300 digits, and no object is
    # 2**63 bytes long anyway.
    if not value.isascii() or not value.isdigit() or len(value.lstrip("0")) > 18:
        raise InvalidArgument(
            "x-amz-decoded-content-length must be a non-negative integer below 10**18.",
            extra={"ArgumentName": "x-amz-decoded-content-length", "ArgumentValue": value[:64]},
        )
    return int(value)


class _State(enum.Enum):
    HEADER = enum.auto()  # expecting "<hex size>[;extensions]"
    DATA = enum.auto()  # inside a chunk's data
    DATA_END = enum.auto()  # expecting the empty line that closes a chunk's data
    TRAILER = enum.auto()  # after the final chunk: trailer lines up to an empty line
    DONE = enum.auto()


class AwsChunkedDecoder:
    """Incremental decoder of one aws-chunked body (see the module docstring)."""

    def __init__(
        self,
        upload: StreamingUpload,
        *,
        signer: ChunkSigner | None = None,
        seed_signature: str = "",
    ) -> None:
        if upload.framing.signed and signer is None:
            raise ValueError("signed framing needs the request's chunk signer")
        self._upload = upload
        self._signer = signer
        self._previous_signature = seed_signature
        self._state = _State.HEADER
        self._line = bytearray()
        self._remaining = 0  # data bytes left in the current chunk
        self._decoded = 0  # data bytes announced by chunk headers so far
        self._chunk_signature = ""
        self._chunk_hash: hashlib._Hash | None = None
        self._trailers: dict[str, str] = {}
        self._trailer_signature: str | None = None

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    def feed(self, data: bytes) -> list[memoryview]:
        """Decode the next piece of the framed body; returns the object bytes it carried, as
        views into ``data`` (no copy)."""
        out: list[memoryview] = []
        view = memoryview(data)
        position, end = 0, len(data)
        while position < end:
            if self._state is _State.DATA:
                take = min(self._remaining, end - position)
                piece = view[position : position + take]
                if self._chunk_hash is not None:
                    self._chunk_hash.update(piece)
                out.append(piece)
                position += take
                self._remaining -= take
                if self._remaining == 0:
                    self._end_of_data()
                continue
            if self._state is _State.DONE:
                raise InvalidRequest("The aws-chunked body continues after its final chunk.")
            newline = data.find(b"\n", position)
            stop = end if newline < 0 else newline
            if len(self._line) + stop - position > MAX_LINE_BYTES:
                raise InvalidRequest(
                    f"An aws-chunked framing line is longer than {MAX_LINE_BYTES} bytes."
                )
            self._line += view[position:stop]
            if newline < 0:
                break
            position = newline + 1
            line = bytes(self._line)
            self._line.clear()
            # CRLF per the spec; a bare LF is tolerated, as HTTP/1.1 parsers do.
            self._on_line(line.removesuffix(b"\r"))
        return out

    def finish(self) -> None:
        """The framed body has ended: raise unless it was complete."""
        if self._state is _State.TRAILER and not self._line:
            # Some clients end right after the last trailer line, without the closing empty
            # line; everything that carries meaning has arrived and been checked by then.
            self._end_of_trailer(at_eof=True)
        if self._state is _State.TRAILER:
            raise IncompleteBody("The aws-chunked body ended inside its trailer.")
        if self._state is not _State.DONE:
            raise IncompleteBody(
                "The aws-chunked body ended before its final chunk "
                f"({self._decoded - self._remaining} of "
                f"{self._upload.decoded_length} bytes received)."
            )

    def trailer_checksums(self) -> dict[str, str]:
        """The trailing checksum as ``{algorithm: base64 value}`` (empty without a trailer);
        meaningful once :meth:`finish` has passed."""
        if not self.done:
            raise IncompleteBody("The aws-chunked body ended before its trailer.")
        trailer, algorithm = self._upload.trailer, self._upload.trailer_algorithm
        if trailer is None or algorithm is None:
            return {}
        return {algorithm: self._trailers[trailer]}

    # --- one framing line at a time ---------------------------------------------------------
    def _on_line(self, line: bytes) -> None:
        if self._state is _State.HEADER:
            self._on_chunk_header(line)
        elif self._state is _State.DATA_END:
            if line:
                raise InvalidRequest(
                    "An aws-chunked chunk is longer than its declared size (its data is not "
                    "followed by CRLF)."
                )
            self._state = _State.HEADER
        else:
            self._on_trailer_line(line)

    def _on_chunk_header(self, line: bytes) -> None:
        size_field, _, extensions = line.partition(b";")
        if not _HEX_SIZE.fullmatch(size_field):
            shown = line[:40].decode("ascii", "replace")
            raise InvalidRequest(f"Invalid aws-chunked chunk size line {shown!r}.")
        size = int(size_field, 16)
        if self._decoded + size > self._upload.decoded_length:
            raise IncompleteBody(
                "The aws-chunked body carries more bytes than x-amz-decoded-content-length "
                f"({self._upload.decoded_length})."
            )
        if self._upload.framing.signed:
            self._chunk_signature = _chunk_signature(extensions)
            self._chunk_hash = hashlib.sha256()
        self._decoded += size
        self._remaining = size
        if size:
            self._state = _State.DATA
            return
        # The final, empty chunk: its signature covers the empty string.
        self._verify_chunk()
        if self._decoded != self._upload.decoded_length:
            raise IncompleteBody(
                f"The aws-chunked body decoded to {self._decoded} bytes, not the "
                f"{self._upload.decoded_length} of x-amz-decoded-content-length."
            )
        self._state = _State.TRAILER

    def _end_of_data(self) -> None:
        self._verify_chunk()
        self._state = _State.DATA_END

    def _verify_chunk(self) -> None:
        if self._signer is None or not self._upload.framing.signed:
            return
        assert self._chunk_hash is not None
        expected = self._signer.chunk_signature(
            self._previous_signature, self._chunk_hash.hexdigest()
        )
        if not signatures_match(expected, self._chunk_signature):
            raise SignatureDoesNotMatch(
                "The chunk signature we calculated does not match the signature you provided.",
                extra={"SignatureProvided": self._chunk_signature},
            )
        self._previous_signature = self._chunk_signature
        self._chunk_hash = None

    def _on_trailer_line(self, line: bytes) -> None:
        if not line:
            self._end_of_trailer(at_eof=False)
            return
        raw_name, colon, raw_value = line.partition(b":")
        try:
            name = raw_name.decode("ascii").strip().lower()
            value = raw_value.decode("ascii").strip()
        except UnicodeDecodeError:
            name, value = "", ""
        if not colon or not name:
            raise InvalidRequest("A trailing header of the aws-chunked body is malformed.")
        if self._trailer_signature is not None:
            raise InvalidRequest("x-amz-trailer-signature must be the last trailing header.")
        if name == TRAILER_SIGNATURE:
            if self._upload.framing is not Framing.SIGNED_TRAILER:
                raise InvalidRequest(
                    f"x-amz-trailer-signature is only sent with {STREAMING_SIGNED_TRAILER}."
                )
            if not _SIGNATURE.fullmatch(raw_value.strip()):
                raise InvalidRequest("The x-amz-trailer-signature is malformed.")
            self._trailer_signature = value
            return
        if name != self._upload.trailer:
            raise InvalidRequest(
                f"The trailing header {name} was not declared in x-amz-trailer."
                if self._upload.trailer
                else "This aws-chunked body may not carry trailing headers."
            )
        if name in self._trailers:
            raise InvalidRequest(f"The trailing header {name} was sent twice.")
        self._trailers[name] = value

    def _end_of_trailer(self, *, at_eof: bool) -> None:
        trailer = self._upload.trailer
        if trailer is not None and trailer not in self._trailers:
            message = f"The {trailer} trailer declared in x-amz-trailer was not sent."
            raise IncompleteBody(message) if at_eof else InvalidRequest(message)
        if self._upload.framing is Framing.SIGNED_TRAILER:
            self._verify_trailer(at_eof=at_eof)
        self._state = _State.DONE

    def _verify_trailer(self, *, at_eof: bool) -> None:
        assert self._signer is not None
        if self._trailer_signature is None:
            message = "The signed trailer of the aws-chunked body has no x-amz-trailer-signature."
            raise IncompleteBody(message) if at_eof else InvalidRequest(message)
        # Canonical trailer: "name:value\n" per header, sorted by name, as SigV4 headers are.
        canonical = "".join(f"{name}:{value}\n" for name, value in sorted(self._trailers.items()))
        expected = self._signer.trailer_signature(
            self._previous_signature, hashlib.sha256(canonical.encode()).hexdigest()
        )
        if not signatures_match(expected, self._trailer_signature):
            raise SignatureDoesNotMatch(
                "The trailer signature we calculated does not match the signature you provided.",
                extra={"SignatureProvided": self._trailer_signature},
            )


def _chunk_signature(extensions: bytes) -> str:
    for extension in extensions.split(b";"):
        name, _, value = extension.partition(b"=")
        if name.strip() == b"chunk-signature":
            if not _SIGNATURE.fullmatch(value.strip()):
                raise InvalidRequest("A chunk-signature of the aws-chunked body is malformed.")
            return value.strip().decode("ascii")
    raise InvalidRequest("A chunk of this signed aws-chunked body has no chunk-signature.")
