"""The daemon helpers live in :mod:`lightningstor.testing` (also a pytest plugin for users)."""

from lightningstor.testing import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    Daemon,
    TlsFiles,
    aws_env_of,
    boto3_client,
    free_port,
    self_signed_cert,
)

__all__ = [
    "ACCESS_KEY",
    "REGION",
    "SECRET_KEY",
    "Daemon",
    "TlsFiles",
    "aws_env_of",
    "boto3_client",
    "free_port",
    "self_signed_cert",
]
