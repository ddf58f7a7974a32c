"""Lifecycle rules between ``lightningstor.v1`` messages and the core's LifecycleRule.

Which configurations are valid is the core's (``objects/lifecycle/rules.py``, as for the S3
door), including what S3's schema cannot hold but these messages can (Days beside Date,
ExpiredObjectDeleteMarker beside either): InvalidArgument there. A filter's S3 form (one
condition, or an And of several) is not carried: it follows from how many conditions the
filter has.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.message import Message

from lightningstor.errors import InvalidArgument
from lightningstor.model import (
    FILTER_AND,
    FILTER_ONE,
    LifecycleFilter,
    LifecycleRule,
    Transition,
)
from lightningstor.v1 import storage_pb2 as pb


def parse_rules(rules: Iterable[pb.LifecycleRule]) -> list[LifecycleRule]:
    return [parse_rule(rule, index) for index, rule in enumerate(rules)]


def parse_rule(rule: pb.LifecycleRule, index: int) -> LifecycleRule:
    where = f"rules[{index}]"
    days = _optional(rule, "expiration_days")
    date_ns = _optional(rule, "expiration_date_unix_nanos")
    asked_marker = rule.HasField("expired_object_delete_marker")
    marker = rule.expired_object_delete_marker if asked_marker else None
    return LifecycleRule(
        id=rule.id,
        enabled=rule.enabled,
        filter=_parse_filter(rule.filter),
        expiration_days=days,
        expiration_date_ns=date_ns,
        expired_object_delete_marker=marker,
        noncurrent_days=_optional(rule, "noncurrent_days"),
        newer_noncurrent_versions=_optional(rule, "newer_noncurrent_versions"),
        abort_upload_days=_optional(rule, "abort_incomplete_upload_days"),
        transitions=tuple(
            _parse_transition(t, f"{where}.transitions[{n}]")
            for n, t in enumerate(rule.transitions)
        ),
        noncurrent_transitions=tuple(
            _parse_transition(t, f"{where}.noncurrent_transitions[{n}]")
            for n, t in enumerate(rule.noncurrent_transitions)
        ),
    )


def _parse_filter(message: pb.LifecycleFilter) -> LifecycleFilter:
    low = _optional(message, "size_greater_than")
    high = _optional(message, "size_less_than")
    conditions = bool(message.prefix) + len(message.tags) + (low is not None) + (high is not None)
    return LifecycleFilter(
        prefix=message.prefix,
        tags=dict(message.tags),
        size_greater_than=low,
        size_less_than=high,
        form=FILTER_AND if conditions > 1 else FILTER_ONE,
    )


def _parse_transition(message: pb.LifecycleTransition, where: str) -> Transition:
    """Parsed only for the core to refuse (see the proto's LifecycleTransition)."""
    days, date_ns = _optional(message, "days"), _optional(message, "date_unix_nanos")
    if days is not None and date_ns is not None:
        raise InvalidArgument(
            "A transition takes days or date_unix_nanos, not both.", resource=where
        )
    return Transition(
        storage_class=message.storage_class,
        days=days,
        date_ns=date_ns,
        newer_noncurrent=_optional(message, "newer_noncurrent_versions"),
    )


def _optional(message: Message, field: str) -> int | None:
    """A proto3 ``optional`` integer: None when unset."""
    if not message.HasField(field):
        return None
    value: int = getattr(message, field)
    return value


def render_rule(rule: LifecycleRule) -> pb.LifecycleRule:
    """A stored rule (never with transitions: the core refuses them); its filter is unset when
    it has no condition."""
    rule_filter = rule.filter
    conditions = pb.LifecycleFilter(
        prefix=rule_filter.prefix,
        tags=dict(rule_filter.tags),
        size_greater_than=rule_filter.size_greater_than,
        size_less_than=rule_filter.size_less_than,
    )
    return pb.LifecycleRule(
        id=rule.id,
        enabled=rule.enabled,
        filter=conditions if conditions.ListFields() else None,
        expiration_days=rule.expiration_days,
        expiration_date_unix_nanos=rule.expiration_date_ns,
        expired_object_delete_marker=rule.expired_object_delete_marker,
        noncurrent_days=rule.noncurrent_days,
        newer_noncurrent_versions=rule.newer_noncurrent_versions,
        abort_incomplete_upload_days=rule.abort_upload_days,
    )
