"""Bucket lifecycle configurations, bucket tags and object attributes over gRPC: the same core
checks as the S3 door's (objects/lifecycle/rules.py, objects/tags.py), each refusal its exact
status, and nothing changed by a refused call."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from lightningstor import errors
from lightningstor.client import Client, call_metadata
from lightningstor.model import FILTER_AND, FILTER_ONE
from lightningstor.objects.lifecycle.rules import DAY_NS
from lightningstor.v1 import storage_pb2 as pb
from tests.grpc.harness import BUCKETS, OBJECTS, SECRET, GrpcEnv, MiB, expect_status, grpc_test

BUCKET = "ruled"
OTHER_KEY = "LSLIFECYCLEKEY000001"
S = grpc.StatusCode

# One rule of each shape, between them every field of LifecycleRule and LifecycleFilter.
RULES = [
    pb.LifecycleRule(
        id="logs",
        enabled=True,
        filter=pb.LifecycleFilter(
            prefix="logs/", tags={"team": "a", "tier": ""}, size_greater_than=0, size_less_than=10
        ),
        expiration_days=30,
        noncurrent_days=7,
        newer_noncurrent_versions=3,
    ),
    pb.LifecycleRule(
        id="dated",
        enabled=False,
        filter=pb.LifecycleFilter(prefix="old/"),
        expiration_date_unix_nanos=20_000 * DAY_NS,
    ),
    pb.LifecycleRule(
        id="markers",
        enabled=True,
        expired_object_delete_marker=True,
        abort_incomplete_upload_days=2,
    ),
    pb.LifecycleRule(enabled=True, filter=pb.LifecycleFilter(size_less_than=5), noncurrent_days=1),
]


def _rule(**fields: Any) -> pb.LifecycleRule:
    """A valid rule, but for ``fields``."""
    return pb.LifecycleRule(**{"id": "kept", "enabled": True, "expiration_days": 1, **fields})


def _glacier() -> list[pb.LifecycleTransition]:
    return [pb.LifecycleTransition(storage_class="GLACIER", days=30)]


TAGGED = pb.LifecycleFilter(tags={"a": "b"})
# Each refused configuration, the status and S3 code it gets.
BAD_CONFIGURATIONS = [
    pytest.param([_rule(id="x" * 256)], "InvalidArgument", id="id-over-255"),
    pytest.param([_rule(id="twice"), _rule(id="twice")], "InvalidArgument", id="duplicate-ids"),
    pytest.param([_rule(expiration_days=0)], "InvalidArgument", id="days-0"),
    pytest.param([_rule(noncurrent_days=-1)], "InvalidArgument", id="noncurrent-days-negative"),
    pytest.param([_rule(transitions=_glacier())], "InvalidStorageClass", id="transition"),
    pytest.param(
        [_rule(noncurrent_transitions=_glacier())],
        "InvalidStorageClass",
        id="noncurrent-transition",
    ),
    pytest.param(
        [_rule(filter=TAGGED, abort_incomplete_upload_days=1)], "InvalidRequest", id="tags-abort"
    ),
    pytest.param(
        [_rule(expiration_days=None, filter=TAGGED, expired_object_delete_marker=True)],
        "InvalidRequest",
        id="tags-marker",
    ),
    pytest.param(
        [_rule(newer_noncurrent_versions=2)], "InvalidArgument", id="newer-without-noncurrent-days"
    ),
    pytest.param(
        [_rule(noncurrent_days=1, newer_noncurrent_versions=101)], "InvalidArgument", id="newer-101"
    ),
    pytest.param([_rule(expiration_date_unix_nanos=DAY_NS)], "InvalidArgument", id="days-and-date"),
    pytest.param(
        [_rule(expiration_date_unix_nanos=DAY_NS, expired_object_delete_marker=True)],
        "InvalidArgument",
        id="date-and-marker",
    ),
    pytest.param(
        [_rule(expiration_days=None, expiration_date_unix_nanos=DAY_NS + 1)],
        "InvalidArgument",
        id="date-not-midnight",
    ),
    pytest.param(
        [_rule(filter=pb.LifecycleFilter(size_greater_than=10, size_less_than=10))],
        "InvalidArgument",
        id="sizes-crossed",
    ),
    pytest.param([_rule(expiration_days=None)], "InvalidRequest", id="no-action"),
    pytest.param([], "InvalidRequest", id="no-rules"),
    pytest.param([_rule(id=str(n)) for n in range(1001)], "InvalidRequest", id="1001-rules"),
]


def _set(env: GrpcEnv, rules: list[pb.LifecycleRule], bucket: str = BUCKET) -> Any:
    return env.buckets.SetBucketLifecycle(
        pb.SetBucketLifecycleRequest(bucket=bucket, rules=rules),
        metadata=env.signed(BUCKETS + "SetBucketLifecycle"),
    )


def _get(env: GrpcEnv, bucket: str = BUCKET) -> Any:
    return env.buckets.GetBucketLifecycle(
        pb.GetBucketLifecycleRequest(bucket=bucket),
        metadata=env.signed(BUCKETS + "GetBucketLifecycle"),
    )


def _get_tags(env: GrpcEnv, bucket: str = BUCKET) -> Any:
    return env.buckets.GetBucketTagging(
        pb.GetBucketTaggingRequest(bucket=bucket),
        metadata=env.signed(BUCKETS + "GetBucketTagging"),
    )


def _set_tags(env: GrpcEnv, tags: dict[str, str], bucket: str = BUCKET) -> Any:
    return env.buckets.SetBucketTagging(
        pb.SetBucketTaggingRequest(bucket=bucket, tags=tags),
        metadata=env.signed(BUCKETS + "SetBucketTagging"),
    )


# --- lifecycle ----------------------------------------------------------------------------------
@grpc_test
async def test_a_configuration_round_trips_with_every_field(env: GrpcEnv) -> None:
    async with env.client() as client:
        await client.create_bucket(BUCKET)
        stored = await client.set_bucket_lifecycle(BUCKET, RULES)
        named = stored[3].id
        assert named  # a rule without an id is given one
        assert stored[:3] == RULES[:3]
        assert stored[3] == pb.LifecycleRule(
            id=named, enabled=True, filter=pb.LifecycleFilter(size_less_than=5), noncurrent_days=1
        )
        assert await client.get_bucket_lifecycle(BUCKET) == stored
    # Unset optional fields stay unset (not 0 or false), and a filter of several conditions is
    # S3's And.
    got = (await _get(env)).rules
    assert not got[1].HasField("expiration_days") and not got[1].HasField("noncurrent_days")
    assert not got[2].HasField("filter")
    assert got[3].filter.HasField("size_less_than") and not got[3].filter.HasField(
        "size_greater_than"
    )
    core = (await env.store.head_bucket(BUCKET)).lifecycle
    assert core is not None
    assert [rule.filter.form for rule in core] == [FILTER_AND, FILTER_ONE, FILTER_ONE, FILTER_ONE]
    assert core[0].filter.size_greater_than == 0 and core[0].newer_noncurrent_versions == 3


@pytest.mark.parametrize(("rules", "code"), BAD_CONFIGURATIONS)
@grpc_test
async def test_every_bad_configuration_has_its_status_and_changes_nothing(
    env: GrpcEnv, rules: list[pb.LifecycleRule], code: str
) -> None:
    async with env.client() as client:
        await client.create_bucket(BUCKET)
        kept = await client.set_bucket_lifecycle(BUCKET, [_rule()])
        await expect_status(_set(env, rules), S.INVALID_ARGUMENT, code)
        assert await client.get_bucket_lifecycle(BUCKET) == kept
        # Refused the same way on a bucket without a configuration, which still has none.
        await client.create_bucket("bare")
        await expect_status(_set(env, rules, "bare"), S.INVALID_ARGUMENT, code)
        await expect_status(_get(env, "bare"), S.NOT_FOUND, "NoSuchLifecycleConfiguration")


@grpc_test
async def test_get_after_delete_is_not_found(env: GrpcEnv) -> None:
    async with env.client() as client:
        await client.create_bucket(BUCKET)
        await expect_status(_get(env), S.NOT_FOUND, "NoSuchLifecycleConfiguration")
        await client.set_bucket_lifecycle(BUCKET, [_rule()])
        await client.delete_bucket_lifecycle(BUCKET)
        error = await expect_status(_get(env), S.NOT_FOUND, "NoSuchLifecycleConfiguration")
        assert error.details() == (
            "NoSuchLifecycleConfiguration: The lifecycle configuration does not exist"
        )
        with pytest.raises(errors.NoSuchConfiguration) as caught:
            await client.get_bucket_lifecycle(BUCKET)
        assert caught.value.code == "NoSuchLifecycleConfiguration"
        await client.delete_bucket_lifecycle(BUCKET)  # none to delete: still fine
    assert (await env.store.head_bucket(BUCKET)).lifecycle is None
    for call in (_get(env, "missing"), _set(env, [_rule()], "missing")):
        await expect_status(call, S.NOT_FOUND, "NoSuchBucket")


# --- bucket tags --------------------------------------------------------------------------------
@grpc_test
async def test_bucket_tags_round_trip_within_s3s_limits(env: GrpcEnv) -> None:
    async with env.client() as client:
        await client.create_bucket(BUCKET)
        await expect_status(_get_tags(env), S.NOT_FOUND, "NoSuchTagSet")
        fifty = {f"k{i}": f"v{i}" for i in range(50)}
        assert await client.set_bucket_tags(BUCKET, fifty) == fifty
        assert await client.get_bucket_tags(BUCKET) == fifty
        for bad in (
            {f"k{i}": "v" for i in range(51)},
            {"aws:owner": "x"},
            {"k" * 129: "v"},
            {"k": "v" * 257},
            {"": "v"},
        ):
            await expect_status(_set_tags(env, bad), S.INVALID_ARGUMENT, "InvalidTag")
            assert dict((await _get_tags(env)).tags) == fifty
        # An empty set is a tag set; deleting leaves none.
        assert await client.set_bucket_tags(BUCKET, {}) == {}
        assert await client.get_bucket_tags(BUCKET) == {}
        await client.delete_bucket_tags(BUCKET)
        error = await expect_status(_get_tags(env), S.NOT_FOUND, "NoSuchTagSet")
        assert error.details() == "NoSuchTagSet: The TagSet does not exist"
        with pytest.raises(errors.NoSuchConfiguration):
            await client.get_bucket_tags(BUCKET)
    assert (await env.store.head_bucket(BUCKET)).tags is None
    await expect_status(_set_tags(env, {"a": "b"}, "missing"), S.NOT_FOUND, "NoSuchBucket")


# --- access -------------------------------------------------------------------------------------
@grpc_test
async def test_each_call_needs_its_s3_action(env: GrpcEnv) -> None:
    """A key granted read on the bucket reads its configurations but cannot change them; a key
    with no grant on it does neither."""
    await env.credentials.create(
        access_key_id=OTHER_KEY,
        secret_access_key=SECRET,
        name="limited",
        admin=False,
        grants={"readable": "read"},
    )
    async with env.client() as client:
        for name in (BUCKET, "readable"):
            await client.create_bucket(name)
            await client.set_bucket_lifecycle(name, [_rule()])
            await client.set_bucket_tags(name, {"a": "b"})
            await client.put_object(name, "k", b"data")

    def call(method: str, request: Any, service: str = BUCKETS) -> Any:
        stub = env.objects if service == OBJECTS else env.buckets
        return getattr(stub, method)(
            request, metadata=call_metadata(OTHER_KEY, SECRET, service + method)
        )

    def writes(bucket: str) -> list[Any]:
        return [
            call("SetBucketLifecycle", pb.SetBucketLifecycleRequest(bucket=bucket, rules=RULES)),
            call("DeleteBucketLifecycle", pb.DeleteBucketLifecycleRequest(bucket=bucket)),
            call("SetBucketTagging", pb.SetBucketTaggingRequest(bucket=bucket, tags={"x": "y"})),
            call("DeleteBucketTagging", pb.DeleteBucketTaggingRequest(bucket=bucket)),
        ]

    def reads(bucket: str) -> list[Any]:
        return [
            call("GetBucketLifecycle", pb.GetBucketLifecycleRequest(bucket=bucket)),
            call("GetBucketTagging", pb.GetBucketTaggingRequest(bucket=bucket)),
            call(
                "GetObjectAttributes",
                pb.GetObjectAttributesRequest(bucket=bucket, key="k"),
                OBJECTS,
            ),
        ]

    for refused in writes("readable") + writes(BUCKET) + reads(BUCKET):
        await expect_status(refused, S.PERMISSION_DENIED, "AccessDenied")
    lifecycle, tags, attributes = [await allowed for allowed in reads("readable")]
    assert [rule.id for rule in lifecycle.rules] == ["kept"]
    assert dict(tags.tags) == {"a": "b"}
    assert attributes.object.size == 4
    for name in (BUCKET, "readable"):
        info = await env.store.head_bucket(name)
        assert info.tags == {"a": "b"}
        assert info.lifecycle is not None and [r.id for r in info.lifecycle] == ["kept"]


# --- object attributes --------------------------------------------------------------------------
def _attributes(env: GrpcEnv, key: str, **fields: Any) -> Any:
    return env.objects.GetObjectAttributes(
        pb.GetObjectAttributesRequest(bucket=BUCKET, key=key, **fields),
        metadata=env.signed(OBJECTS + "GetObjectAttributes"),
    )


async def _put_multipart(client: Client, key: str, *sizes: int) -> pb.Object:
    """An upload with per-part CRC32C checksums, part n being ``sizes[n - 1]`` bytes of n."""
    upload = await client.create_multipart_upload(BUCKET, key, checksum_algorithm="crc32c")
    done = [
        await client.upload_part(upload, number, bytes([number]) * size)
        for number, size in enumerate(sizes, start=1)
    ]
    return await client.complete_multipart_upload(upload, done)


@grpc_test
async def test_attributes_of_a_multipart_object_page_through_its_parts(env: GrpcEnv) -> None:
    sizes = (5 * MiB, 5 * MiB, 3)
    async with env.client() as client:
        await client.create_bucket(BUCKET)
        await client.put_object(BUCKET, "k", b"meta", metadata={"secret": "s"}, tags={"t": "v"})
        obj = await _put_multipart(client, "big", *sizes)
        first = await client.get_object_attributes(BUCKET, "big", max_parts=2)
    assert (first.object.size, first.object.etag) == (obj.size, obj.etag)
    assert first.object.etag.endswith("-3")
    assert dict(first.object.checksums) == dict(obj.checksums)
    assert first.object.checksums["crc32c"].endswith("-3")  # S3's COMPOSITE checksum
    assert first.object.version_id == obj.version_id == "null"
    assert first.object.modified_unix_nanos == obj.modified_unix_nanos
    assert (first.parts_count, first.truncated) == (3, True)
    assert [(p.part_number, p.size) for p in first.parts] == [(1, 5 * MiB), (2, 5 * MiB)]
    assert all(set(p.checksums) == {"crc32c"} for p in first.parts)
    rest = await _attributes(env, "big", part_number_marker=2, max_parts=2)
    assert (rest.parts_count, rest.truncated) == (3, False)
    assert [(p.part_number, p.size) for p in rest.parts] == [(3, 3)]
    assert (await _attributes(env, "big", part_number_marker=3)).parts == []
    whole = await _attributes(env, "big")
    assert [p.part_number for p in whole.parts] == [1, 2, 3] and not whole.truncated
    # A single-piece object has no parts; nothing a read would reveal is answered.
    single = await _attributes(env, "k")
    assert (single.parts_count, list(single.parts), single.truncated) == (0, [], False)
    assert single.object.size == 4 and single.object.etag
    assert not single.object.metadata and not single.object.tags
    assert not single.object.HasField("headers")
    await expect_status(_attributes(env, "big", max_parts=1001), S.INVALID_ARGUMENT,
                        "InvalidArgument")  # fmt: skip
    await expect_status(_attributes(env, "absent"), S.NOT_FOUND, "NoSuchKey")
    await expect_status(_attributes(env, "k", version_id="bad"), S.INVALID_ARGUMENT,
                        "InvalidArgument")  # fmt: skip
