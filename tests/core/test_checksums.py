"""Streaming digests against the published check values of each algorithm ("123456789")."""

from __future__ import annotations

import base64

import pytest

from lightningstor.blobs.checksums import BodyDigests
from lightningstor.errors import InvalidRequest

CHECK = b"123456789"


@pytest.mark.parametrize(
    ("algorithm", "value"),
    [
        ("crc32", 0xCBF43926.to_bytes(4, "big")),
        ("crc32c", 0xE3069283.to_bytes(4, "big")),
        ("crc64nvme", 0xAE8B14860A799888.to_bytes(8, "big")),
        ("sha1", bytes.fromhex("f7c3bc1d808e04732adf679965ccc34ca7ae3441")),
        (
            "sha256",
            bytes.fromhex("15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"),
        ),
    ],
)
def test_check_values_fed_in_odd_pieces(algorithm: str, value: bytes) -> None:
    digests = BodyDigests((algorithm,))
    for piece in (CHECK[:1], CHECK[1:4], b"", CHECK[4:]):
        digests.update(piece)
    assert digests.checksums() == {algorithm: base64.b64encode(value).decode()}
    assert digests.size == 9


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        BodyDigests(("xxhash64",))
