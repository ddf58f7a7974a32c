"""Signing raw HTTP requests with botocore's own SigV4 signer, for tests that need to send
what boto3 never would (partial bodies, wrong hashes, odd headers)."""

from __future__ import annotations

from collections.abc import Mapping

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.daemon import ACCESS_KEY, REGION, SECRET_KEY


def sign(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    payload_hash: str = "UNSIGNED-PAYLOAD",
    secret: str = SECRET_KEY,
) -> dict[str, str]:
    """Headers (incl. Authorization) for a request whose body hash is ``payload_hash``."""
    request = AWSRequest(method=method, url=url, headers=dict(headers or {}))
    request.headers["X-Amz-Content-SHA256"] = payload_hash
    S3SigV4Auth(Credentials(ACCESS_KEY, secret), "s3", REGION).add_auth(request)
    return dict(request.headers.items())
