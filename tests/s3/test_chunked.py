"""The aws-chunked decoder: AWS's published signed examples, botocore's own unsigned framing,
a hand-written signer, and every way a body can be cut, corrupted or mis-declared."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum, Sha256Checksum
from multidict import CIMultiDict

from lightningstor import errors
from lightningstor.auth.credentials import Credential
from lightningstor.model import BodyExpectations, Owner
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from lightningstor_server.s3 import errors as s3_errors
from lightningstor_server.s3.body import BODY_CHUNK_BYTES, decoded_body, streaming_expectations
from lightningstor_server.s3.chunked import (
    MAX_LINE_BYTES,
    AwsChunkedDecoder,
    Framing,
    StreamingUpload,
    streaming_upload,
)
from lightningstor_server.s3.sigv4 import AuthResult, ChunkSigner, SignedRequest, verify
from lightningstor_server.s3.target import parse_target

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_DATE = "20130524T000000Z"
AWS_SCOPE = "20130524/us-east-1/s3/aws4_request"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
A_64K, A_1K = b"a" * 65536, b"a" * 1024
SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
UNSIGNED = Framing.UNSIGNED_TRAILER

# "sigv4-streaming.html", Example: PUT Object (66560 bytes of 'a' as 64 KiB + 1 KiB + final).
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
CHUNK_SIGNATURES = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)
# "sigv4-streaming-trailers.html", the same object with a trailing CRC32C.
TRAILER_SEED = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
TRAILER_CHUNK_SIGNATURES = (
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
)
# The page prints 63bddb24..., which does not follow from the string to sign it prints itself
# (whose trailer hash, 1e376db7..., is sha256 of "x-amz-checksum-crc32c:sOO8/Q==\n"); other S3
# servers' suites agree on the HMAC of that string to sign, which is this value.
TRAILER_SIGNATURE = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
TRAILER_STRING_HASH = "1e376db7e1a34a8ef1c4bcee131a2d60a1cb62503747488624e10995f448d774"
TRAILER_CRC32C = "sOO8/Q=="


# --- an independent signer, written from the AWS pages rather than from chunked.py ------------
def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def derive_key(secret: str, date: str = "20130524", region: str = "us-east-1") -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), date)
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    return key


def signed_body(
    chunks: list[bytes],
    *,
    key: bytes,
    seed: str,
    trailer: tuple[str, str] | None = None,
    amz_date: str = AWS_DATE,
    scope: str = AWS_SCOPE,
) -> bytes:
    """A STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] body of ``chunks`` and the final one."""
    out, previous = bytearray(), seed
    for chunk in [*chunks, b""]:
        data_hash = hashlib.sha256(chunk).hexdigest()
        to_sign = f"AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous}\n"
        to_sign += f"{EMPTY_SHA256}\n{data_hash}"
        previous = _hmac(key, to_sign).hex()
        out += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + chunk
        if chunk:
            out += b"\r\n"
    if trailer is not None:
        name, value = trailer
        canonical = hashlib.sha256(f"{name}:{value}\n".encode()).hexdigest()
        to_sign = "\n".join(("AWS4-HMAC-SHA256-TRAILER", amz_date, scope, previous, canonical))
        out += f"{name}:{value}\r\nx-amz-trailer-signature:{_hmac(key, to_sign).hex()}\r\n".encode()
    return bytes(out + b"\r\n")


def botocore_body(data: bytes, *, chunk_size: int = 1024 * 1024) -> bytes:
    """Exactly what boto3 sends for STREAMING-UNSIGNED-PAYLOAD-TRAILER."""
    wrapper = AwsChunkedWrapper(io.BytesIO(data), Crc32Checksum, "x-amz-checksum-crc32", chunk_size)
    return bytes(wrapper.read())


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def upload(framing: Framing, size: int, trailer: str = "x-amz-checksum-crc32") -> StreamingUpload:
    declared = trailer if framing.has_trailer else None
    return StreamingUpload(
        framing=framing, decoded_length=size, trailer=declared, content_encoding=""
    )


def aws_signer() -> ChunkSigner:
    return ChunkSigner(key=derive_key(AWS_SECRET), amz_date=AWS_DATE, scope=AWS_SCOPE)


def decode(decoder: AwsChunkedDecoder, body: bytes, step: int) -> bytes:
    out = bytearray()
    for i in range(0, len(body), step):
        for part in decoder.feed(body[i : i + step]):
            out += part
    decoder.finish()
    return bytes(out)


def aws_example_body() -> bytes:
    return (
        f"10000;chunk-signature={CHUNK_SIGNATURES[0]}\r\n".encode()
        + A_64K
        + f"\r\n400;chunk-signature={CHUNK_SIGNATURES[1]}\r\n".encode()
        + A_1K
        + f"\r\n0;chunk-signature={CHUNK_SIGNATURES[2]}\r\n\r\n".encode()
    )


def aws_trailer_example_body() -> bytes:
    return (
        f"10000;chunk-signature={TRAILER_CHUNK_SIGNATURES[0]}\r\n".encode()
        + A_64K
        + f"\r\n400;chunk-signature={TRAILER_CHUNK_SIGNATURES[1]}\r\n".encode()
        + A_1K
        + f"\r\n0;chunk-signature={TRAILER_CHUNK_SIGNATURES[2]}\r\n".encode()
        + f"x-amz-checksum-crc32c:{TRAILER_CRC32C}\r\n".encode()
        + f"x-amz-trailer-signature:{TRAILER_SIGNATURE}\r\n\r\n".encode()
    )


async def _example_lookup(access_key_id: str) -> Credential | None:
    if access_key_id != AWS_KEY:
        return None
    return Credential(
        access_key_id=AWS_KEY, secret_access_key=AWS_SECRET, name="ex", admin=True, active=True
    )


def verified_seed(payload_hash: str, signature: str, extra: dict[str, str]) -> AuthResult:
    """The header part of an AWS example request, through the real SigV4 verifier."""
    signed = sorted(["host", "x-amz-date", "x-amz-storage-class", "x-amz-content-sha256", *extra])
    headers = {
        "host": "s3.amazonaws.com",
        "x-amz-date": AWS_DATE,
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": payload_hash,
        **extra,
        "authorization": (
            f"AWS4-HMAC-SHA256 Credential={AWS_KEY}/{AWS_SCOPE},"
            f"SignedHeaders={';'.join(signed)},Signature={signature}"
        ),
    }
    target = parse_target("/examplebucket/chunkObject.txt")
    request = SignedRequest(method="PUT", target=target, headers=headers)
    now = datetime(2013, 5, 24, 0, 1, tzinfo=UTC)
    return asyncio.run(verify(request, _example_lookup, now=now))


# --- AWS's published vectors ------------------------------------------------------------------
def test_hand_written_signer_reproduces_the_aws_example() -> None:
    body = signed_body([A_64K, A_1K], key=derive_key(AWS_SECRET), seed=SEED)
    assert body == aws_example_body()
    assert len(body) == 66824  # the example's Content-Length


def test_chunk_signer_reproduces_the_aws_example_chain() -> None:
    signer, previous = aws_signer(), SEED
    for data, expected in zip((A_64K, A_1K, b""), CHUNK_SIGNATURES, strict=True):
        previous = signer.chunk_signature(previous, hashlib.sha256(data).hexdigest())
        assert previous == expected
    previous = TRAILER_SEED
    for data, expected in zip((A_64K, A_1K, b""), TRAILER_CHUNK_SIGNATURES, strict=True):
        previous = signer.chunk_signature(previous, hashlib.sha256(data).hexdigest())
        assert previous == expected
    canonical = f"x-amz-checksum-crc32c:{TRAILER_CRC32C}\n".encode()
    assert hashlib.sha256(canonical).hexdigest() == TRAILER_STRING_HASH
    assert signer.trailer_signature(previous, TRAILER_STRING_HASH) == TRAILER_SIGNATURE


EXAMPLE_HEADERS = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": "66560"}


@pytest.mark.parametrize("step", [1, 7, 8192, 100_000])
def test_aws_signed_example_decodes_whatever_the_slicing(step: int) -> None:
    auth = verified_seed(SIGNED, SEED, {**EXAMPLE_HEADERS, "content-length": "66824"})
    assert (auth.signature, auth.signing_key) == (SEED, derive_key(AWS_SECRET))
    assert auth.signing_key.hex() not in repr(auth) + repr(auth.chunk_signer)  # never logged
    decoder = AwsChunkedDecoder(
        upload(Framing.SIGNED, 66560), signer=auth.chunk_signer, seed_signature=auth.signature
    )
    assert decode(decoder, aws_example_body(), step) == b"a" * 66560
    assert decoder.trailer_checksums() == {}


def trailer_decoder() -> AwsChunkedDecoder:
    return AwsChunkedDecoder(
        upload(Framing.SIGNED_TRAILER, 66560, "x-amz-checksum-crc32c"),
        signer=aws_signer(),
        seed_signature=TRAILER_SEED,
    )


def test_aws_signed_trailer_example() -> None:
    auth = verified_seed(
        SIGNED + "-TRAILER",
        TRAILER_SEED,
        {**EXAMPLE_HEADERS, "x-amz-trailer": "x-amz-checksum-crc32c"},
    )
    assert auth.chunk_signer == aws_signer()
    body = aws_trailer_example_body()
    assert len(body) == 66946  # the example's Content-Length
    assert body == signed_body(
        [A_64K, A_1K],
        key=derive_key(AWS_SECRET),
        seed=TRAILER_SEED,
        trailer=("x-amz-checksum-crc32c", TRAILER_CRC32C),
    )
    for step in (1, 4096, len(body)):
        decoder = trailer_decoder()
        assert decode(decoder, body, step) == b"a" * 66560
        assert decoder.trailer_checksums() == {"crc32c": TRAILER_CRC32C}


# --- corrupted signed bodies ------------------------------------------------------------------
def _signed_decoder(size: int, seed: str = SEED) -> AwsChunkedDecoder:
    return AwsChunkedDecoder(upload(Framing.SIGNED, size), signer=aws_signer(), seed_signature=seed)


def _flip(body: bytes, at: int) -> bytes:
    return body[:at] + bytes([body[at] ^ 1]) + body[at + 1 :]


def _swap_first_chunks() -> bytes:
    body = signed_body([b"x" * 33, b"y" * 33], key=derive_key(AWS_SECRET), seed=SEED)
    chunk = len(b"21;chunk-signature=\r\n\r\n") + 64 + 33
    return body[chunk : 2 * chunk] + body[:chunk] + body[2 * chunk :]


@pytest.mark.parametrize(
    ("decoder", "body"),
    [
        pytest.param(
            lambda: _signed_decoder(66560), _flip(aws_example_body(), 66_000), id="data byte"
        ),
        pytest.param(lambda: _signed_decoder(66560, "0" * 64), aws_example_body(), id="wrong seed"),
        pytest.param(
            lambda: _signed_decoder(5),
            signed_body([b"hello"], key=derive_key("another secret"), seed=SEED),
            id="wrong key",
        ),
        pytest.param(lambda: _signed_decoder(66), _swap_first_chunks(), id="reordered"),
        pytest.param(
            lambda: _signed_decoder(66560),
            aws_example_body().replace(CHUNK_SIGNATURES[2].encode(), b"f" * 64),
            id="final chunk",
        ),
        pytest.param(
            trailer_decoder,
            aws_trailer_example_body().replace(TRAILER_SIGNATURE.encode(), b"e" * 64),
            id="trailer signature",
        ),
        pytest.param(
            trailer_decoder,
            aws_trailer_example_body().replace(TRAILER_CRC32C.encode(), b"AAAAAA=="),
            id="trailer value",
        ),
    ],
)
def test_signature_mismatches(decoder: Callable[[], AwsChunkedDecoder], body: bytes) -> None:
    with pytest.raises(errors.SignatureDoesNotMatch):
        decode(decoder(), body, 4096)


# No chunk-signature at all, one not of 64 hex digits, one of 64 non-hex digits.
@pytest.mark.parametrize(
    "header", [b"5", b"5;chunk-signature=abc", b"5;chunk-signature=" + b"G" * 64]
)
def test_a_missing_or_malformed_chunk_signature_is_a_framing_error(header: bytes) -> None:
    # A framing problem, never an auth error: the client did not sign wrongly, it framed wrongly.
    with pytest.raises(errors.InvalidRequest):
        decode(_signed_decoder(5), header + b"\r\nhello\r\n", 64)


def test_a_signed_trailer_without_its_signature_is_refused() -> None:
    body = aws_trailer_example_body()
    cut = body.index(b"x-amz-trailer-signature")
    with pytest.raises(errors.InvalidRequest):
        decode(trailer_decoder(), body[:cut] + b"\r\n", 100_000)


# --- the unsigned trailer form, as botocore frames it ----------------------------------------
@pytest.mark.parametrize(("size", "chunk_size"), [(0, 1024), (1, 1024), (5000, 1024), (3000, 7)])
def test_botocore_unsigned_trailer_bodies_decode_one_byte_at_a_time(
    size: int, chunk_size: int
) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    body = botocore_body(data, chunk_size=chunk_size)
    decoder = AwsChunkedDecoder(upload(UNSIGNED, size))
    assert decode(decoder, body, 1) == data
    assert decoder.trailer_checksums() == {"crc32": crc32_b64(data)}


def test_botocore_sha256_trailer() -> None:
    data = b"sha256 trailer" * 100
    wrapper = AwsChunkedWrapper(
        io.BytesIO(data), checksum_cls=Sha256Checksum, checksum_name="x-amz-checksum-sha256"
    )
    decoder = AwsChunkedDecoder(upload(UNSIGNED, len(data), "x-amz-checksum-sha256"))
    assert decode(decoder, bytes(wrapper.read()), 13) == data
    expected = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert decoder.trailer_checksums() == {"sha256": expected}


@pytest.mark.parametrize("ending", [b"\r\n\r\n", b"\n\r\n", b"\n\n", b"\r\n"])
def test_trailer_line_endings_some_clients_send(ending: bytes) -> None:
    # CRLF is the spec; a bare LF and a missing closing empty line are tolerated, since
    # everything that carries meaning has arrived by then.
    body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:" + crc32_b64(b"hello").encode() + ending
    decoder = AwsChunkedDecoder(upload(UNSIGNED, 5))
    assert decode(decoder, body, 3) == b"hello"
    assert decoder.trailer_checksums() == {"crc32": crc32_b64(b"hello")}


HELLO_CRC = b"x-amz-checksum-crc32:" + crc32_b64(b"hello").encode() + b"\r\n"


@pytest.mark.parametrize(
    ("size", "body", "error", "match"),
    [
        *(
            (5, line + b"\r\nhello\r\n0\r\n\r\n", errors.InvalidRequest, "chunk size")
            for line in (b"zz", b"-5", b" 5", b"0x5", b"5 ", b"", b"1" * 17, b"\xff", b"5\r")
        ),
        (5, b"5\r\nhello\r\n", errors.IncompleteBody, "before its final chunk"),
        (6, b"5\r\nhello!\r\n0\r\n\r\n", errors.InvalidRequest, "longer than its declared"),
        (4, b"5\r\nhello\r\n", errors.IncompleteBody, "more bytes than x-amz-decoded"),
        (6, b"5\r\nhello\r\n0\r\n", errors.IncompleteBody, "decoded to 5 bytes"),
        (5, b"5\r\nhello\r\n0\r\n" + HELLO_CRC + b"\r\n5\r\n", errors.InvalidRequest, "after"),
        (5, b"5\r\nhello\r\n0\r\n\r\n", errors.InvalidRequest, "was not sent"),
        (5, b"5\r\nhello\r\n0\r\n", errors.IncompleteBody, "was not sent"),
        (5, b"5\r\nhello\r\n0\r\n" + HELLO_CRC[:-1], errors.IncompleteBody, "inside its trailer"),
        *(
            (5, b"5\r\nhello\r\n0\r\n" + trailer + b"\r\n", errors.InvalidRequest, "trail")
            for trailer in (
                b"x-amz-checksum-sha256:abc=\r\n",  # not the one x-amz-trailer named
                HELLO_CRC + HELLO_CRC,  # twice
                b"no colon here\r\n",
                b"x-amz-trailer-signature:" + b"a" * 64 + b"\r\n",  # unsigned: no signature
            )
        ),
    ],
)
def test_unsigned_framing_errors(
    size: int, body: bytes, error: type[errors.StorageError], match: str
) -> None:
    for step in (1, len(body)):
        decoder = AwsChunkedDecoder(upload(UNSIGNED, size))
        with pytest.raises(error, match=match):
            decode(decoder, body, step)


def test_trailers_are_refused_without_a_trailer_sentinel() -> None:
    body = signed_body([b"hello"], key=derive_key(AWS_SECRET), seed=SEED)
    body = body[:-2] + b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n"
    with pytest.raises(errors.InvalidRequest, match="may not carry trailing headers"):
        decode(_signed_decoder(5), body, 64)


# --- framing errors and truncation ------------------------------------------------------------
@pytest.mark.parametrize("signed", [False, True])
def test_every_truncation_of_a_body_is_refused(signed: bool) -> None:
    data = b"0123456789" * 3
    if signed:
        body = signed_body([data[:20], data[20:]], key=derive_key(AWS_SECRET), seed=SEED)
    else:
        body = botocore_body(data, chunk_size=8)
    for cut in range(len(body) - 2):  # all but the (tolerated) missing closing CRLF
        decoder = _signed_decoder(30) if signed else AwsChunkedDecoder(upload(UNSIGNED, 30))
        with pytest.raises((errors.IncompleteBody, errors.InvalidRequest)):
            decode(decoder, body[:cut], 1 + cut % 7)


def test_an_oversized_line_is_refused_before_it_is_buffered() -> None:
    decoder = AwsChunkedDecoder(upload(UNSIGNED, 5))
    with pytest.raises(errors.InvalidRequest, match="longer than"):
        for _ in range(MAX_LINE_BYTES + 1):
            decoder.feed(b"5")
    decoder = AwsChunkedDecoder(upload(UNSIGNED, 5))
    with pytest.raises(errors.InvalidRequest, match="longer than"):
        decoder.feed(b"5;" + b"x" * MAX_LINE_BYTES + b"\r\n")


def test_the_trailer_value_is_unavailable_before_the_end() -> None:
    decoder = AwsChunkedDecoder(upload(UNSIGNED, 5))
    decoder.feed(b"5\r\nhello\r\n")
    with pytest.raises(errors.IncompleteBody):
        decoder.trailer_checksums()


# --- what the headers declare -----------------------------------------------------------------
UT = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
CHUNKED = "aws-chunked"


def declare(payload_hash: str, *, te: str = "", trailer: str = "", size: str = "5") -> Any:
    """streaming_upload() of a request with these Content-Encoding, x-amz-trailer and
    x-amz-decoded-content-length headers (empty: absent)."""
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in (
        ("Content-Encoding", te),
        ("X-Amz-Trailer", trailer),
        ("X-Amz-Decoded-Content-Length", size),
    ):
        if value:
            headers[name] = value
    return streaming_upload(headers, payload_hash)


def test_plain_bodies_are_not_streaming() -> None:
    assert declare("UNSIGNED-PAYLOAD", te="gzip") is None
    assert declare(EMPTY_SHA256) is None


def test_boto3_https_headers() -> None:
    declared = declare(UT, te="gzip,aws-chunked", trailer="x-amz-checksum-crc32", size="11")
    assert declared == StreamingUpload(
        framing=Framing.UNSIGNED_TRAILER,
        decoded_length=11,
        trailer="x-amz-checksum-crc32",
        content_encoding="gzip",  # what gets stored: aws-chunked describes the transfer only
    )
    assert declared.trailer_algorithm == "crc32"


def test_a_sentinel_without_content_encoding_is_streaming() -> None:
    declared = declare(SIGNED)  # minio-go sends no Content-Encoding, only the sentinel
    assert declared.framing is Framing.SIGNED
    assert declared.content_encoding == ""


def test_unsigned_payload_with_a_trailer_is_the_unsigned_trailer_form() -> None:
    declared = declare("UNSIGNED-PAYLOAD", te=CHUNKED, trailer="x-amz-checksum-crc32")
    assert declared.framing is Framing.UNSIGNED_TRAILER


CRC = "x-amz-checksum-crc32"
SIGV4A = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"


@pytest.mark.parametrize(
    ("payload_hash", "te", "trailer", "size", "error", "match"),
    [
        ("STREAMING-UNSIGNED-PAYLOAD", "", "", "5", errors.InvalidRequest, "end in a checksum"),
        ("UNSIGNED-PAYLOAD", CHUNKED, "", "5", errors.InvalidRequest, "end in a checksum"),
        (UT, "", CRC, "", s3_errors.MissingContentLength, "x-amz-decoded-content-length"),
        (UT, "", CRC, "-1", errors.InvalidArgument, "non-negative"),
        (UT, "", "", "5", errors.InvalidRequest, "needs an x-amz-trailer"),
        (SIGNED, "", CRC, "5", errors.InvalidRequest, "only allowed with"),
        (UT, "", "x-amz-checksum-xxhash64", "5", errors.InvalidRequest, "XXHASH64 is not"),
        (UT, "", CRC + ",x-amz-checksum-sha1", "5", errors.InvalidRequest, "single trailing"),
        (UT, "", "x-amz-meta-late", "5", errors.InvalidRequest, "not supported"),
        (SIGV4A, "", "", "5", s3_errors.NotImplementedByServer, "SigV4a"),
        (EMPTY_SHA256, CHUNKED, "", "5", errors.InvalidRequest, "needs x-amz-content-sha256"),
    ],
)
def test_declarations_that_cannot_be_decoded_safely(
    payload_hash: str, te: str, trailer: str, size: str, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        declare(payload_hash, te=te, trailer=trailer, size=size)


def test_a_checksum_header_and_a_trailer_together_are_refused() -> None:
    declared, header = upload(UNSIGNED, 5), BodyExpectations(checksums={"crc32": "AAAAAA=="})
    with pytest.raises(errors.InvalidRequest, match="not both"):
        streaming_expectations(header, declared, AwsChunkedDecoder(declared))


# --- through the body adapter into the real store ---------------------------------------------
class Pieces:
    """A request body that arrives ``size`` bytes at a time, like a slow socket."""

    def __init__(self, data: bytes, size: int) -> None:
        self._data, self._size, self._position = data, size, 0

    async def read(self, n: int = -1, /) -> bytes:
        take = self._size if n < 0 else min(n, self._size)
        piece = self._data[self._position : self._position + take]
        self._position += len(piece)
        return piece


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ObjectStore]:
    offloader = Offloader(workers=4)
    s = ObjectStore.open(tmp_path / "data", offloader=offloader, gc_delay_seconds=0)
    yield s
    s.close()
    offloader.shutdown()


async def _put(store: ObjectStore, key: str, body: bytes, declared: StreamingUpload) -> str:
    signer = aws_signer() if declared.framing.signed else None
    decoder = AwsChunkedDecoder(declared, signer=signer, seed_signature=SEED)
    expect = streaming_expectations(BodyExpectations(checksums={"crc32": None}), declared, decoder)
    chunks = decoded_body(Pieces(body, 65536), decoder, store.io)
    head = await store.put_object("chunked", key, chunks, expect=expect)
    return head.etag


async def _read(store: ObjectStore, key: str) -> bytes:
    reader = await store.open_object("chunked", key)
    return b"".join([chunk async for chunk in reader.chunks])


def test_store_keeps_decoded_bytes_and_checks_the_trailer(store: ObjectStore) -> None:
    data = bytes(range(256)) * 12_000  # ~3 MiB: several body chunks
    good = botocore_body(data)
    bad = good.replace(crc32_b64(data).encode(), crc32_b64(b"other").encode())

    async def scenario() -> None:
        await store.create_bucket("chunked", owner=Owner("o"))
        declared = upload(UNSIGNED, len(data))
        etag = await _put(store, "k", good, declared)
        assert etag == hashlib.md5(data).hexdigest()
        head = await store.head_object("chunked", "k")
        assert head.checksums == {"crc32": crc32_b64(data)}
        with pytest.raises(errors.BadDigest):
            await _put(store, "k", good.replace(data[:10], b"x" * 10, 1), declared)
        with pytest.raises(errors.BadDigest):
            await _put(store, "k", bad, declared)
        with pytest.raises(errors.IncompleteBody):
            await _put(store, "k", good[: len(good) // 2], declared)
        assert await _read(store, "k") == data

    asyncio.run(scenario())
    assert list(store.blobs.tmp_root.iterdir()) == []


def test_store_signed_body_with_a_bad_chunk_keeps_the_old_object(store: ObjectStore) -> None:
    key = derive_key(AWS_SECRET)
    data = b"s" * (BODY_CHUNK_BYTES + 100)
    parts = [data[i : i + 300_000] for i in range(0, len(data), 300_000)]
    good = signed_body(parts, key=key, seed=SEED)
    corrupt = _flip(good, len(good) - 200)  # in the last chunk, after earlier ones were staged

    async def scenario() -> None:
        await store.create_bucket("chunked", owner=Owner("o"))
        declared = upload(Framing.SIGNED, len(data))
        await _put(store, "k", good, declared)
        with pytest.raises(errors.SignatureDoesNotMatch):
            await _put(store, "k", corrupt, declared)
        assert await _read(store, "k") == data

    asyncio.run(scenario())
    assert list(store.blobs.tmp_root.iterdir()) == []


def test_decoded_chunks_stay_within_the_body_chunk_size() -> None:
    data = bytes(range(256)) * 10_000
    body = botocore_body(data, chunk_size=100_000)

    async def collect() -> list[bytes]:
        decoder = AwsChunkedDecoder(upload(UNSIGNED, len(data)))
        return [chunk async for chunk in decoded_body(Pieces(body, 777_777), decoder, None)]

    chunks = asyncio.run(collect())
    assert b"".join(chunks) == data
    assert max(len(chunk) for chunk in chunks) <= BODY_CHUNK_BYTES
