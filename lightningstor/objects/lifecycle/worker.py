"""The lifecycle worker: a pass over every bucket with a lifecycle configuration, in keyspace
order, applying the actions its rules make due (plan.py), then a pause, then the next pass.

- Paced: at most ``objects_per_second`` versions and uploads are examined a second, read a page
  per pool job, so a pass over a large store leaves the pool and the disk to requests.
- Resumable: its place (bucket, phase, last key done) is kept in the keyspace (``m/lifecycle``)
  after every page, so a restart continues the pass where it was.
- One metadata commit per action, and the action's count in that same commit: a crash loses
  neither, and a resumed pass does not count an action twice.
- Safe against concurrent writes: each action's commit re-reads the key (its ``o/`` record and
  its versions, all then expected unchanged) and re-plans from what it read; an object
  rewritten, re-tagged or locked since the worker first looked is left as it now deserves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from lightningstor.blobs.references import WriteUnit
from lightningstor.errors import ConditionalRequestConflict, ObjectLocked, StorageError
from lightningstor.meta import keyspace as ks
from lightningstor.meta.kv import OrderedKV
from lightningstor.meta.lifecycle_record import LifecycleState, decode_state, encode_state
from lightningstor.meta.records import decode_bucket, decode_object, decode_upload
from lightningstor.model import LifecycleRule, ObjectHead
from lightningstor.objects.commits import Commits
from lightningstor.objects.lifecycle.plan import Action, Kind, plan_key
from lightningstor.objects.lifecycle.rules import DAY_NS, due_ns
from lightningstor.objects.multipart import MultipartUploads
from lightningstor.objects.versions import delete_current, delete_version
from lightningstor.offload import Offloader

log = logging.getLogger("lightningstor.lifecycle")

PAGE_KEYS = 100
# Versions of one key read in one pass; a key with more has the rest seen in later passes.
MAX_VERSIONS_PER_KEY = 1000
_RETRY_SECONDS = 60.0
_MAX_BURST_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class _Key:
    key: str
    current: ObjectHead
    noncurrent: tuple[ObjectHead, ...]


class LifecycleWorker:
    def __init__(
        self,
        *,
        kv: OrderedKV,
        io: Offloader,
        commits: Commits,
        uploads: MultipartUploads,
        interval_seconds: float,
        objects_per_second: float,
        day_seconds: float = DAY_NS / 1e9,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._kv, self._io, self._commits, self._multipart = kv, io, commits, uploads
        self.interval_seconds = interval_seconds
        self.objects_per_second = objects_per_second
        self.day_ns = round(day_seconds * 1e9)
        self._clock = clock
        self.state = LifecycleState()  # the last saved; read by metrics
        self._budget_at = time.monotonic()

    @property
    def enabled(self) -> bool:
        return self.interval_seconds > 0

    async def load(self) -> LifecycleState:
        self.state = decode_state(await self._io.run(self._kv.get, ks.LIFECYCLE_KEY))
        return self.state

    async def run_forever(self) -> None:
        await self.load()
        while True:
            try:
                await self.run_pass()
            except Exception:
                log.exception("lifecycle pass failed; retrying in %.0f s", _RETRY_SECONDS)
                await asyncio.sleep(_RETRY_SECONDS)
                continue
            await asyncio.sleep(self.interval_seconds)

    # --- a pass ---------------------------------------------------------------------------
    async def run_pass(self) -> LifecycleState:
        """Finish the pass under way (a new one if none is), then return the totals."""
        state = started = self.state
        if not state.pass_started_ns:
            state = dataclasses.replace(state, pass_started_ns=self._clock(), bucket="", after="")
            await self._save(state)
        else:
            log.info("lifecycle pass resumed in bucket %r after %r", state.bucket, state.after)
        while (bucket := await self._bucket_from(self.state)) is not None:
            rules = bucket[1]
            if rules:
                if self.state.phase == "objects":
                    await self._objects(bucket[0], rules)
                    await self._save(dataclasses.replace(self.state, phase="uploads", after=""))
                await self._uploads(bucket[0], rules)
            # Past the bucket ("\x00" sorts right after its name). Only a bucket whose rules
            # made work is worth a commit: skipping the others again after a crash is cheap.
            past = dataclasses.replace(
                self.state, bucket=bucket[0] + "\x00", phase="objects", after=""
            )
            if rules:
                await self._save(past)
            self.state = past
        seconds = (self._clock() - self.state.pass_started_ns) / 1e9
        done = dataclasses.replace(
            self.state,
            pass_started_ns=0,
            bucket="",
            phase="objects",
            after="",
            passes=self.state.passes + 1,
            last_pass_seconds=seconds,
        )
        await self._save(done)
        acted = _actions(done) != _actions(started)
        log.log(
            logging.INFO if acted else logging.DEBUG,
            "lifecycle pass done in %.1f s: %d objects expired (%d bytes), %d noncurrent "
            "versions, %d delete markers, %d uploads aborted in all",
            seconds,
            done.expired_objects,
            done.expired_bytes,
            done.noncurrent_expired,
            done.markers_removed,
            done.uploads_aborted,
        )
        return done

    async def _bucket_from(
        self, state: LifecycleState
    ) -> tuple[str, tuple[LifecycleRule, ...]] | None:
        """The first bucket at or after the pass's place, and its enabled rules."""
        start = ks.bucket_key(state.bucket)
        rows = await self._io.run(self._kv.scan, start, ks.prefix_end(ks.BUCKET_PREFIX), limit=1)
        if not rows:
            return None
        name = ks.bucket_from_key(rows[0][0])
        if name != state.bucket:  # a new bucket: start it from its beginning
            self.state = dataclasses.replace(state, bucket=name, phase="objects", after="")
        info = decode_bucket(name, rows[0][1]).info
        return name, tuple(rule for rule in info.lifecycle or () if rule.enabled)

    async def _save(self, state: LifecycleState) -> None:
        unit = self._commits.unit()
        unit.put(ks.LIFECYCLE_KEY, encode_state(state))
        await unit.commit()  # only the worker writes its record: nothing to lose a race to
        self.state = state

    async def _pace(self, examined: int) -> None:
        """Sleep as long as ``examined`` more objects cost at the configured rate."""
        if self.objects_per_second <= 0:
            return
        now = time.monotonic()
        self._budget_at = max(self._budget_at, now - _MAX_BURST_SECONDS)
        self._budget_at += examined / self.objects_per_second
        if self._budget_at > now:
            await asyncio.sleep(self._budget_at - now)

    # --- objects --------------------------------------------------------------------------
    async def _objects(self, bucket: str, rules: tuple[LifecycleRule, ...]) -> None:
        while True:
            page = await self._io.run(self._read_page, bucket, self.state.after)
            if not page:
                return
            for entry in page:
                for action in plan_key(
                    rules, entry.current, entry.noncurrent, now_ns=self._clock(), day_ns=self.day_ns
                ):
                    await self._act(bucket, entry.key, action)
            await self._save(dataclasses.replace(self.state, after=page[-1].key))
            await self._pace(sum(1 + len(e.noncurrent) for e in page))

    def _read_page(self, bucket: str, after: str) -> list[_Key]:
        """Up to PAGE_KEYS keys after ``after`` with their versions (one pool job)."""
        base = ks.object_prefix(bucket)
        start = ks.object_key(bucket, after) + b"\x00" if after else base
        rows = self._kv.scan(start, ks.prefix_end(base), limit=PAGE_KEYS)
        page = []
        for raw_key, raw in rows:
            key = ks.key_from_object_key(base, raw_key)
            prefix = ks.key_versions_prefix(bucket, key)
            versions = self._kv.scan(prefix, ks.prefix_end(prefix), limit=MAX_VERSIONS_PER_KEY)
            page.append(
                _Key(
                    key,
                    decode_object(bucket, key, raw),
                    tuple(decode_object(bucket, key, v) for _k, v in versions),
                )
            )
        return page

    async def _act(self, bucket: str, key: str, action: Action) -> None:
        try:
            state = await self._commits.transact(
                lambda unit: self._attempt(unit, bucket, key, action),
                conflict=lambda: ConditionalRequestConflict(resource=key),
            )
        except ObjectLocked:
            await self._save(
                dataclasses.replace(self.state, locked_skipped=self.state.locked_skipped + 1)
            )
            return
        except StorageError as exc:  # the bucket went, the key kept changing: next pass
            log.debug("lifecycle %s of %s/%s skipped: %s", action.kind.value, bucket, key, exc)
            return
        if state is not None:
            self.state = state
            log.debug(
                "lifecycle rule %r: %s %s/%s version %s",
                action.rule_id,
                action.kind.value,
                bucket,
                key,
                action.version_id,
            )

    async def _attempt(
        self, unit: WriteUnit, bucket: str, key: str, action: Action
    ) -> LifecycleState | None:
        """The action, if the key as this commit reads it still makes it due; the state with
        its count, written in the same commit (None: nothing done)."""
        bucket_raw, current_raw = await self._commits.bucket_and_object(unit, bucket, key)
        info = decode_bucket(bucket, bucket_raw).info
        if current_raw is None or not info.lifecycle:
            return None
        current = decode_object(bucket, key, current_raw)
        prefix = ks.key_versions_prefix(bucket, key)
        rows = await unit.scan(prefix, ks.prefix_end(prefix), limit=MAX_VERSIONS_PER_KEY)
        for raw_key, raw in rows:
            unit.expect(raw_key, raw)  # a version deleted meanwhile fails the commit
        noncurrent = [decode_object(bucket, key, raw) for _k, raw in rows]
        rules = [rule for rule in info.lifecycle if rule.enabled]
        due = plan_key(rules, current, noncurrent, now_ns=self._clock(), day_ns=self.day_ns)
        if action not in due:
            return None
        state = self.state
        if action.kind is Kind.EXPIRE:
            await delete_current(unit, info, bucket, key, current)
            removed = not info.versioning
            state = dataclasses.replace(
                state,
                expired_objects=state.expired_objects + 1,
                expired_bytes=state.expired_bytes + (action.size if removed else 0),
            )
        else:
            await delete_version(
                unit, bucket, key, current, action.version_id, bypass_governance=False
            )
            if action.kind is Kind.MARKER:
                state = dataclasses.replace(state, markers_removed=state.markers_removed + 1)
            else:
                state = dataclasses.replace(
                    state,
                    noncurrent_expired=state.noncurrent_expired + 1,
                    expired_bytes=state.expired_bytes + action.size,
                )
        unit.put(ks.LIFECYCLE_KEY, encode_state(state))
        return state

    # --- multipart uploads ----------------------------------------------------------------
    async def _uploads(self, bucket: str, rules: tuple[LifecycleRule, ...]) -> None:
        aborting = [rule for rule in rules if rule.abort_upload_days is not None]
        base = ks.upload_prefix(bucket)
        while aborting:
            after = self.state.after.encode()
            start = base + after + b"\x00" if after else base
            rows = await self._io.run(self._kv.scan, start, ks.prefix_end(base), limit=PAGE_KEYS)
            if not rows:
                return
            for raw_key, raw in rows:
                key, _upload_id = ks.split_upload_key(base, raw_key)
                due = self._abort_due(aborting, key, decode_upload(raw).created_ns)
                if due and await self._multipart.abort_record(raw_key, raw):
                    aborted = self.state.uploads_aborted + 1
                    await self._save(dataclasses.replace(self.state, uploads_aborted=aborted))
                    log.debug("lifecycle aborted upload %s/%s", bucket, key)
            last = rows[-1][0][len(base) :].decode()
            await self._save(dataclasses.replace(self.state, after=last))
            await self._pace(len(rows))

    def _abort_due(self, rules: list[LifecycleRule], key: str, created_ns: int) -> bool:
        now = self._clock()
        return any(
            key.startswith(rule.filter.prefix)
            and due_ns(created_ns, rule.abort_upload_days or 0, self.day_ns) <= now
            for rule in rules
        )


def _actions(state: LifecycleState) -> tuple[int, ...]:
    return (
        state.expired_objects,
        state.noncurrent_expired,
        state.markers_removed,
        state.uploads_aborted,
        state.locked_skipped,
    )
