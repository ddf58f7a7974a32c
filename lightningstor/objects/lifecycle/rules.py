"""Lifecycle rules as S3 defines them ("Lifecycle configuration elements" in the S3 user
guide): which configurations are valid, which objects a rule applies to, and when an action
falls due. Pure: the worker (worker.py) and the doors decide with these.

Days are counted as S3 counts them: from an object's creation (or from the moment a version
became noncurrent), the result rounded up to the next midnight UTC. A test day
(``lifecycle_day_seconds``) has no midnight: an action is due exactly that many test days
later. Both doors check configurations here. The S3 door refuses what S3's schema cannot
hold (a status that is neither Enabled nor Disabled, Days beside Date) as MalformedXML before
it gets here; the gRPC messages can hold some of it, which is then InvalidArgument here.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterable, Mapping, Sequence

from lightningstor.errors import InvalidArgument, InvalidRequest, InvalidStorageClass
from lightningstor.model import LifecycleFilter, LifecycleRule, ObjectHead, Transition

DAY_NS = 86_400 * 10**9
MAX_RULES = 1000
MAX_ID_CHARS = 255
MAX_NEWER_NONCURRENT = 100
# S3's day counts are 32-bit integers; the latest date is the last midnight every door can
# carry (nanoseconds in a signed 64-bit integer, as gRPC does: 2262-04-11).
MAX_DAYS = 2**31 - 1
MAX_DATE_NS = (2**63 - 1) // DAY_NS * DAY_NS
STANDARD = "STANDARD"


def check_rules(rules: Sequence[LifecycleRule]) -> tuple[LifecycleRule, ...]:
    """The configuration as stored: ``rules`` checked, those without an ID given one (as S3
    does). Raises InvalidArgument, InvalidRequest or InvalidStorageClass, as S3 does."""
    if not rules:
        raise InvalidRequest("A lifecycle configuration needs at least one rule")
    if len(rules) > MAX_RULES:
        raise InvalidRequest(f"A lifecycle configuration holds at most {MAX_RULES} rules")
    named = tuple(
        rule if rule.id else dataclasses.replace(rule, id=secrets.token_urlsafe(24))
        for rule in rules
    )
    seen: set[str] = set()
    for rule in named:
        if len(rule.id) > MAX_ID_CHARS:
            raise InvalidArgument("ID length should not exceed allowed limit of 255")
        if rule.id in seen:
            raise InvalidArgument(
                "Rule ID must be unique. Found same ID for more than one rule", resource=rule.id
            )
        seen.add(rule.id)
        _check_rule(rule)
    return named


def _check_rule(rule: LifecycleRule) -> None:
    _check_filter(rule.filter)
    actions = (
        rule.expiration_days,
        rule.expiration_date_ns,
        rule.expired_object_delete_marker,
        rule.noncurrent_days,
        rule.abort_upload_days,
    )
    if all(a is None for a in actions) and not rule.transitions + rule.noncurrent_transitions:
        raise InvalidRequest("At least one action needs to be specified in a rule")
    _positive(rule.expiration_days, "'Days' for Expiration action")
    _midnight(rule.expiration_date_ns, "'Date'")
    given = (rule.expiration_days, rule.expiration_date_ns, rule.expired_object_delete_marker)
    if sum(value is not None for value in given) > 1:
        raise InvalidArgument(
            "An Expiration action takes one of Days, Date and ExpiredObjectDeleteMarker",
            resource=rule.id,
        )
    _positive(rule.noncurrent_days, "'NoncurrentDays' for NoncurrentVersionExpiration action")
    _positive(
        rule.newer_noncurrent_versions,
        "'NewerNoncurrentVersions' for NoncurrentVersionExpiration action",
    )
    if (rule.newer_noncurrent_versions or 0) > MAX_NEWER_NONCURRENT:
        raise InvalidArgument(
            f"'NewerNoncurrentVersions' must be at most {MAX_NEWER_NONCURRENT}", resource=rule.id
        )
    if rule.newer_noncurrent_versions is not None and rule.noncurrent_days is None:
        raise InvalidArgument(
            "'NewerNoncurrentVersions' needs 'NoncurrentDays' in NoncurrentVersionExpiration",
            resource=rule.id,
        )
    _positive(rule.abort_upload_days, "'DaysAfterInitiation' for AbortIncompleteMultipartUpload")
    if rule.filter.tags and rule.expired_object_delete_marker is not None:
        raise InvalidRequest(
            "ExpiredObjectDeleteMarker cannot be specified with object tags", resource=rule.id
        )
    if rule.filter.tags and rule.abort_upload_days is not None:
        raise InvalidRequest(
            "AbortIncompleteMultipartUpload cannot be specified with Tags", resource=rule.id
        )
    for transition in rule.transitions + rule.noncurrent_transitions:
        _check_transition(transition)


def _check_filter(rule_filter: LifecycleFilter) -> None:
    low, high = rule_filter.size_greater_than, rule_filter.size_less_than
    for value, name in ((low, "ObjectSizeGreaterThan"), (high, "ObjectSizeLessThan")):
        if value is not None and value < 0:
            raise InvalidArgument(f"'{name}' must be a nonnegative integer")
    if high is not None and high == 0:
        raise InvalidArgument("'ObjectSizeLessThan' must be greater than 0")
    if low is not None and high is not None and low >= high:
        raise InvalidArgument("ObjectSizeGreaterThan must be less than ObjectSizeLessThan")


def _check_transition(transition: Transition) -> None:
    """This server keeps every object in one tier (STANDARD, on its one disk), so a transition
    has nowhere to go: it is refused as S3 refuses a storage class it does not offer, rather
    than stored and never done (see the README's lifecycle notes)."""
    raise InvalidStorageClass(
        f"Transitions are not offered: every object stays in {STANDARD} on this server "
        f"(asked for {transition.storage_class or 'no storage class'})",
        resource=transition.storage_class,
    )


def _positive(value: int | None, what: str) -> None:
    if value is not None and not 0 < value <= MAX_DAYS:
        raise InvalidArgument(f"{what} must be a positive integer of at most {MAX_DAYS}")


def _midnight(date_ns: int | None, what: str) -> None:
    if date_ns is not None and date_ns % DAY_NS:
        raise InvalidArgument(f"{what} must be at midnight GMT")
    if date_ns is not None and not 0 <= date_ns <= MAX_DATE_NS:
        raise InvalidArgument(f"{what} must be from 1970 to 2262-04-11")


# --- which objects a rule applies to ----------------------------------------------------------
def applies(rule_filter: LifecycleFilter, key: str, tags: Mapping[str, str], size: int) -> bool:
    """Whether an object (a delete marker: no tags, size 0) meets every condition."""
    if not key.startswith(rule_filter.prefix):
        return False
    if any(tags.get(k) != v for k, v in rule_filter.tags.items()):
        return False
    low, high = rule_filter.size_greater_than, rule_filter.size_less_than
    return (low is None or size > low) and (high is None or size < high)


def enabled_for(rules: Iterable[LifecycleRule], head: ObjectHead) -> list[LifecycleRule]:
    """The enabled rules that apply to ``head``."""
    return [
        rule
        for rule in rules
        if rule.enabled and applies(rule.filter, head.key, head.tags, head.size)
    ]


# --- when actions fall due --------------------------------------------------------------------
def due_ns(start_ns: int, days: int, day_ns: int = DAY_NS) -> int:
    """When something ``days`` days after ``start_ns`` falls due: S3 rounds up to the next
    midnight UTC; a test day (``day_ns`` shorter than a day) is exact."""
    end = start_ns + days * day_ns
    if day_ns != DAY_NS:
        return end
    return -(-end // DAY_NS) * DAY_NS


def expiry(rule: LifecycleRule, created_ns: int, day_ns: int = DAY_NS) -> int | None:
    """When ``rule`` expires a current version created at ``created_ns`` (None: it does not)."""
    if rule.expiration_date_ns is not None:
        return rule.expiration_date_ns
    if rule.expiration_days is not None:
        return due_ns(created_ns, rule.expiration_days, day_ns)
    return None


def expiration_of(rules: Iterable[LifecycleRule], head: ObjectHead) -> tuple[int, str] | None:
    """(expiry date, rule id) of the earliest expiration that applies to a current version, on
    S3's calendar: what S3's x-amz-expiration header reports."""
    if head.delete_marker:
        return None
    dates = [
        (when, rule.id)
        for rule in enabled_for(rules, head)
        if (when := expiry(rule, head.mtime_ns)) is not None
    ]
    return min(dates) if dates else None
