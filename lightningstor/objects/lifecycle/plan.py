"""What a bucket's lifecycle rules do to one key now: the actions due on its current version
and its noncurrent versions, decided from a snapshot of them. Pure. The worker plans from what
it read, then re-plans inside each action's commit from what the commit read, so an object
rewritten (or a rule changed) in between is not acted on (worker.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from lightningstor.model import LifecycleRule, ObjectHead
from lightningstor.objects.lifecycle.rules import DAY_NS, due_ns, enabled_for, expiry


class Kind(Enum):
    EXPIRE = "expire"  # the current version expires (a delete marker in a versioned bucket)
    NONCURRENT = "noncurrent"  # a noncurrent version goes for good
    MARKER = "marker"  # a delete marker with no versions left under it goes


@dataclass(frozen=True, slots=True)
class Action:
    kind: Kind
    version_id: str
    size: int  # the bytes it frees (0 for a delete marker)
    rule_id: str


def plan_key(
    rules: Sequence[LifecycleRule],
    current: ObjectHead,
    noncurrent: Sequence[ObjectHead],
    *,
    now_ns: int,
    day_ns: int = DAY_NS,
) -> list[Action]:
    """The actions due on a key whose current version is ``current`` and whose noncurrent
    versions are ``noncurrent``, newest first: noncurrent ones first, as a delete marker only
    expires once no version is left under it."""
    actions = []
    newer = current  # a version became noncurrent when the version above it was written
    for index, version in enumerate(noncurrent):
        rule = _noncurrent_rule(rules, version, index, newer.mtime_ns, now_ns=now_ns, day_ns=day_ns)
        if rule is not None:
            actions.append(Action(Kind.NONCURRENT, version.version_id, version.size, rule.id))
        newer = version
    if current.delete_marker:
        if len(actions) == len(noncurrent):
            rule = _marker_rule(rules, current, now_ns, day_ns)
            if rule is not None:
                actions.append(Action(Kind.MARKER, current.version_id, 0, rule.id))
        return actions
    for rule in enabled_for(rules, current):
        when = expiry(rule, current.mtime_ns, day_ns)
        if when is not None and when <= now_ns:
            actions.append(Action(Kind.EXPIRE, current.version_id, current.size, rule.id))
            break
    return actions


def _noncurrent_rule(
    rules: Sequence[LifecycleRule],
    version: ObjectHead,
    newer_count: int,
    noncurrent_since_ns: int,
    *,
    now_ns: int,
    day_ns: int,
) -> LifecycleRule | None:
    for rule in enabled_for(rules, version):
        if rule.noncurrent_days is None:
            continue
        if newer_count < (rule.newer_noncurrent_versions or 0):
            continue  # one of the newest noncurrent versions the rule keeps
        if due_ns(noncurrent_since_ns, rule.noncurrent_days, day_ns) <= now_ns:
            return rule
    return None


def _marker_rule(
    rules: Sequence[LifecycleRule], marker: ObjectHead, now_ns: int, day_ns: int
) -> LifecycleRule | None:
    """A rule that removes a delete marker left alone: ExpiredObjectDeleteMarker, or an
    expiration in days once the marker is that old (S3 "Removing expired object delete
    markers": "When you specify the Days tag, Amazon S3 automatically performs
    ExpiredObjectDeleteMarker cleanup when the delete markers are old enough")."""
    for rule in enabled_for(rules, marker):
        if rule.expired_object_delete_marker:
            return rule
        days = rule.expiration_days
        if days is not None and due_ns(marker.mtime_ns, days, day_ns) <= now_ns:
            return rule
    return None
