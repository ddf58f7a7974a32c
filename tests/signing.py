"""Signing raw HTTP requests with botocore's own SigV4 signer, for tests that need to send
what boto3 never would (partial bodies, wrong hashes, odd headers)."""

from __future__ import annotations

from collections.abc import Mapping

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.daemon import ACCESS_KEY, REGION, SECRET_KEY


class FixedPayloadSigner(S3SigV4Auth):  # type: ignore[misc]
    """botocore hashes the request's body itself; ours is sent separately, so we say its hash."""

    def __init__(self, credentials: Credentials, payload_hash: str) -> None:
        super().__init__(credentials, "s3", REGION)
        self._payload_hash = payload_hash

    def payload(self, request: AWSRequest) -> str:
        return self._payload_hash


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
    FixedPayloadSigner(Credentials(ACCESS_KEY, secret), payload_hash).add_auth(request)
    signed = dict(request.headers.items())
    assert signed["X-Amz-Content-SHA256"] == payload_hash
    return signed
