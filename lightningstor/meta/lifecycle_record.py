"""How a bucket's lifecycle rules are kept in its record: each rule a JSON object of the
fields it sets (an absent field is the rule's default), so a rule written by an older version
reads with the defaults of fields added since."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lightningstor.errors import InternalError
from lightningstor.model import LifecycleFilter, LifecycleRule, Transition

_RULE_SCALARS = (
    "expiration_days",
    "expiration_date_ns",
    "expired_object_delete_marker",
    "noncurrent_days",
    "newer_noncurrent_versions",
    "abort_upload_days",
)
_TRANSITION_FIELDS = ("storage_class", "days", "date_ns", "newer_noncurrent")


def encode_rules(rules: tuple[LifecycleRule, ...]) -> list[dict[str, Any]]:
    return [_encode_rule(rule) for rule in rules]


def decode_rules(data: list[dict[str, Any]]) -> tuple[LifecycleRule, ...]:
    return tuple(_decode_rule(item) for item in data)


def _encode_rule(rule: LifecycleRule) -> dict[str, Any]:
    f = rule.filter
    out: dict[str, Any] = {"id": rule.id, "on": rule.enabled, "form": f.form}
    if f.prefix:
        out["prefix"] = f.prefix
    if f.tags:
        out["tags"] = list(f.tags.items())
    if f.size_greater_than is not None:
        out["gt"] = f.size_greater_than
    if f.size_less_than is not None:
        out["lt"] = f.size_less_than
    out.update(
        (name, getattr(rule, name)) for name in _RULE_SCALARS if getattr(rule, name) is not None
    )
    if rule.transitions:
        out["tr"] = [_encode_transition(t) for t in rule.transitions]
    if rule.noncurrent_transitions:
        out["ntr"] = [_encode_transition(t) for t in rule.noncurrent_transitions]
    return out


def _decode_rule(data: dict[str, Any]) -> LifecycleRule:
    rule_filter = LifecycleFilter(
        prefix=data.get("prefix", ""),
        tags=dict(data.get("tags", ())),
        size_greater_than=data.get("gt"),
        size_less_than=data.get("lt"),
        form=data["form"],
    )
    return LifecycleRule(
        id=data["id"],
        enabled=data["on"],
        filter=rule_filter,
        transitions=tuple(_decode_transition(t) for t in data.get("tr", ())),
        noncurrent_transitions=tuple(_decode_transition(t) for t in data.get("ntr", ())),
        **{name: data[name] for name in _RULE_SCALARS if name in data},
    )


def _encode_transition(transition: Transition) -> dict[str, Any]:
    return {
        name: getattr(transition, name)
        for name in _TRANSITION_FIELDS
        if getattr(transition, name) is not None
    }


def _decode_transition(data: dict[str, Any]) -> Transition:
    return Transition(**{name: data[name] for name in _TRANSITION_FIELDS if name in data})


# --- the worker's state -------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleState:
    """Where the lifecycle worker is in its pass and what it has done in all: each action
    commits its count here with itself, so a restart neither loses nor repeats one."""

    pass_started_ns: int = 0  # 0: no pass under way
    bucket: str = ""  # the bucket the pass is in ("" before the first)
    phase: str = "objects"  # "objects", then "uploads", of that bucket
    after: str = ""  # the last key (or upload key) of the phase fully done
    expired_objects: int = 0  # current versions expired (removed, or hidden by a marker)
    expired_bytes: int = 0  # bytes of the versions removed for good
    noncurrent_expired: int = 0
    markers_removed: int = 0
    uploads_aborted: int = 0
    locked_skipped: int = 0  # due, but kept by object lock
    passes: int = 0
    last_pass_seconds: float = 0.0


def encode_state(state: LifecycleState) -> bytes:
    fields_ = {f: getattr(state, f) for f in LifecycleState.__slots__}
    return json.dumps({"v": 1, **fields_}, separators=(",", ":")).encode()


def decode_state(raw: bytes | None) -> LifecycleState:
    if raw is None:
        return LifecycleState()
    data = json.loads(raw)
    if data.pop("v", None) != 1:
        raise InternalError(f"unsupported lifecycle state record: {raw[:40]!r}")
    known = set(LifecycleState.__slots__)
    return LifecycleState(**{k: v for k, v in data.items() if k in known})
