"""Property: evaluate decides as a plain reading of AWS's documented evaluation would.

Random valid policies (principals, actions and resources from small pools with wildcards,
their Not- forms, conditions with IfExists and set qualifiers) and random requests (callers
with and without keys, IPs in and out of 10.0.0.0/8 and 2001:db8::/32, keys present or
absent) are decided twice: by :func:`evaluate` on the parsed policy, and by the reference
below, which reads the generated JSON dicts directly, in the order the IAM User Guide gives:
"an explicit deny in any statement wins; else an allow in any statement; else the request
is implicitly denied".
"""

from __future__ import annotations

import contextlib
import fnmatch
import ipaddress
import json
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import given, reject, settings
from hypothesis import strategies as st

from lightningstor.auth.policy import (
    ANONYMOUS,
    Decision,
    Policy,
    PolicyRequest,
    Principal,
    evaluate,
    parse_policy,
)
from lightningstor.errors import MalformedPolicy

BUCKET = "b"
CANON_A, CANON_B = "a" * 64, "b" * 64
CALLERS = [
    ANONYMOUS,
    Principal(anonymous=False, access_key_id="AKA", canonical_id=CANON_A, name="alice"),
    Principal(anonymous=False, access_key_id="AKB", canonical_id=CANON_B, name="bob"),
    Principal(anonymous=False, access_key_id="AKC", canonical_id="c" * 64, name="carol"),
]
AWS_NAMES = ["*", "AKA", "AKB", CANON_B, "arn:aws:iam::AKB:root", "arn:aws:iam::1:user/alice"]
ACTION_PATTERNS = ["s3:GetObject", "S3:getobject", "s3:PutObject", "s3:ListBucket", "s3:Get*"]
ACTION_PATTERNS += ["s3:*", "*", "s3:DeleteObject", "s3:List*", "s3:?etObject"]
ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject", "s3:GetBucketAcl"]
RESOURCE_PATTERNS = ["arn:aws:s3:::b", "arn:aws:s3:::b/*", "arn:aws:s3:::b/logs/*", "*"]
RESOURCE_PATTERNS += ["arn:aws:s3:::b/logs/?", "arn:aws:s3:::b*"]
RESOURCES = ["arn:aws:s3:::b/logs/x", "arn:aws:s3:::b/data/y", "arn:aws:s3:::b"]
RESOURCES += ["arn:aws:s3:::b/Logs/x", "arn:aws:s3:::b/logs/xy"]

PREFIX, SOURCE_IP, SECURE = "s3:prefix", "aws:SourceIp", "aws:SecureTransport"
# Each condition key, spelled several ways: keys match whatever their case.
SPELLINGS = {
    PREFIX: [PREFIX, "S3:Prefix"],
    SOURCE_IP: [SOURCE_IP, "aws:sourceip", "AWS:SOURCEIP"],
    SECURE: [SECURE, "aws:securetransport"],
}
REQUEST_VALUES = {
    PREFIX: ["logs/", "data/", "logs/2024/", "LOGS/", "10.1.2.3"],
    SOURCE_IP: [
        *("10.1.2.3", "10.255.0.1", "192.0.2.1", "11.0.0.1"),
        *("2001:db8::1", "2001:db9::1", "not-an-ip"),
    ],
    SECURE: ["true", "false", "TRUE"],
}
STRING_VALUES: list[Any] = ["logs/", "logs/*", "data/", "LOGS/", "l?gs/", "10.1.2.3", "true"]
IP_VALUES: list[Any] = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1", "0.0.0.0/0"]
VALUES: dict[str, list[Any]] = {
    "StringEquals": STRING_VALUES,
    "StringNotEquals": STRING_VALUES,
    "StringLike": STRING_VALUES,
    "IpAddress": IP_VALUES,
    "NotIpAddress": IP_VALUES,
    "Bool": ["true", "false", "False", True, False],
    "Null": ["true", "false", True, False],
}
NEGATED = {"StringNotEquals": "StringEquals", "NotIpAddress": "IpAddress"}


# --- the reference ------------------------------------------------------------------------------
def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def like(pattern: str, text: str) -> bool:
    """AWS wildcards: ``*`` and ``?`` only (fnmatch's ``[`` escaped to a literal)."""
    return fnmatch.fnmatchcase(text, pattern.replace("[", "[[]"))


def names(spec: Any, caller: Principal) -> bool:
    if spec == "*":
        return True
    for kind, values in spec.items():
        for value in as_list(values):
            if kind == "AWS" and value == "*":
                return True
            if caller.anonymous:
                continue
            if kind == "CanonicalUser" and value == caller.canonical_id:
                return True
            # Without accounts, an ARN's account or user name names a key.
            ids = value.split(":")[4:] if value.startswith("arn:") else [value]
            ids = [part.removeprefix("user/") for part in ids if part != "root"]
            mine = {caller.access_key_id, caller.canonical_id, caller.name}
            if kind == "AWS" and mine & set(ids):
                return True
    return False


def text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def compares(operator: str, wanted: str, got: str) -> bool:
    if operator == "StringEquals":
        return wanted == got
    if operator == "StringLike":
        return like(wanted, got)
    if operator == "Bool":
        return wanted.lower() == got.lower()
    try:
        return ipaddress.ip_address(got) in ipaddress.ip_network(wanted, strict=False)
    except ValueError:
        return False


def condition_holds(operator_name: str, wanted: list[str], got: list[str] | None) -> bool:
    qualifier, _, operator = operator_name.rpartition(":")
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    if operator == "Null":
        return any((w.lower() == "true") == (got is None) for w in wanted)
    negated = operator in NEGATED
    operator = NEGATED.get(operator, operator)
    if got is None:
        if if_exists:
            return True
        if qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        return negated  # "if the key is not present, a negated condition is true"
    hits = [any(compares(operator, w, g) for w in wanted) for g in got]
    if qualifier == "ForAllValues":
        return all(hit != negated for hit in hits)
    if qualifier == "ForAnyValue":
        return any(hit != negated for hit in hits)
    return not any(hits) if negated else any(hits)


def lookup(context: Mapping[str, Sequence[str]], key: str) -> list[str] | None:
    found = [list(v) for k, v in context.items() if k.lower() == key.lower()]
    return found[-1] if found and found[-1] else None


def applies(statement: dict[str, Any], request: PolicyRequest) -> bool:
    if "Principal" in statement:
        principal_ok = names(statement["Principal"], request.principal)
    else:
        principal_ok = not names(statement["NotPrincipal"], request.principal)
    action = request.action.lower()
    if "Action" in statement:
        action_ok = any(like(a.lower(), action) for a in as_list(statement["Action"]))
    else:
        action_ok = not any(like(a.lower(), action) for a in as_list(statement["NotAction"]))
    if "Resource" in statement:
        resource_ok = any(like(r, request.resource) for r in as_list(statement["Resource"]))
    else:
        resource_ok = not any(like(r, request.resource) for r in as_list(statement["NotResource"]))
    if not (principal_ok and action_ok and resource_ok):
        return False
    for operator, block in statement.get("Condition", {}).items():
        for key, values in block.items():
            wanted = [text_of(v) for v in as_list(values)]
            if not condition_holds(operator, wanted, lookup(request.context, key)):
                return False
    return True


def reference(document: dict[str, Any], request: PolicyRequest) -> Decision:
    effects = [s["Effect"] for s in document["Statement"] if applies(s, request)]
    if "Deny" in effects:
        return Decision.DENY
    if "Allow" in effects:
        return Decision.ALLOW
    return Decision.NONE


# --- strategies ---------------------------------------------------------------------------------
def one_or_many(pool: Sequence[Any], max_size: int = 3) -> st.SearchStrategy[Any]:
    """A value from ``pool``, or a list of distinct ones (JSON allows either)."""
    many = st.lists(st.sampled_from(pool), min_size=1, max_size=max_size, unique=True)
    return st.one_of(st.sampled_from(pool), many)


AWS = one_or_many(AWS_NAMES, 2)
CANONICAL = one_or_many([CANON_A, CANON_B], 2)
PRINCIPALS = st.one_of(
    st.sampled_from(["*", {"AWS": "*"}]),
    AWS.map(lambda v: {"AWS": v}),
    CANONICAL.map(lambda v: {"CanonicalUser": v}),
    st.tuples(AWS, CANONICAL).map(lambda t: {"AWS": t[0], "CanonicalUser": t[1]}),
)
OPERATORS = st.sampled_from(sorted(VALUES))
ANY_KEYS = st.lists(st.sampled_from(sorted(SPELLINGS)), min_size=1, max_size=2, unique=True)
# Mostly the key an operator is made for, so that conditions often hold; sometimes any.
NATURAL_KEY = {"Bool": SECURE, "IpAddress": SOURCE_IP, "NotIpAddress": SOURCE_IP}
SPELLED = {key: st.sampled_from(spellings) for key, spellings in SPELLINGS.items()}
CONDITION_VALUES = {base: one_or_many(values, 2) for base, values in VALUES.items()}
QUALIFIERS = st.sampled_from(["", "", "", "ForAnyValue:", "ForAllValues:"])
ACTION_FIELDS = one_or_many(ACTION_PATTERNS)
RESOURCE_FIELDS = one_or_many(RESOURCE_PATTERNS)
EFFECTS = st.sampled_from(["Allow", "Deny"])
NEGATIONS = st.sampled_from(["", "", "Not"])
IF_EXISTS = st.sampled_from(["", "IfExists"])


@st.composite
def conditions(draw: st.DrawFn, min_size: int = 0) -> dict[str, dict[str, Any]]:
    blocks: dict[str, dict[str, Any]] = {}
    for _ in range(draw(st.integers(min_size, 2))):
        base = draw(OPERATORS)
        name = base if base == "Null" else base + draw(IF_EXISTS)
        if base.startswith("String"):
            name = draw(QUALIFIERS) + name
        natural = st.just([NATURAL_KEY.get(base, PREFIX)])
        keys = draw(st.one_of(natural, natural, ANY_KEYS))
        blocks[name] = {draw(SPELLED[key]): draw(CONDITION_VALUES[base]) for key in keys}
    return blocks


@st.composite
def statements(draw: st.DrawFn) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": draw(EFFECTS)}
    statement[draw(NEGATIONS) + "Principal"] = draw(PRINCIPALS)
    statement[draw(NEGATIONS) + "Action"] = draw(ACTION_FIELDS)
    statement[draw(NEGATIONS) + "Resource"] = draw(RESOURCE_FIELDS)
    condition = draw(conditions())
    if condition:
        statement["Condition"] = condition
    return statement


DOCUMENTS = st.lists(statements(), min_size=1, max_size=4).map(
    lambda s: {"Version": "2012-10-17", "Statement": s}
)


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, list[str]]:
    context: dict[str, list[str]] = {}
    for key in draw(st.lists(st.sampled_from(sorted(SPELLINGS)), max_size=3, unique=True)):
        values = st.lists(st.sampled_from(REQUEST_VALUES[key]), min_size=1, max_size=2)
        context[draw(SPELLED[key])] = draw(values)
    return context


REQUESTS = st.lists(
    st.builds(
        PolicyRequest,
        principal=st.sampled_from(CALLERS),
        action=st.sampled_from([*ACTIONS, "S3:GETOBJECT"]),
        resource=st.sampled_from(RESOURCES),
        context=contexts(),
    ),
    min_size=1,
    max_size=6,
)


def parsed(document: dict[str, Any]) -> Policy:
    """The policy, or a rejected example for the statements AWS refuses as pointless."""
    try:
        return parse_policy(json.dumps(document), bucket=BUCKET)
    except MalformedPolicy as error:
        # The pools are all valid, but an object action on bucket ARNs only (or the
        # reverse) is refused; nothing else may be.
        assert error.message == "Action does not apply to any resource(s) in statement"
        reject()


CASES = settings(max_examples=500, deadline=None, database=None)
DENY_ALL = {"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}
ALLOW_ALL = {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}


# --- properties ---------------------------------------------------------------------------------
@CASES
@given(DOCUMENTS, REQUESTS)
def test_evaluate_agrees_with_the_reference(
    document: dict[str, Any], batch: list[PolicyRequest]
) -> None:
    policy = parsed(document)
    # Each statement alone too: in a whole policy one statement's mistake often hides
    # behind another's decision.
    alone = [
        ({**document, "Statement": [raw]}, Policy(policy.text, (statement,)))
        for raw, statement in zip(document["Statement"], policy.statements, strict=True)
    ]
    for request in batch:
        assert evaluate(policy, request) is reference(document, request), request
        for single, single_policy in alone:
            assert evaluate(single_policy, request) is reference(single, request), request


@CASES
@given(conditions(min_size=1), st.lists(contexts(), min_size=1, max_size=8))
def test_conditions_agree_with_the_reference(
    condition: dict[str, dict[str, Any]], batch: list[dict[str, list[str]]]
) -> None:
    # Under a statement that names everything, the decision is the conditions' alone.
    document = {"Statement": [{**ALLOW_ALL, "Condition": condition}]}
    policy = parsed(document)
    for context in batch:
        request = PolicyRequest(ANONYMOUS, "s3:GetObject", "arn:aws:s3:::b/k", context)
        assert evaluate(policy, request) is reference(document, request), context


@CASES
@given(DOCUMENTS, REQUESTS)
def test_denies_decide_alone_and_only_deny(
    document: dict[str, Any], batch: list[PolicyRequest]
) -> None:
    policy = parsed(document)
    locked = parsed({**document, "Statement": [*document["Statement"], DENY_ALL]})
    allows = [s for s in document["Statement"] if s["Effect"] == "Allow"]
    unlocked = parsed({**document, "Statement": allows}) if allows else None
    for request in batch:
        # A Deny of everything to everyone wins over whatever the policy said.
        assert evaluate(locked, request) is Decision.DENY
        # Without its denies a policy denies nothing, and still allows what it allowed.
        after = Decision.NONE if unlocked is None else evaluate(unlocked, request)
        assert after is not Decision.DENY
        if evaluate(policy, request) is Decision.ALLOW:
            assert after is Decision.ALLOW


FIELDS = [*sorted({"Sid", "Effect", "Condition", "Principal", "Action", "Resource"}), "Version"]
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4)
    | st.sampled_from(["*", "s3:GetObject", "arn:aws:s3:::b/*", "Allow", "AKA", "10.0.0.0/8"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from([*FIELDS, "AWS", "CanonicalUser", "StringEquals", "Null", "s3:prefix"]),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, database=None)
@given(DOCUMENTS, st.data())
def test_parse_refuses_only_with_malformed_policy(
    document: dict[str, Any], data: st.DataObject
) -> None:
    # Any field of a valid policy replaced by any JSON: accepted, or MalformedPolicy.
    document = json.loads(json.dumps(document))
    statement = data.draw(st.sampled_from(document["Statement"]))
    field = data.draw(st.sampled_from(FIELDS))
    (document if field == "Version" else statement)[field] = data.draw(JSON)
    with contextlib.suppress(MalformedPolicy):
        parse_policy(json.dumps(document), bucket=BUCKET)
