"""S3's size and count limits, enforced by the store so that every door has them."""

from __future__ import annotations

# A single PUT, and each part of a multipart upload, carries at most 5 GiB.
MAX_PUT_BYTES = 5 * 1024**3
# Parts are numbered 1 to 10,000.
MAX_PART_NUMBER = 10_000
