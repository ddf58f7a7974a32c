"""Lifecycle rules (objects/lifecycle/rules.py, plan.py) and the worker that applies them
(worker.py), on a real store with a clock the test moves: what expires, when, what stays, and
that a rewrite, a lock, a rule change or a restart mid-pass is respected."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import pytest

from lightningstor import errors
from lightningstor.meta import keyspace as ks
from lightningstor.meta.lifecycle_record import decode_state
from lightningstor.model import (
    COMPLIANCE,
    VERSIONING_ENABLED,
    ContentHeaders,
    LifecycleFilter,
    LifecycleRule,
    ObjectHead,
    ObjectLock,
    Owner,
    Protection,
    Retention,
    Transition,
)
from lightningstor.objects.lifecycle.plan import Kind, plan_key
from lightningstor.objects.lifecycle.rules import DAY_NS, check_rules, due_ns, expiration_of
from lightningstor.objects.lifecycle.worker import LifecycleWorker
from lightningstor.objects.store import ObjectStore

OWNER = Owner("owner-id", "owner")
DAY = 10**9  # the tests' "day": one second of the fake clock


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


def rule(rule_id: str = "r", prefix: str = "", **fields: object) -> LifecycleRule:
    return LifecycleRule(id=rule_id, enabled=True, filter=LifecycleFilter(prefix=prefix), **fields)  # type: ignore[arg-type]


def worker(store: ObjectStore, clock: Clock) -> LifecycleWorker:
    return store.lifecycle_worker(
        interval_seconds=1, objects_per_second=0, day_seconds=DAY / 1e9, clock=clock
    )


# --- rules ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rules", "error", "message"),
    [
        ([], errors.InvalidRequest, "at least one rule"),
        ([rule("x" * 256, expiration_days=1)], errors.InvalidArgument, "255"),
        (
            [rule("a", expiration_days=1), rule("a", expiration_days=2)],
            errors.InvalidArgument,
            "unique",
        ),
        ([rule()], errors.InvalidRequest, "At least one action"),
        ([rule(expiration_days=0)], errors.InvalidArgument, "'Days' for Expiration"),
        ([rule(expiration_date_ns=DAY_NS + 1)], errors.InvalidArgument, "midnight"),
        ([rule(noncurrent_days=-1)], errors.InvalidArgument, "NoncurrentDays"),
        ([rule(noncurrent_days=1, newer_noncurrent_versions=101)], errors.InvalidArgument, "100"),
        ([rule(abort_upload_days=0)], errors.InvalidArgument, "DaysAfterInitiation"),
        (
            [
                LifecycleRule(
                    id="t",
                    enabled=True,
                    filter=LifecycleFilter(tags={"a": "b"}),
                    abort_upload_days=1,
                )
            ],
            errors.InvalidRequest,
            "Tags",
        ),
        (
            [
                LifecycleRule(
                    id="t",
                    enabled=True,
                    filter=LifecycleFilter(tags={"a": "b"}),
                    expired_object_delete_marker=True,
                )
            ],
            errors.InvalidRequest,
            "tags",
        ),
        (
            [
                LifecycleRule(
                    id="s",
                    enabled=True,
                    filter=LifecycleFilter(size_greater_than=10, size_less_than=10),
                    expiration_days=1,
                )
            ],
            errors.InvalidArgument,
            "less than",
        ),
        (
            [rule(transitions=(Transition(storage_class="GLACIER", days=30),))],
            errors.InvalidStorageClass,
            "STANDARD",
        ),
    ],
)
def test_configurations_s3_refuses(
    rules: list[LifecycleRule], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        check_rules(rules)


def test_rules_without_an_id_get_one() -> None:
    checked = check_rules([rule("", expiration_days=1), rule("", expiration_days=2)])
    assert all(r.id for r in checked) and checked[0].id != checked[1].id


def test_days_round_up_to_midnight_utc_but_a_test_day_is_exact() -> None:
    noon = 10 * DAY_NS + DAY_NS // 2
    assert due_ns(noon, 1) == 12 * DAY_NS  # 1.5 days later, rounded up to midnight
    assert due_ns(11 * DAY_NS, 1) == 12 * DAY_NS  # created at midnight: exactly a day
    assert due_ns(noon, 2, DAY) == noon + 2 * DAY


def head(key: str, *, mtime: int = 0, size: int = 10, **fields: object) -> ObjectHead:
    return ObjectHead(
        bucket="b", key=key, size=size, md5_hex="", etag="", mtime_ns=mtime,
        headers=ContentHeaders(), user_metadata={}, checksums={}, segments=(), **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def test_expiration_header_names_the_earliest_rule_that_applies() -> None:
    rules = check_rules(
        [
            rule("late", expiration_days=30),
            rule("soon", "logs/", expiration_days=2),
            LifecycleRule(
                id="tagged",
                enabled=True,
                filter=LifecycleFilter(tags={"t": "1"}),
                expiration_days=1,
            ),
            LifecycleRule(id="off", enabled=False, expiration_days=1),
        ]
    )
    assert expiration_of(rules, head("logs/a")) == (2 * DAY_NS, "soon")
    assert expiration_of(rules, head("other")) == (30 * DAY_NS, "late")
    assert expiration_of(rules, head("x", tags={"t": "1"})) == (DAY_NS, "tagged")
    assert expiration_of(rules, head("logs/a", delete_marker=True)) is None


# --- planning ---------------------------------------------------------------------------------
def test_filters_choose_by_prefix_tags_and_size() -> None:
    rules = [
        LifecycleRule(
            id="f",
            enabled=True,
            filter=LifecycleFilter(
                prefix="p/", tags={"k": "v"}, size_greater_than=5, size_less_than=100
            ),
            expiration_days=1,
        )
    ]

    def expires(h: ObjectHead) -> bool:
        return bool(plan_key(rules, h, (), now_ns=5 * DAY, day_ns=DAY))

    assert expires(head("p/a", tags={"k": "v", "other": "x"}))
    assert not expires(head("q/a", tags={"k": "v"}))
    assert not expires(head("p/a", tags={"k": "w"}))
    assert not expires(head("p/a", tags={"k": "v"}, size=5))  # bounds are exclusive
    assert not expires(head("p/a", tags={"k": "v"}, size=100))


def test_noncurrent_versions_count_from_their_successor_and_keep_the_newest() -> None:
    rules = [rule(noncurrent_days=2, newer_noncurrent_versions=1)]
    current = head("k", mtime=10 * DAY, version_id="c")
    older = [head("k", mtime=(9 - i) * DAY, version_id=f"v{i}") for i in range(3)]
    # v0 became noncurrent at 10 (kept: the newest noncurrent), v1 at 9, v2 at 8.
    assert [a.version_id for a in plan_key(rules, current, older, now_ns=10 * DAY, day_ns=DAY)] == [
        "v2"
    ]
    due = plan_key(rules, current, older, now_ns=11 * DAY, day_ns=DAY)
    assert [(a.kind, a.version_id) for a in due] == [
        (Kind.NONCURRENT, "v1"),
        (Kind.NONCURRENT, "v2"),
    ]


def test_a_delete_marker_goes_only_once_nothing_is_under_it() -> None:
    marker = head("k", mtime=5 * DAY, size=0, delete_marker=True, version_id="m")
    version = head("k", mtime=4 * DAY, version_id="v")
    eodm = [rule(expired_object_delete_marker=True)]
    assert plan_key(eodm, marker, [version], now_ns=9 * DAY, day_ns=DAY) == []
    assert [a.kind for a in plan_key(eodm, marker, [], now_ns=5 * DAY, day_ns=DAY)] == [Kind.MARKER]
    both = [rule(expired_object_delete_marker=True, noncurrent_days=1)]
    due = plan_key(both, marker, [version], now_ns=6 * DAY, day_ns=DAY)
    assert [a.kind for a in due] == [Kind.NONCURRENT, Kind.MARKER]
    days = [rule(expiration_days=3)]  # Days removes a lone marker once it is that old
    assert plan_key(days, marker, [], now_ns=7 * DAY, day_ns=DAY) == []
    assert [a.kind for a in plan_key(days, marker, [], now_ns=8 * DAY, day_ns=DAY)] == [Kind.MARKER]


# --- the worker on a real store ---------------------------------------------------------------
async def put(store: ObjectStore, bucket: str, key: str, data: bytes = b"data") -> ObjectHead:
    return await store.put_object(bucket, key, body(data))


def test_expired_objects_go_with_their_blobs_and_others_stay(store: ObjectStore) -> None:
    async def main() -> None:
        clock = Clock()
        await store.create_bucket("lc1", owner=OWNER)
        for key in ("logs/a", "logs/b", "keep/c"):
            await put(store, "lc1", key, key.encode() * 100)
        upload = await store.uploads.create("lc1", "logs/upload")
        await store.uploads.create("lc1", "keep/upload")
        await store.set_lifecycle(
            "lc1", [rule("logs", "logs/", expiration_days=1, abort_upload_days=1)]
        )
        w = worker(store, clock)
        clock.now = time.time_ns() + DAY // 2  # half a day: nothing is due
        assert (await w.run_pass()).expired_objects == 0
        clock.now += DAY
        state = await w.run_pass()
        assert (state.expired_objects, state.expired_bytes, state.uploads_aborted) == (2, 1200, 1)
        assert [e.key for e in (await store.list_objects("lc1")).entries] == ["keep/c"]
        uploads, _ = await store.uploads.list_uploads("lc1")
        assert [u.key for u in uploads] == ["keep/upload"]
        assert upload.upload_id not in {u.upload_id for u in uploads}
        assert await store.collect_garbage() >= 2  # the expired bodies' blobs
        again = await w.run_pass()
        assert (again.expired_objects, again.passes) == (2, 3)

    asyncio.run(main())


def test_versioned_buckets_get_markers_then_lose_old_versions(store: ObjectStore) -> None:
    async def main() -> None:
        clock = Clock()
        await store.create_bucket("lc2", owner=OWNER)
        await store.set_versioning("lc2", VERSIONING_ENABLED)
        first = await put(store, "lc2", "k", b"one")
        await put(store, "lc2", "k", b"two")
        await store.set_lifecycle(
            "lc2", [rule(expiration_days=1, noncurrent_days=1, expired_object_delete_marker=None)]
        )
        w = worker(store, clock)
        clock.now = time.time_ns() + DAY + 1
        state = await w.run_pass()
        # "two" expired behind a marker; "one", noncurrent for a day, went for good.
        assert (state.expired_objects, state.noncurrent_expired) == (1, 1)
        page = await store.list_object_versions("lc2")
        kinds = sorted((e.delete_marker, e.version_id == first.version_id) for e in page.entries)
        assert kinds == [(False, False), (True, False)]
        clock.now += DAY
        state = await w.run_pass()  # "two" noncurrent a day; then the marker is alone and old
        assert (state.noncurrent_expired, state.markers_removed) == (2, 1)
        assert not (await store.list_object_versions("lc2")).entries

    asyncio.run(main())


def test_an_object_rewritten_after_the_worker_read_it_is_not_expired(store: ObjectStore) -> None:
    async def main() -> None:
        clock = Clock()
        await store.create_bucket("lc3", owner=OWNER)
        old = await put(store, "lc3", "k", b"old")
        await store.set_lifecycle("lc3", [rule(expiration_days=1)])
        w = worker(store, clock)
        clock.now = old.mtime_ns + 2 * DAY
        (entry,) = w._read_page("lc3", "")
        (action,) = plan_key(
            [rule(expiration_days=1)], entry.current, (), now_ns=clock.now, day_ns=DAY
        )
        clock.now = time.time_ns() + DAY // 2  # the rewrite below is half a day old then
        await put(store, "lc3", "k", b"new")
        await w._act("lc3", "k", action)
        assert w.state.expired_objects == 0
        reader = await store.open_object("lc3", "k")
        assert b"".join([c async for c in reader.chunks]) == b"new"

    asyncio.run(main())


def test_locked_versions_and_disabled_rules_are_left_alone(store: ObjectStore) -> None:
    async def main() -> None:
        clock = Clock()
        await store.create_bucket("lc4", owner=OWNER, object_lock=True)
        await store.set_object_lock("lc4", ObjectLock())
        until = time.time_ns() + 100 * DAY_NS
        await store.put_object(
            "lc4",
            "k",
            body(b"v1"),
            protection=Protection(retention=Retention(mode=COMPLIANCE, until_ns=until)),
        )
        await put(store, "lc4", "k", b"v2")
        await store.set_lifecycle("lc4", [rule(noncurrent_days=1)])
        w = worker(store, clock)
        clock.now = time.time_ns() + 2 * DAY
        state = await w.run_pass()
        assert (state.noncurrent_expired, state.locked_skipped) == (0, 1)
        assert len((await store.list_object_versions("lc4")).entries) == 2
        await store.set_lifecycle(
            "lc4", [dataclasses.replace(rule(expiration_days=1), enabled=False)]
        )
        assert (await w.run_pass()).expired_objects == 0

    asyncio.run(main())


def test_a_restarted_worker_resumes_its_pass_and_counts_nothing_twice(store: ObjectStore) -> None:
    async def main() -> None:
        clock = Clock()
        await store.create_bucket("lc5", owner=OWNER)
        for i in range(250):  # three pages
            await put(store, "lc5", f"k{i:03d}", b"x")
        await store.set_lifecycle("lc5", [rule(expiration_days=1)])
        clock.now = time.time_ns() + 2 * DAY
        first = worker(store, clock)
        task = asyncio.create_task(first.run_pass())
        while first.state.after < "k100":  # stop it after its first page
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        saved = decode_state(store.kv.get(ks.LIFECYCLE_KEY))
        assert (
            saved.pass_started_ns and saved.bucket == "lc5" and 100 <= saved.expired_objects < 250
        )
        second = worker(store, clock)
        await second.load()
        done = await second.run_pass()
        assert (done.expired_objects, done.passes) == (250, 1)
        assert not (await store.list_objects("lc5")).entries

    asyncio.run(main())


def test_expirations_take_one_form_and_bounded_counts() -> None:
    for fields in (
        {"expiration_days": 1, "expiration_date_ns": DAY_NS},
        {"expiration_days": 1, "expired_object_delete_marker": True},
        {"expiration_days": 2**31},
        {"expiration_date_ns": 10**21 // DAY_NS * DAY_NS},  # past 2262
        {"abort_upload_days": 2**31},
    ):
        with pytest.raises(errors.InvalidArgument):
            check_rules([rule("r", "", **fields)])
    assert check_rules([rule(expiration_days=2**31 - 1)])
