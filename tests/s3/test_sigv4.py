"""SigV4 verification against AWS's published example and botocore's own signer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lightningstor import errors
from lightningstor.auth.credentials import Credential
from lightningstor_server.s3.sigv4 import (
    SignedRequest,
    canonical_query,
    canonical_uri,
    verify,
)
from lightningstor_server.s3.target import parse_target

AWS_EXAMPLE_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


async def _lookup(access_key_id: str) -> Credential | None:
    if access_key_id != AWS_EXAMPLE_KEY:
        return None
    return Credential(
        access_key_id=AWS_EXAMPLE_KEY,
        secret_access_key=AWS_EXAMPLE_SECRET,
        name="example",
        admin=True,
        active=True,
    )


def _request(method: str, target: str, headers: dict[str, str]) -> SignedRequest:
    return SignedRequest(method=method, target=parse_target(target), headers=headers)


def _verify(req: SignedRequest, now: datetime) -> str:
    credential = asyncio.run(verify(req, _lookup, now=now)).credential
    assert credential is not None
    return credential.access_key_id


def test_aws_documented_get_object_example() -> None:
    """The "GET Object" example of the S3 SigV4 header-auth documentation."""
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "range": "bytes=0-9",
        "x-amz-content-sha256": EMPTY_SHA256,
        "x-amz-date": "20130524T000000Z",
        "authorization": (
            f"AWS4-HMAC-SHA256 Credential={AWS_EXAMPLE_KEY}/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        ),
    }
    req = _request("GET", "/test.txt", headers)
    assert _verify(req, datetime(2013, 5, 24, 0, 5, tzinfo=UTC)) == AWS_EXAMPLE_KEY


def _botocore_signed(
    url: str, method: str = "GET", secret: str = AWS_EXAMPLE_SECRET
) -> SignedRequest:
    request = AWSRequest(method=method, url=url)
    request.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    S3SigV4Auth(Credentials(AWS_EXAMPLE_KEY, secret), "s3", "eu-central-1").add_auth(request)
    prepared = request.prepare()
    target = prepared.url.split("127.0.0.1:9000", 1)[1]
    # botocore signs the host it derives from the URL; an HTTP client then sends it.
    headers = {k.lower(): v for k, v in prepared.headers.items()} | {"host": "127.0.0.1:9000"}
    return _request(method, target, headers)


ODD_URLS = [
    "http://127.0.0.1:9000/b/a%20b%2Bc/%C3%BC~%21%2A%28%29%27",
    "http://127.0.0.1:9000/b//lead/a//b/../c",
    "http://127.0.0.1:9000/b/100%25?list-type=2&prefix=a%2Bb%20c&encoding-type=url",
    "http://127.0.0.1:9000/b?location",
    "http://127.0.0.1:9000/",
]


@pytest.mark.parametrize("url", ODD_URLS)
def test_botocore_signatures_verify(url: str) -> None:
    req = _botocore_signed(url)
    assert _verify(req, datetime.now(UTC)) == AWS_EXAMPLE_KEY


def test_wrong_secret_is_signature_mismatch_with_debug_fields() -> None:
    req = _botocore_signed(ODD_URLS[0], secret="wrong-secret-wrong-secret")
    with pytest.raises(errors.SignatureDoesNotMatch) as raised:
        _verify(req, datetime.now(UTC))
    assert "CanonicalRequest" in raised.value.extra


def test_tampered_path_is_signature_mismatch() -> None:
    req = _botocore_signed(ODD_URLS[0])
    tampered = _request("GET", "/b/other", dict(req.headers))
    with pytest.raises(errors.SignatureDoesNotMatch):
        _verify(tampered, datetime.now(UTC))


def test_clock_skew_is_refused() -> None:
    req = _botocore_signed(ODD_URLS[0])
    with pytest.raises(errors.RequestTimeTooSkewed) as raised:
        _verify(req, datetime.now(UTC) + timedelta(minutes=16))
    assert raised.value.extra["MaxAllowedSkewMilliseconds"] == "900000"


def test_unknown_key_and_missing_auth() -> None:
    req = _botocore_signed(ODD_URLS[0])
    unknown = dict(req.headers)
    unknown["authorization"] = unknown["authorization"].replace(
        AWS_EXAMPLE_KEY, "AKIDUNKNOWN000000000"
    )
    with pytest.raises(errors.InvalidAccessKeyId):
        _verify(
            _request("GET", req.target.raw_path, unknown),
            datetime.now(UTC),
        )
    anonymous = {k: v for k, v in req.headers.items() if k != "authorization"}
    with pytest.raises(errors.AccessDenied):
        _verify(
            _request("GET", "/", anonymous),
            datetime.now(UTC),
        )


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256 Credential=x",
        "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, "
        "Signature=zz",
        "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/ec2/aws4_request, SignedHeaders=host, "
        "Signature=" + "0" * 64,
    ],
)
def test_malformed_authorization(authorization: str) -> None:
    headers = {"authorization": authorization, "x-amz-date": "20130524T000000Z", "host": "h"}
    req = _request("GET", "/", headers)
    with pytest.raises(errors.AuthorizationHeaderMalformed):
        _verify(req, datetime(2013, 5, 24, tzinfo=UTC))


def test_sigv2_header_is_refused_as_unsupported_not_as_bad_credentials() -> None:
    headers = {"authorization": "AWS AKID:c2lnbmF0dXJl", "host": "h"}
    with pytest.raises(errors.InvalidRequest, match="AWS4-HMAC-SHA256"):
        _verify(
            _request("GET", "/", headers),
            datetime.now(UTC),
        )


def test_canonical_forms() -> None:
    """Rendered from the one parse of the target: the path decoded once ("+" stays a plus),
    the query decoded as a form ("+" is a space), then both encoded AWS's way."""

    def canonical(target: str) -> tuple[str, str]:
        parsed = parse_target(target)
        return canonical_uri(parsed.path), canonical_query(parsed.params)

    assert canonical("/b/a%20b+c/%C3%BC") == ("/b/a%20b%2Bc/%C3%BC", "")
    assert canonical("/b//x/../y") == ("/b//x/../y", "")
    assert canonical("/?b=2&a=1&c&z=0") == ("/", "a=1&b=2&c=&z=0")
    assert canonical("/?prefix=a%2Bb%20c") == ("/", "prefix=a%2Bb%20c")
    assert canonical("/?prefix=a+b") == ("/", "prefix=a%20b")
