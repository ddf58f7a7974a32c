"""Object tags over gRPC: on writes and copies, replaced and removed, with S3's
limits (one core: objects/tags.py)."""

from __future__ import annotations

import pytest

from lightningstor import errors
from tests.grpc.harness import GrpcEnv, grpc_test

BUCKET = "tagged"


@grpc_test
async def test_tags_travel_with_writes_copies_and_uploads(env: GrpcEnv) -> None:
    async with env.client() as client:
        await client.create_bucket(BUCKET)
        written = await client.put_object(BUCKET, "k", b"data", tags={"team": "a", "tier": ""})
        assert dict(written.tags) == {"team": "a", "tier": ""}
        assert dict((await client.head_object(BUCKET, "k")).tags) == {"team": "a", "tier": ""}
        copied = await client.copy_object((BUCKET, "k"), (BUCKET, "copy"))
        assert dict(copied.tags) == {"team": "a", "tier": ""}
        changed = await client.set_object_tags(BUCKET, "k", {"team": "b"})
        assert (dict(changed.tags), changed.modified_unix_nanos) == (
            {"team": "b"},
            written.modified_unix_nanos,
        )
        for bad in ({f"k{i}": "v" for i in range(11)}, {"aws:x": "y"}, {"k" * 129: "v"}):
            with pytest.raises(errors.InvalidTag):
                await client.set_object_tags(BUCKET, "k", bad)
            assert dict((await client.head_object(BUCKET, "k")).tags) == {"team": "b"}
        with pytest.raises(errors.InvalidTag):
            await client.put_object(BUCKET, "refused", b"x", tags={"aws:x": "y"})
        with pytest.raises(errors.NoSuchKey):
            await client.head_object(BUCKET, "refused")
        cleared = await client.set_object_tags(BUCKET, "k", {})
        assert dict(cleared.tags) == {}
        assert await client.get_object(BUCKET, "k") == b"data"
