"""Signed call tokens for the gRPC door.

A caller proves it holds a secret without sending it: each call carries the access key id, a
timestamp and HMAC-SHA256(secret, "LS1-HMAC-SHA256\\n<method>\\n<timestamp>"). The server
recomputes it and accepts timestamps within a replay window.
"""

from __future__ import annotations

import hashlib
import hmac

TOKEN_SCHEME = "LS1-HMAC-SHA256"  # noqa: S105 - a scheme name, not a secret
REPLAY_WINDOW_SECONDS = 300

# gRPC metadata keys (lowercase, as HTTP/2 requires).
KEY_ID_HEADER = "x-ls-access-key-id"
TIMESTAMP_HEADER = "x-ls-timestamp"
SIGNATURE_HEADER = "x-ls-signature"


def sign_call(secret_access_key: str, method: str, timestamp: int) -> str:
    message = f"{TOKEN_SCHEME}\n{method}\n{timestamp}".encode()
    return hmac.new(secret_access_key.encode(), message, hashlib.sha256).hexdigest()


def verify_call(secret_access_key: str, method: str, timestamp: int, signature: str) -> bool:
    return hmac.compare_digest(sign_call(secret_access_key, method, timestamp), signature)
