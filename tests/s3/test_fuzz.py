"""Property tests of the S3 door's pure parsers, with inputs hypothesis makes up.

- the aws-chunked decoder, against an encoder written here from the AWS pages: any payload in
  any chunking, fed in pieces of any size, decodes to exactly the payload; a body damaged
  anywhere is refused with a StorageError or still yields exactly the payload, never other bytes;
- SigV4 canonicalization, against botocore's own for the URLs botocore itself builds, and the
  key aiohttp routes by equals the key the client meant;
- the router, the Range parser and the other header parsers raise nothing but StorageError.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode, percent_encode_sequence
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from lightningstor.auth.credentials import Credential
from lightningstor.errors import StorageError
from lightningstor.model import RangeRequest
from lightningstor_server.s3 import headers as h
from lightningstor_server.s3.chunked import (
    AwsChunkedDecoder,
    Framing,
    StreamingUpload,
    streaming_upload,
)
from lightningstor_server.s3.errors import InvalidURI
from lightningstor_server.s3.params import max_keys
from lightningstor_server.s3.router import route
from lightningstor_server.s3.sigv4 import (
    ChunkSigner,
    SignedRequest,
    canonical_query,
    canonical_uri,
    verify,
)
from lightningstor_server.s3.target import parse_target

# Digits str.isdigit() accepts: int() refuses the first and reads the second as 10.
SUPERSCRIPT_TWO = "\u00b2"
ARABIC_TEN = "\u0661\u0660"
FAST = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
THOROUGH = settings(
    max_examples=600, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- aws-chunked: a reference encoder, from "sigv4-streaming.html" -------------------------------
SECRET = "fuzz-secret"
AMZ_DATE = "20260101T000000Z"
SCOPE = "20260101/us-east-1/s3/aws4_request"
SEED = "ab" * 32
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
TRAILER = "x-amz-checksum-crc32"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _signing_key() -> bytes:
    key = _hmac(f"AWS4{SECRET}".encode(), AMZ_DATE[:8])
    for part in ("us-east-1", "s3", "aws4_request"):
        key = _hmac(key, part)
    return key


KEY = _signing_key()


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def encode(framing: Framing, chunks: Sequence[bytes], *, upper_hex: bool = False) -> bytes:
    """The framed body of ``chunks`` (empty ones skipped) then the final chunk (and trailer)."""
    out, previous = bytearray(), SEED
    for chunk in [*(c for c in chunks if c), b""]:
        size = f"{len(chunk):X}" if upper_hex else f"{len(chunk):x}"
        if framing.signed:
            to_sign = "\n".join(
                (
                    "AWS4-HMAC-SHA256-PAYLOAD",
                    AMZ_DATE,
                    SCOPE,
                    previous,
                    EMPTY_SHA256,
                    hashlib.sha256(chunk).hexdigest(),
                )
            )
            previous = _hmac(KEY, to_sign).hex()
            size += f";chunk-signature={previous}"
        out += size.encode() + b"\r\n"
        if chunk:
            out += chunk + b"\r\n"
    if framing.has_trailer:
        value = crc32_b64(b"".join(chunks))
        out += f"{TRAILER}:{value}\r\n".encode()
        if framing is Framing.SIGNED_TRAILER:
            canonical = hashlib.sha256(f"{TRAILER}:{value}\n".encode()).hexdigest()
            to_sign = "\n".join(("AWS4-HMAC-SHA256-TRAILER", AMZ_DATE, SCOPE, previous, canonical))
            out += f"x-amz-trailer-signature:{_hmac(KEY, to_sign).hex()}\r\n".encode()
    return bytes(out + b"\r\n")


def decoder_for(framing: Framing, size: int) -> AwsChunkedDecoder:
    upload = StreamingUpload(
        framing=framing,
        decoded_length=size,
        trailer=TRAILER if framing.has_trailer else None,
        content_encoding="",
    )
    signer = ChunkSigner(key=KEY, amz_date=AMZ_DATE, scope=SCOPE) if framing.signed else None
    return AwsChunkedDecoder(upload, signer=signer, seed_signature=SEED)


def decode(framing: Framing, size: int, framed: bytes, cuts: Sequence[int]) -> bytes:
    """Feed ``framed`` split at ``cuts``; returns the payload once the body is accepted the way
    the core accepts it: complete, and matching its trailing checksum when it has one.
    Raises StorageError (BadDigest is what the core raises for a wrong trailing checksum)."""
    decoder = decoder_for(framing, size)
    out = bytearray()
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(framed)), len(framed)]
    for start, stop in itertools.pairwise(bounds):
        for view in decoder.feed(framed[start:stop]):
            out += view
    decoder.finish()
    declared = decoder.trailer_checksums()
    if framing.has_trailer and declared != {"crc32": crc32_b64(bytes(out))}:
        raise StorageError("BadDigest: the trailing checksum does not match")
    return bytes(out)


framings = st.sampled_from(list(Framing))
payloads = st.binary(max_size=3000)


@st.composite
def chunkings(draw: st.DrawFn, payload: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=8)))
    bounds = [0, *cuts, len(payload)]
    return [payload[a:b] for a, b in itertools.pairwise(bounds)]


@FAST
@given(framing=framings, data=st.data(), upper_hex=st.booleans())
def test_any_chunking_fed_in_any_pieces_decodes_to_the_payload(
    framing: Framing, data: st.DataObject, upper_hex: bool
) -> None:
    payload = data.draw(payloads)
    framed = encode(framing, data.draw(chunkings(payload)), upper_hex=upper_hex)
    cuts = data.draw(st.lists(st.integers(0, len(framed)), max_size=30))
    assert decode(framing, len(payload), framed, cuts) == payload


@FAST
@given(framing=framings, payload=st.binary(max_size=300))
def test_one_byte_at_a_time(framing: Framing, payload: bytes) -> None:
    framed = encode(framing, [payload[:100], payload[100:]])
    assert decode(framing, len(payload), framed, range(len(framed))) == payload


def _refused_or_same(
    framing: Framing, payload: bytes, framed: bytes, cuts: Sequence[int], size: int | None = None
) -> None:
    try:
        decoded = decode(framing, len(payload) if size is None else size, framed, cuts)
    except StorageError:
        return
    assert decoded == payload  # never other bytes, silently


@THOROUGH
@given(framing=framings, data=st.data())
def test_damaged_bodies_are_refused_or_decode_to_the_same_payload(
    framing: Framing, data: st.DataObject
) -> None:
    payload = data.draw(st.binary(min_size=1, max_size=600))
    framed = bytearray(encode(framing, data.draw(chunkings(payload))))
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(framed) - 1))
        damage = data.draw(st.sampled_from(["flip", "byte", "drop", "insert"]))
        if damage == "flip":
            framed[position] ^= 1 << data.draw(st.integers(0, 7))
        elif damage == "byte":
            framed[position] = data.draw(st.integers(0, 255))
        elif damage == "drop":
            del framed[position]
        else:
            framed.insert(position, data.draw(st.sampled_from(b"\r\n;:=0aF")))
        if not framed:
            break
    cuts = data.draw(st.lists(st.integers(0, len(framed)), max_size=5))
    _refused_or_same(framing, payload, bytes(framed), cuts)


@FAST
@given(framing=framings, payload=st.binary(max_size=600), data=st.data())
def test_truncated_bodies_are_refused_or_complete(
    framing: Framing, payload: bytes, data: st.DataObject
) -> None:
    framed = encode(framing, data.draw(chunkings(payload)))
    end = data.draw(st.integers(0, len(framed) - 1))
    _refused_or_same(framing, payload, framed[:end], [])


@FAST
@given(framing=framings, payload=st.binary(max_size=300), data=st.data())
def test_a_declared_length_that_differs_is_refused(
    framing: Framing, payload: bytes, data: st.DataObject
) -> None:
    size = data.draw(st.integers(0, 400).filter(lambda n: n != len(payload)))
    framed = encode(framing, data.draw(chunkings(payload)))
    try:
        decode(framing, size, framed, [])
    except StorageError:
        return
    raise AssertionError("a body of another length than declared was accepted")


@FAST
@given(framing=framings, garbage=st.binary(max_size=2000), size=st.integers(0, 2000))
def test_arbitrary_bytes_only_ever_raise_storage_errors(
    framing: Framing, garbage: bytes, size: int
) -> None:
    with contextlib.suppress(StorageError):
        decode(framing, size, garbage, [len(garbage) // 2])


header_text = st.text(st.characters(codec="utf-8"), max_size=40)


@FAST
@given(
    encoding=st.sampled_from(["", "aws-chunked", "gzip, aws-chunked", "AWS-CHUNKED"]),
    payload_hash=st.sampled_from(
        [*(f.value for f in Framing), "UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD", "x"]
    ),
    trailer=st.one_of(st.none(), st.sampled_from([TRAILER, "x-amz-checksum-md5", ""]), header_text),
    length=st.one_of(
        st.none(), st.sampled_from(["9" * 5000, SUPERSCRIPT_TWO, "-1", "0"]), header_text
    ),
)
def test_streaming_declarations_only_ever_raise_storage_errors(
    encoding: str, payload_hash: str, trailer: str | None, length: str | None
) -> None:
    headers = {"Content-Encoding": encoding}
    if trailer is not None:
        headers["x-amz-trailer"] = trailer
    if length is not None:
        headers["x-amz-decoded-content-length"] = length
    try:
        declared = streaming_upload(headers, payload_hash)
    except StorageError:
        return
    assert declared is None or 0 <= declared.decoded_length < 10**18


# --- SigV4 canonicalization against botocore's ---------------------------------------------------
# Text a key or query value may hold: anything but surrogates, heavy on what encoders get wrong.
TRICKY = "+%/~ ?#&=;:@!$'()*,[]\\^`{|}\"<>\t\n\r\x00\x7fé日本🎉"
key_text = st.text(
    st.one_of(st.sampled_from(TRICKY), st.characters(codec="utf-8")),
    min_size=1,
    max_size=60,
)
query_text = st.text(
    st.one_of(st.sampled_from(TRICKY), st.characters(codec="utf-8")),
    max_size=30,
)


def botocore_canonical(url: str) -> tuple[str, str]:
    """The canonical URI and query botocore's S3 signer computes for ``url``."""
    request = AWSRequest(method="GET", url=url, headers={"X-Amz-Content-SHA256": EMPTY_SHA256})
    auth = S3SigV4Auth(Credentials("AKID", SECRET), "s3", "us-east-1")
    lines = auth.canonical_request(request).split("\n")
    return lines[1], lines[2]


@THOROUGH
@given(key=key_text, params=st.lists(st.tuples(query_text, query_text), max_size=5))
@example(key="a b+c/ü~!*()'", params=[("prefix", "a+b c"), ("x", "%2B")])
@example(key="100%", params=[("", ""), ("a", "")])
@example(key="/lead//x/../y/./z", params=[("k", "v=w&z")])
def test_canonical_request_matches_botocore(key: str, params: list[tuple[str, str]]) -> None:
    # As botocore's serializer writes an S3 key ({Key+}) and a query (percent_encode_sequence).
    raw_path = "/bucket/" + percent_encode(key, safe="/~")
    raw_query = percent_encode_sequence(params)
    url = f"https://s3.example.com{raw_path}" + (f"?{raw_query}" if raw_query else "")
    expected_uri, expected_query = botocore_canonical(url)
    raw_target = raw_path + (f"?{raw_query}" if raw_query else "")
    names = [name for name, _ in params]
    if len(set(names)) != len(names):
        with pytest.raises(InvalidURI):  # a signature cannot say which copy was meant
            parse_target(raw_target)
        return
    target = parse_target(raw_target)
    assert canonical_uri(target.path) == expected_uri
    assert canonical_query(target.params) == expected_query
    # ... and what the router reads is exactly what the client meant.
    assert target.path == "/bucket/" + key
    assert list(target.query.items()) == params


@FAST
@given(raw=st.text(st.sampled_from("%/aF0+~ é"), max_size=40))
def test_canonical_uri_of_any_raw_path_is_stable_or_refused(raw: str) -> None:
    """Any raw path canonicalizes (to a fixed point) or is refused as a StorageError."""
    try:
        once = canonical_uri(parse_target("/" + raw).path)
    except StorageError:
        return
    assert canonical_uri(parse_target(once).path) == once


# --- the router ------------------------------------------------------------------------------
METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "OPTIONS", "get", ""]
PARAM_NAMES = [
    "uploads", "uploadId", "partNumber", "delete", "location", "versioning", "acl", "tagging",
    "versions", "list-type", "max-keys", "max-parts", "max-uploads", "max-buckets",
    "part-number-marker", "versionId", "prefix", "x-id", "continuation-token", "policy",
]  # fmt: skip
param_values = st.one_of(
    query_text,
    st.sampled_from(["", "1", "0", "-1", "null", "2", "9" * 5000, SUPERSCRIPT_TWO, ARABIC_TEN]),
)


@THOROUGH
@given(
    method=st.one_of(st.sampled_from(METHODS), st.text(max_size=8)),
    path=st.one_of(
        st.sampled_from(["/", "//", "/b", "/b/", "/b/k", "/b//k", "/b/k/"]),
        st.text(max_size=40).map(lambda p: "/" + p),
    ),
    params=st.lists(
        st.tuples(st.one_of(st.sampled_from(PARAM_NAMES), query_text), param_values), max_size=5
    ),
    copy_source=st.booleans(),
)
def test_router_only_ever_raises_storage_errors(
    method: str, path: str, params: list[tuple[str, str]], copy_source: bool
) -> None:
    query = MultiDictProxy(MultiDict(params))
    headers = {"x-amz-copy-source": "b/k"} if copy_source else {}
    try:
        endpoint = route(method, path, query, headers)
    except StorageError:
        return
    assert endpoint.operation


# --- headers ---------------------------------------------------------------------------------
digits = st.one_of(
    st.text(st.sampled_from("0123456789"), max_size=25),
    st.sampled_from(["9" * 5000, "0" * 5000 + "7", ARABIC_TEN, SUPERSCRIPT_TWO]),
)
range_values = st.one_of(
    st.builds(lambda a, b: f"bytes={a}-{b}", digits, digits),
    st.builds(
        lambda a, b, c: f"{a}bytes={b}-{c}{a}", st.sampled_from([" ", "\t", "\n"]), digits, digits
    ),
    st.text(max_size=40),
    st.text(max_size=40).map(lambda t: "bytes=" + t),
)


@THOROUGH
@given(value=st.one_of(st.none(), range_values))
@example(value="bytes=" + "9" * 5000 + "-")
@example(value="bytes=-" + "9" * 5000)
@example(value="bytes=" + "9" * 30 + "-" + "9" * 29)
def test_byte_range_never_raises_and_stays_in_bounds(value: str | None) -> None:
    parsed = h.byte_range(value)
    if parsed is None:
        return
    assert isinstance(parsed, RangeRequest)
    if parsed.suffix is not None:
        assert parsed.first is None and parsed.last is None
        assert 0 <= parsed.suffix <= h.MAX_RANGE_POSITION
    else:
        assert parsed.first is not None and 0 <= parsed.first <= h.MAX_RANGE_POSITION
        if parsed.last is not None:
            assert parsed.first <= parsed.last <= h.MAX_RANGE_POSITION


@FAST
@given(first=st.integers(0, 10**12), length=st.one_of(st.none(), st.integers(0, 10**12)))
def test_byte_range_reads_ordinary_ranges_exactly(first: int, length: int | None) -> None:
    last = None if length is None else first + length
    value = f"bytes={first}-{'' if last is None else last}"
    assert h.byte_range(value) == RangeRequest(first=first, last=last)
    assert h.byte_range(f"bytes=-{first}") == RangeRequest(suffix=first)


def _raises_only_storage_errors(parse: Callable[[], Any]) -> None:
    with contextlib.suppress(StorageError):
        parse()


@FAST
@given(
    value=st.one_of(st.none(), digits, st.text(max_size=20)),
    date=st.one_of(
        st.none(), st.text(max_size=40), st.sampled_from(["Mon, 01 Jan 99999 00:00:00 GMT"])
    ),
)
def test_other_header_parsers_only_ever_raise_storage_errors(
    value: str | None, date: str | None
) -> None:
    _raises_only_storage_errors(lambda: max_keys(value))
    fields = CIMultiDict[str]()
    for name in ("Content-MD5", "x-amz-checksum-crc32", "x-amz-sdk-checksum-algorithm"):
        if value is not None:
            fields[name] = value
    if date is not None:
        fields["If-Modified-Since"] = date
        fields["If-Unmodified-Since"] = date
    proxy = CIMultiDictProxy(fields)
    _raises_only_storage_errors(lambda: h.body_expectations(proxy, "UNSIGNED-PAYLOAD"))
    _raises_only_storage_errors(lambda: h.preconditions(proxy))


# --- SigV4 verification of whatever arrives in the headers --------------------------------------
async def _lookup(access_key_id: str) -> Credential | None:
    if access_key_id != "AKID":
        return None
    return Credential(
        access_key_id="AKID", secret_access_key=SECRET, name="fuzz", admin=True, active=True
    )


auth_headers = st.one_of(
    st.text(max_size=120),
    st.builds(
        lambda cred, signed, sig: (
            f"AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders={signed}, Signature={sig}"
        ),
        st.one_of(st.just("AKID/20260101/us-east-1/s3/aws4_request"), st.text(max_size=40)),
        st.one_of(st.just("host;x-amz-content-sha256;x-amz-date"), st.text(max_size=30)),
        st.one_of(st.just("0" * 64), st.text(max_size=70)),
    ),
)


@FAST
@given(
    authorization=st.one_of(st.none(), auth_headers),
    amz_date=st.one_of(st.none(), st.just(AMZ_DATE), st.text(max_size=20)),
    payload_hash=st.one_of(st.none(), st.just(EMPTY_SHA256), st.text(max_size=70)),
    raw_path=st.text(st.sampled_from("/ab%F0C3+~ é"), max_size=20),
    raw_query=st.text(st.sampled_from("a=b&%F0+;é"), max_size=20),
)
def test_verify_only_ever_raises_storage_errors(
    authorization: str | None,
    amz_date: str | None,
    payload_hash: str | None,
    raw_path: str,
    raw_query: str,
) -> None:
    fields = {"host": "s3.example.com"}
    for name, value in (
        ("authorization", authorization),
        ("x-amz-date", amz_date),
        ("x-amz-content-sha256", payload_hash),
    ):
        if value is not None:
            fields[name] = value
    now = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        target = parse_target("/" + raw_path + (f"?{raw_query}" if raw_query else ""))
        request = SignedRequest(method="GET", target=target, headers=fields)
        asyncio.run(verify(request, _lookup, now=now))
    except StorageError:
        return
    raise AssertionError("a request no one signed was accepted")
