"""Streaming digests of object bodies: MD5 (ETag), SHA-256 (content address) and the
flexible checksums S3 clients send (``x-amz-checksum-*``), all computed in one pass.

hashlib and zlib release the GIL on large buffers, so hashing on the thread pool runs in
parallel with the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import Protocol

from awscrt import checksums as awscrt_checksums

from lightningstor.errors import InvalidRequest

SUPPORTED_ALGORITHMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def value_b64(self) -> str: ...


class _Crc32:
    def __init__(self) -> None:
        self._crc = 0

    def update(self, data: bytes, /) -> None:
        self._crc = zlib.crc32(data, self._crc)

    def value_b64(self) -> str:
        return base64.b64encode(self._crc.to_bytes(4, "big")).decode()


class _Crc32c:
    def __init__(self) -> None:
        self._crc = 0

    def update(self, data: bytes, /) -> None:
        self._crc = awscrt_checksums.crc32c(data, self._crc)

    def value_b64(self) -> str:
        return base64.b64encode(self._crc.to_bytes(4, "big")).decode()


class _Crc64Nvme:
    def __init__(self) -> None:
        self._crc = 0

    def update(self, data: bytes, /) -> None:
        self._crc = awscrt_checksums.crc64nvme(data, self._crc)

    def value_b64(self) -> str:
        return base64.b64encode(self._crc.to_bytes(8, "big")).decode()


class _Hashlib:
    def __init__(self, name: str) -> None:
        self._h = hashlib.new(name)

    def update(self, data: bytes, /) -> None:
        self._h.update(data)

    def value_b64(self) -> str:
        return base64.b64encode(self._h.digest()).decode()


def _new_digest(algorithm: str) -> _Digest:
    if algorithm == "crc32":
        return _Crc32()
    if algorithm == "crc32c":
        return _Crc32c()
    if algorithm == "crc64nvme":
        return _Crc64Nvme()
    if algorithm == "sha1":
        return _Hashlib("sha1")
    raise InvalidRequest(f"Checksum algorithm {algorithm!r} is not supported.")


class BodyDigests:
    """Every digest of one body, fed chunk by chunk."""

    def __init__(self, algorithms: tuple[str, ...] = ()) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        # sha256 as a flexible checksum is the content address itself: never hashed twice.
        self._extra = {a: _new_digest(a) for a in algorithms if a != "sha256"}
        self._algorithms = algorithms
        self.size = 0

    def update(self, data: bytes) -> None:
        self._md5.update(data)
        self._sha256.update(data)
        for digest in self._extra.values():
            digest.update(data)
        self.size += len(data)

    @property
    def md5_hex(self) -> str:
        return self._md5.hexdigest()

    @property
    def md5_b64(self) -> str:
        return base64.b64encode(self._md5.digest()).decode()

    @property
    def sha256_hex(self) -> str:
        return self._sha256.hexdigest()

    def checksums(self) -> dict[str, str]:
        values = {a: d.value_b64() for a, d in self._extra.items()}
        if "sha256" in self._algorithms:
            values["sha256"] = base64.b64encode(self._sha256.digest()).decode()
        return values


# --- whole-object checksums of multipart uploads ----------------------------------------------
COMPOSITE = "COMPOSITE"
FULL_OBJECT = "FULL_OBJECT"
# What S3 allows for each algorithm (the first is the default): a CRC of the whole object can
# be combined from the parts' CRCs, a SHA cannot; CRC64NVME is full-object only.
CHECKSUM_TYPES = {
    "crc32": (COMPOSITE, FULL_OBJECT),
    "crc32c": (COMPOSITE, FULL_OBJECT),
    "crc64nvme": (FULL_OBJECT,),
    "sha1": (COMPOSITE,),
    "sha256": (COMPOSITE,),
}
_COMBINE = {
    "crc32": (awscrt_checksums.combine_crc32, 4),
    "crc32c": (awscrt_checksums.combine_crc32c, 4),
    "crc64nvme": (awscrt_checksums.combine_crc64nvme, 8),
}


def checksum_type(value: str) -> str:
    """COMPOSITE for a checksum of checksums (its value ends in "-<parts>"), else FULL_OBJECT."""
    return COMPOSITE if "-" in value else FULL_OBJECT


def composite(algorithm: str, part_values: list[str]) -> str:
    """S3's COMPOSITE checksum: the algorithm over the parts' raw checksums, then "-<count>"."""
    digests = BodyDigests((algorithm,))
    for value in part_values:
        digests.update(base64.b64decode(value))
    return f"{digests.checksums()[algorithm]}-{len(part_values)}"


def combined_crc(algorithm: str, parts: list[tuple[str, int]]) -> str:
    """The CRC of the whole byte stream, from each part's (CRC, size): FULL_OBJECT's value."""
    combine, width = _COMBINE[algorithm]
    crc = 0
    for value, size in parts:
        crc = combine(crc, int.from_bytes(base64.b64decode(value), "big"), size)
    return base64.b64encode(crc.to_bytes(width, "big")).decode()
