"""Bucket policies: parsed strictly, evaluated in AWS's documented order, judged public or not.

Pure: the S3 door hands the JSON of PutBucketPolicy to :func:`parse_policy`, which refuses
with MalformedPolicy anything it would not apply exactly as written (unknown actions,
operators and condition keys included: a policy silently half-applied is a security bug),
and keeps the text verbatim for GetBucketPolicy. For each request the door asks
:func:`evaluate` about what it knows of the caller; :func:`is_public` answers Block Public
Access and GetBucketPolicyStatus.

Sources: IAM User Guide, "Policy evaluation logic" and "IAM JSON policy elements" (Principal,
NotPrincipal, Action, Resource, Condition operators, "...IfExists", "Condition operator to
check existence of condition keys", "Single-valued vs. multivalued context keys"); S3 User
Guide, "Blocking public access to your Amazon S3 storage: the meaning of public".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from lightningstor.auth.conditions import (
    COMPARE,
    NEGATED,
    OPERATORS,
    binary,
    date,
    glob,
    has_wildcard,
    network,
    number,
)
from lightningstor.auth.vocabulary import (
    ANY_LEVEL,
    CONDITION_KEYS,
    OBJECT_LEVEL,
    S3_ACTIONS,  # the policy language's, re-exported for callers of this module
    TAG_KEY_PREFIXES,
    words,
)
from lightningstor.errors import MalformedPolicy

__all__ = [
    "ANONYMOUS",
    "S3_ACTIONS",
    "Decision",
    "Policy",
    "PolicyRequest",
    "Principal",
    "evaluate",
    "is_public",
    "parse_policy",
    "principal_ids",
]

_VERSIONS = ("2012-10-17", "2008-10-17")
_TOP_FIELDS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_FIELDS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource"}
    | {"NotResource", "Condition"}
)
_ARN_PREFIX = "arn:aws:s3:::"
# Only the forms a bucket policy may name a user by; roles, sessions and services have no
# meaning here, so naming one is refused instead of never matching.
_IAM_ARN = re.compile(r"arn:aws:iam::(?P<account>[^:/]+):(?:root|user/(?:[^:]*/)?(?P<user>[^:/]+))")

_INVALID_JSON = "This policy contains invalid Json"
_INVALID_PRINCIPAL = "Invalid principal in policy"
_INVALID_ACTION = "Policy has invalid action"
_INVALID_RESOURCE = "Policy has invalid resource"


# --- values -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Principal:
    """The caller as the door authenticated it."""

    anonymous: bool
    access_key_id: str = ""
    canonical_id: str = ""
    name: str = ""


ANONYMOUS = Principal(anonymous=True)


class Decision(Enum):
    ALLOW = "allow"
    DENY = "deny"
    NONE = "none"  # no statement applies: an implicit deny, which the caller's own grants may lift


_EFFECTS = {"Allow": Decision.ALLOW, "Deny": Decision.DENY}


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    principal: Principal
    action: str  # "s3:GetObject", matched case-insensitively
    resource: str  # "arn:aws:s3:::bucket" or "arn:aws:s3:::bucket/key"
    context: Mapping[str, Sequence[str]]  # condition key -> values; a missing key is absent


@dataclass(frozen=True, slots=True, kw_only=True)
class Grantee:
    """One entry of Principal/NotPrincipal: ``*``, or identifiers that name a key."""

    kind: str  # "AWS" or "CanonicalUser" ("AWS" for a bare "*")
    value: str  # as written
    ids: frozenset[str]  # what a caller's key id, canonical id or name may equal

    @property
    def wildcard(self) -> bool:
        return self.value == "*"


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    """One key under one operator (a block's keys are ANDed, so they are kept apart)."""

    operator: str  # as written: "ForAnyValue:StringLikeIfExists"
    base: str  # "StringLike"
    qualifier: str  # "", "ForAllValues" or "ForAnyValue"
    if_exists: bool
    key: str  # lower-cased
    values: tuple[str, ...]  # JSON numbers and booleans as text, Bool and Null lower-cased


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    sid: str
    effect: Decision  # ALLOW or DENY
    principals: tuple[Grantee, ...]
    not_principal: bool
    actions: tuple[str, ...]  # lower-cased patterns
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    text: str  # as submitted: GetBucketPolicy returns it byte for byte
    statements: tuple[Statement, ...]


# --- parsing ----------------------------------------------------------------------------------
def parse_policy(
    text: str, *, bucket: str, principal_exists: Callable[[str], bool] = lambda _: True
) -> Policy:
    """The policy ``text`` for ``bucket``; MalformedPolicy for anything not applied as written.

    ``principal_exists`` is asked about every principal named other than ``*`` (an ARN as
    written); a principal it does not know is refused, as AWS refuses an unknown account.
    """
    document = _load(text)
    if not isinstance(document, dict):
        raise MalformedPolicy(_INVALID_JSON)
    _check_fields(document, _TOP_FIELDS)
    if "Version" in document and document["Version"] not in _VERSIONS:
        raise MalformedPolicy("The policy must contain a valid version string")
    if not isinstance(document.get("Id", ""), str):
        raise MalformedPolicy("Policy Id must be a string")
    if "Statement" not in document:
        raise MalformedPolicy("Missing required field Statement")
    raw = document["Statement"]
    raw_statements = raw if isinstance(raw, list) else [raw]
    if not raw_statements:
        raise MalformedPolicy("Missing required field Statement")
    statements = tuple(_statement(s, bucket, principal_exists) for s in raw_statements)
    sids = [s.sid for s in statements if s.sid]
    if len(sids) != len(set(sids)):
        raise MalformedPolicy("Statement IDs (SID) in a single policy must be unique")
    return Policy(text=text, statements=statements)


def _load(text: str) -> object:
    def refuse_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
        # json keeps the last of two equal keys; a policy read two ways must not pass.
        if len({key for key, _ in pairs}) != len(pairs):
            raise ValueError("duplicate key")
        return dict(pairs)

    def refuse_constant(name: str) -> object:
        raise ValueError(name)  # NaN and Infinity are not JSON

    try:
        return json.loads(text, object_pairs_hook=refuse_duplicates, parse_constant=refuse_constant)
    except (ValueError, RecursionError):
        raise MalformedPolicy(_INVALID_JSON) from None


def _check_fields(element: dict[str, object], allowed: frozenset[str]) -> None:
    for field in element:
        if field not in allowed:
            raise MalformedPolicy(f"Unknown field {field}")


def _statement(raw: object, bucket: str, principal_exists: Callable[[str], bool]) -> Statement:
    if not isinstance(raw, dict):
        raise MalformedPolicy(_INVALID_JSON)
    _check_fields(raw, _STATEMENT_FIELDS)
    sid = raw.get("Sid", "")
    if not isinstance(sid, str):
        raise MalformedPolicy("Statement ID (Sid) must be a string")
    if "Effect" not in raw:
        raise MalformedPolicy("Missing required field Effect")
    effect = _EFFECTS.get(raw["Effect"]) if isinstance(raw["Effect"], str) else None
    if effect is None:
        raise MalformedPolicy(f"Invalid effect: {json.dumps(raw['Effect'])}")
    principal_field, not_principal = _one_of(raw, "Principal", "NotPrincipal")
    action_field, not_action = _one_of(raw, "Action", "NotAction")
    resource_field, not_resource = _one_of(raw, "Resource", "NotResource")
    actions = tuple(_action(a) for a in _strings(raw[action_field], _INVALID_ACTION))
    resources = tuple(
        _resource(r, bucket) for r in _strings(raw[resource_field], _INVALID_RESOURCE)
    )
    # AWS checks only what a statement names, not what it excludes.
    if not (not_action or not_resource):
        _check_applicable(actions, resources)
    return Statement(
        sid=sid,
        effect=effect,
        principals=_principals(raw[principal_field], principal_exists),
        not_principal=not_principal,
        actions=actions,
        not_action=not_action,
        resources=resources,
        not_resource=not_resource,
        conditions=_conditions(raw.get("Condition", {})),
    )


def _one_of(raw: dict[str, object], field: str, negated: str) -> tuple[str, bool]:
    """Which of ``field`` / ``negated`` the statement carries (exactly one must be there)."""
    if field in raw and negated in raw:
        raise MalformedPolicy(f"Statement cannot contain both {field} and {negated}")
    if field not in raw and negated not in raw:
        raise MalformedPolicy(f"Missing required field {field}")
    return (negated, True) if negated in raw else (field, False)


def _strings(value: object, error: str) -> tuple[str, ...]:
    """A string or a non-empty list of strings, as a tuple."""
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) for item in items):
        raise MalformedPolicy(error)
    return tuple(items)


def _principals(value: object, principal_exists: Callable[[str], bool]) -> tuple[Grantee, ...]:
    if value == "*":
        return (Grantee(kind="AWS", value="*", ids=frozenset()),)
    # Service and Federated principals name AWS services and identity providers: none here.
    if not isinstance(value, dict) or not value or value.keys() - {"AWS", "CanonicalUser"}:
        raise MalformedPolicy(_INVALID_PRINCIPAL)
    return tuple(
        _grantee(kind, item, principal_exists)
        for kind in ("AWS", "CanonicalUser")
        if kind in value
        for item in _strings(value[kind], _INVALID_PRINCIPAL)
    )


def _grantee(kind: str, value: str, principal_exists: Callable[[str], bool]) -> Grantee:
    if kind == "AWS" and value == "*":
        return Grantee(kind=kind, value=value, ids=frozenset())
    if value in ("", "*") or not principal_exists(value):
        raise MalformedPolicy(_INVALID_PRINCIPAL)
    ids = frozenset({value}) if kind == "CanonicalUser" else principal_ids(value)
    return Grantee(kind=kind, value=value, ids=ids)


def principal_ids(value: str) -> frozenset[str]:
    """What a caller's key id, canonical id or name must equal for ``value`` to name it.

    The server has no accounts: an ARN's account and user name are both taken as names of
    a key, so ``arn:aws:iam::AKID:root`` and ``arn:aws:iam::123456789012:user/AKID`` both
    name the key AKID. A bare account or key id names the key it equals.
    """
    if not value.startswith("arn:"):
        return frozenset({value})
    match = _IAM_ARN.fullmatch(value)
    if match is None:
        raise MalformedPolicy(_INVALID_PRINCIPAL)
    return frozenset(name for name in match.group("account", "user") if name)


def _action(value: str) -> str:
    pattern = value.lower()
    if pattern == "*":
        return pattern
    if not pattern.startswith("s3:") or pattern == "s3:":
        raise MalformedPolicy(_INVALID_ACTION)
    known = (
        any(glob(pattern, action) for action in S3_ACTIONS)
        if has_wildcard(pattern)
        else pattern in S3_ACTIONS
    )
    if not known:
        raise MalformedPolicy(_INVALID_ACTION)
    return pattern


def _resource(value: str, bucket: str) -> str:
    if value == "*":
        return value
    if not value.startswith(_ARN_PREFIX):
        raise MalformedPolicy(_INVALID_RESOURCE)
    # A bucket's policy may only speak of that bucket and its objects.
    if not glob(value[len(_ARN_PREFIX) :].split("/", 1)[0], bucket):
        raise MalformedPolicy(_INVALID_RESOURCE)
    return value


def _check_applicable(actions: tuple[str, ...], resources: tuple[str, ...]) -> None:
    """AWS refuses a statement none of whose actions acts on any of its resources."""
    if not any(_may_apply(a, r) for a in actions for r in resources):
        raise MalformedPolicy("Action does not apply to any resource(s) in statement")


def _may_apply(action: str, resource: str) -> bool:
    # Wildcard actions are not expanded: any of them may be the one that applies.
    if resource == "*" or has_wildcard(action) or action in ANY_LEVEL:
        return True
    path = resource[len(_ARN_PREFIX) :]
    # A bucket ARN has no "/"; a wildcard without one ("b*") may still reach the objects.
    if action in OBJECT_LEVEL:
        return "/" in path or has_wildcard(path)
    return "/" not in path


def _conditions(raw: object) -> tuple[Condition, ...]:
    if not isinstance(raw, dict):
        raise MalformedPolicy("Policy has an invalid condition")
    conditions: list[Condition] = []
    for name, block in raw.items():
        qualifier, base, if_exists = _operator(name)
        if not isinstance(block, dict):
            raise MalformedPolicy(f"Invalid Condition block for {name}")
        conditions.extend(
            Condition(
                operator=name,
                base=base,
                qualifier=qualifier,
                if_exists=if_exists,
                key=_condition_key(key),
                values=_condition_values(name, base, value),
            )
            for key, value in block.items()
        )
    return tuple(conditions)


def _operator(name: str) -> tuple[str, str, bool]:
    """``ForAnyValue:StringLikeIfExists`` -> ("ForAnyValue", "StringLike", True)."""
    qualifier, _, rest = name.rpartition(":")
    if_exists = rest.endswith("IfExists")
    base = rest.removesuffix("IfExists")
    valid = (
        qualifier in ("", "ForAllValues", "ForAnyValue")
        and base in OPERATORS
        and not (if_exists and base == "Null")
    )
    if not valid:
        raise MalformedPolicy(f"Invalid Condition type : {name}")
    return qualifier, base, if_exists


def _condition_key(key: str) -> str:
    lowered = key.lower()
    tagged = any(lowered.startswith(p) and len(lowered) > len(p) for p in TAG_KEY_PREFIXES)
    if lowered not in CONDITION_KEYS and not tagged:
        raise MalformedPolicy("Policy has an invalid condition key")
    return lowered


def _condition_values(name: str, base: str, value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise MalformedPolicy(f"Invalid Condition value for {name}: []")
    return tuple(_condition_value(name, base, item) for item in items)


def _condition_value(name: str, base: str, value: object) -> str:
    if isinstance(value, bool):  # before int: a JSON true is a Python int too
        text = "true" if value else "false"
    elif isinstance(value, int | float | str):
        text = str(value)
    else:
        raise MalformedPolicy(f"Invalid Condition value for {name}: {json.dumps(value)}")
    if not _value_fits(base, text):
        raise MalformedPolicy(f"Invalid Condition value for {name}: {text}")
    return text.lower() if base in ("Bool", "Null") else text


def _value_fits(base: str, text: str) -> bool:
    if base.startswith("Numeric"):
        return number(text) is not None
    if base.startswith("Date"):
        return date(text) is not None
    if base in ("Bool", "Null"):
        return text.lower() in ("true", "false")
    if base == "BinaryEquals":
        return binary(text) is not None
    if base.endswith("IpAddress"):
        return network(text) is not None
    return True


# --- evaluation -------------------------------------------------------------------------------
def evaluate(policy: Policy, request: PolicyRequest) -> Decision:
    """AWS's order for one policy: an applying Deny wins, then an applying Allow, else NONE."""
    context = {key.lower(): values for key, values in request.context.items()}
    decision = Decision.NONE
    for statement in policy.statements:
        if _applies(statement, request, context):
            if statement.effect is Decision.DENY:
                return Decision.DENY
            decision = Decision.ALLOW
    return decision


def _applies(
    statement: Statement, request: PolicyRequest, context: Mapping[str, Sequence[str]]
) -> bool:
    action = request.action.lower()
    return (
        any(_names(g, request.principal) for g in statement.principals) != statement.not_principal
        and any(glob(p, action) for p in statement.actions) != statement.not_action
        and any(glob(p, request.resource) for p in statement.resources) != statement.not_resource
        and all(_holds(condition, context) for condition in statement.conditions)
    )


def _names(grantee: Grantee, principal: Principal) -> bool:
    if grantee.wildcard:
        return True
    if principal.anonymous:
        return False
    if grantee.kind == "CanonicalUser":
        return principal.canonical_id in grantee.ids
    caller = {principal.access_key_id, principal.canonical_id, principal.name} - {""}
    return not caller.isdisjoint(grantee.ids)


def _holds(condition: Condition, context: Mapping[str, Sequence[str]]) -> bool:
    """One condition against the request's values of its key (AWS's documented semantics)."""
    values = context.get(condition.key) or ()
    if isinstance(values, str):  # one value passed bare: not its characters
        values = (values,)
    if condition.base == "Null":
        # Null "true" asks that the key be absent, "false" that it be present.
        return any((wanted == "true") == (not values) for wanted in condition.values)
    negated = condition.base in NEGATED
    if not values:
        return _holds_absent(condition, negated=negated)
    compare = COMPARE[NEGATED.get(condition.base, condition.base)]
    # Per request value: does it match any of the policy's values (the policy's list is ORed)?
    matched = [any(compare(want, got) for want in condition.values) for got in values]
    if condition.qualifier == "ForAllValues":
        return all(m != negated for m in matched)
    if condition.qualifier == "ForAnyValue":
        return any(m != negated for m in matched)
    return not any(matched) if negated else any(matched)


def _holds_absent(condition: Condition, *, negated: bool) -> bool:
    # IfExists: "if the key is not present, the condition is true"; a negated operator is
    # true of a missing key; ForAllValues is true of the empty set, ForAnyValue false.
    if condition.if_exists:
        return True
    if condition.qualifier:
        return condition.qualifier == "ForAllValues"
    return negated


# --- public or not ----------------------------------------------------------------------------
# Keys that, fixed to a value, confine a statement to known callers ("the meaning of public").
_FIXING_KEYS = frozenset(
    key.lower()
    for key in words("""
    aws:SourceIp aws:SourceArn aws:SourceVpc aws:SourceVpce aws:SourceOwner aws:SourceAccount
    aws:PrincipalOrgID aws:userid s3:DataAccessPointArn s3:DataAccessPointAccount
""")
)
# AWS asks for "fixed values" without saying how wide an IP block may be. We are
# conservative: a block confines only if it is no wider than a /8 (IPv4) or a /32 (IPv6),
# so 0.0.0.0/0, ::/0 or the Internet in two halves is still public.
_MIN_PREFIX = {4: 8, 6: 32}


def is_public(policy: Policy) -> bool:
    """Whether some Allow grants everyone (``*`` or NotPrincipal) without a fixing condition."""
    return any(
        statement.effect is Decision.ALLOW
        and (statement.not_principal or any(g.wildcard for g in statement.principals))
        and not any(_fixes_caller(c) for c in statement.conditions)
        for statement in policy.statements
    )


def _fixes_caller(condition: Condition) -> bool:
    # IfExists and ForAllValues let a request without the key through; ForAnyValue does not,
    # but is left out too, as conservative as the IP blocks are.
    if condition.qualifier or condition.if_exists or condition.key not in _FIXING_KEYS:
        return False
    if condition.key == "aws:sourceip":
        return condition.base == "IpAddress" and all(map(_narrow, condition.values))
    return condition.base in ("StringEquals", "ArnEquals") and not any(
        map(has_wildcard, condition.values)
    )


def _narrow(value: str) -> bool:
    block = network(value)
    return block is not None and block.prefixlen >= _MIN_PREFIX[block.version]
