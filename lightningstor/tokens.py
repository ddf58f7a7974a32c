"""Signed call tokens for the gRPC door.

A caller proves it holds a secret without sending it: each call carries the access key id, a
timestamp, a fresh random nonce and HMAC-SHA256(secret,
"LS1-HMAC-SHA256\\n<method>\\n<timestamp>\\n<nonce>"). The server recomputes it, accepts
timestamps within a window, and accepts each nonce once, so a token seen on the wire cannot
be replayed (not even against another request of the same method).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_SCHEME = "LS1-HMAC-SHA256"  # noqa: S105 - a scheme name, not a secret
REPLAY_WINDOW_SECONDS = 300
NONCE_BYTES = 16

# gRPC metadata keys (lowercase, as HTTP/2 requires).
KEY_ID_HEADER = "x-ls-access-key-id"
TIMESTAMP_HEADER = "x-ls-timestamp"
NONCE_HEADER = "x-ls-nonce"
SIGNATURE_HEADER = "x-ls-signature"


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


def sign_call(secret_access_key: str, method: str, timestamp: int, nonce: str) -> str:
    message = f"{TOKEN_SCHEME}\n{method}\n{timestamp}\n{nonce}".encode()
    return hmac.new(secret_access_key.encode(), message, hashlib.sha256).hexdigest()


def verify_call(
    secret_access_key: str, method: str, timestamp: int, nonce: str, signature: str
) -> bool:
    expected = sign_call(secret_access_key, method, timestamp, nonce)
    return hmac.compare_digest(expected, signature)
