"""The condition operators of the policy language: how a policy's value is compared with a
request's (IAM User Guide, "IAM JSON policy elements: Condition operators"). Pure; unparsable
values never match."""

from __future__ import annotations

import base64
import ipaddress
import operator
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lightningstor.auth.vocabulary import words

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def glob(pattern: str, text: str) -> bool:
    """``*`` matches any run (``/`` included), ``?`` one character; no other metacharacter.

    Greedy with one backtrack point, so a hostile pattern costs O(len(pattern) * len(text))
    at worst, never the exponential time of a naive recursive or regex match.
    """
    p = t = 0
    star, resume = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] == "*":
            star, resume = p, t
            p += 1
        elif p < len(pattern) and pattern[p] in ("?", text[t]):
            p += 1
            t += 1
        elif star >= 0:
            p, resume = star + 1, resume + 1
            t = resume
        else:
            return False
    return all(c == "*" for c in pattern[p:])


def has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text


def number(text: str) -> float | None:
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if abs(value) != float("inf") else None


def date(text: str) -> datetime | None:
    """ISO 8601 (a missing zone is UTC) or epoch seconds, as AWS's Date operators take."""
    try:
        if _NUMBER.fullmatch(text):
            return datetime.fromtimestamp(float(text), tz=UTC)
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def binary(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error, and non-ASCII text
        return None


def network(text: str) -> IPNetwork | None:
    try:
        # Host bits are tolerated (10.1.2.3/8 means 10.0.0.0/8), as AWS does.
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def in_network(policy_value: str, request_value: str) -> bool:
    block = network(policy_value)
    try:
        address = ipaddress.ip_address(request_value)
    except ValueError:
        return False
    return block is not None and address in block


def seconds(text: str) -> float | None:
    moment = date(text)
    return None if moment is None else moment.timestamp()


def _ordered(
    parse: Callable[[str], Any], test: Callable[[Any, Any], Any]
) -> Callable[[str, str], bool]:
    """A comparison of the request's value with the policy's; unparsable never matches."""

    def compare(policy_value: str, request_value: str) -> bool:
        wanted, got = parse(policy_value), parse(request_value)
        return wanted is not None and got is not None and bool(test(got, wanted))

    return compare


def _ordered_family(
    family: str, parse: Callable[[str], float | None]
) -> dict[str, Callable[[str, str], bool]]:
    tests: dict[str, Callable[[float, float], bool]] = {
        "Equals": operator.eq,
        "LessThan": operator.lt,
        "LessThanEquals": operator.le,
        "GreaterThan": operator.gt,
        "GreaterThanEquals": operator.ge,
    }
    return {family + name: _ordered(parse, test) for name, test in tests.items()}


# The positive operators: (policy value, request value) -> match.
COMPARE: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": operator.eq,
    "StringEqualsIgnoreCase": lambda want, got: want.casefold() == got.casefold(),
    "StringLike": glob,
    "Bool": lambda want, got: want == got.lower(),
    "BinaryEquals": _ordered(binary, operator.eq),
    "IpAddress": in_network,
    "ArnEquals": glob,
    "ArnLike": glob,
    **_ordered_family("Numeric", number),
    **_ordered_family("Date", seconds),
}
# Each negated operator is true when its positive one (its name without "Not") matches no
# policy value.
NEGATED = {
    name: name.replace("Not", "", 1)
    for name in words("""
    StringNotEquals StringNotEqualsIgnoreCase StringNotLike NumericNotEquals DateNotEquals
    ArnNotEquals ArnNotLike NotIpAddress
""")
}
OPERATORS = frozenset(COMPARE) | frozenset(NEGATED) | {"Null"}
