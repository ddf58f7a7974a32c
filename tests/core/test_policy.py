"""Bucket policies: what parse_policy refuses, how evaluate decides, what is_public calls public."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from lightningstor.auth.policy import (
    ANONYMOUS,
    S3_ACTIONS,
    Decision,
    Policy,
    PolicyRequest,
    Principal,
    evaluate,
    is_public,
    parse_policy,
)
from lightningstor.errors import MalformedPolicy

BUCKET = "b"
KEY_A = Principal(anonymous=False, access_key_id="AKA", canonical_id="c" * 64, name="alice")
KEY_B = Principal(anonymous=False, access_key_id="AKB", canonical_id="d" * 64, name="bob")


def statement(**fields: Any) -> dict[str, Any]:
    """An Allow of GetObject on the bucket's objects to everyone, with ``fields`` changed
    (a field given as None is left out)."""
    base: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::b/*",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def parse(*statements: dict[str, Any]) -> Policy:
    return parse_policy(document(*statements), bucket=BUCKET)


def refusal(text: str, **kwargs: Any) -> str:
    with pytest.raises(MalformedPolicy) as excinfo:
        parse_policy(text, bucket=BUCKET, **kwargs)
    assert excinfo.value.code == "MalformedPolicy"
    return excinfo.value.message


def decide(
    *statements: dict[str, Any],
    principal: Principal = KEY_A,
    action: str = "s3:GetObject",
    resource: str = "arn:aws:s3:::b/k",
    context: Mapping[str, Sequence[str]] | None = None,
) -> Decision:
    request = PolicyRequest(principal, action, resource, context or {})
    return evaluate(parse(*statements), request)


def when(operator: str, key: str, values: Any) -> dict[str, Any]:
    """An Allow of GetObject that holds only under one condition."""
    return statement(Condition={operator: {key: values}})


# --- parse_policy: refusals --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("{", "invalid Json", id="not-json"),
        pytest.param("[]", "invalid Json", id="not-an-object"),
        pytest.param('"policy"', "invalid Json", id="a-string"),
        pytest.param('{"Statement": NaN}', "invalid Json", id="nan"),
        pytest.param('{"Version": "2012-10-17", "Version": "x"}', "invalid Json", id="dup-key"),
        pytest.param('{"Statement": [], "Foo": 1}', "Unknown field Foo", id="top-field"),
        pytest.param('{"Version": "2020-01-01"}', "valid version", id="version"),
        pytest.param('{"Version": 2012}', "valid version", id="version-number"),
        pytest.param('{"Id": 5, "Statement": {}}', "Id", id="id-number"),
        pytest.param('{"Version": "2012-10-17"}', "Missing required field Statement", id="no-st"),
        pytest.param('{"Statement": []}', "Missing required field Statement", id="empty-list"),
        pytest.param('{"Statement": ["x"]}', "invalid Json", id="statement-string"),
    ],
)
def test_refuses_malformed_document(text: str, message: str) -> None:
    assert message in refusal(text)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"Foo": "x"}, "Unknown field Foo"),
        ({"Effect": None}, "Missing required field Effect"),
        ({"Effect": "allow"}, "Invalid effect"),
        ({"Effect": True}, "Invalid effect"),
        ({"Effect": ["Allow"]}, "Invalid effect"),
        ({"Sid": 1}, "Sid"),
        ({"Principal": None}, "Missing required field Principal"),
        ({"NotPrincipal": "*"}, "both Principal and NotPrincipal"),
        ({"Action": None}, "Missing required field Action"),
        ({"NotAction": "s3:PutObject"}, "both Action and NotAction"),
        ({"Resource": None}, "Missing required field Resource"),
        ({"NotResource": "arn:aws:s3:::b"}, "both Resource and NotResource"),
    ],
)
def test_refuses_malformed_statement(fields: dict[str, Any], message: str) -> None:
    assert message in refusal(document(statement(**fields)))


def test_refuses_duplicate_sids() -> None:
    text = document(statement(Sid="One"), statement(Sid="One"))
    assert refusal(text) == "Statement IDs (SID) in a single policy must be unique"


def test_accepts_distinct_sids_and_statements_without_sid() -> None:
    assert len(parse(statement(Sid="One"), statement(Sid="Two"), statement()).statements) == 3


@pytest.mark.parametrize(
    "principal",
    [
        "AKA",
        {},
        {"Service": "s3.amazonaws.com"},
        {"Federated": "cognito-identity.amazonaws.com"},
        {"AWS": "AKA", "Service": "s3.amazonaws.com"},
        {"AWS": []},
        {"AWS": 5},
        {"AWS": ["AKA", 5]},
        {"AWS": ""},
        {"AWS": "arn:aws:iam::123456789012:role/admin"},
        {"AWS": "arn:aws:sts::123456789012:assumed-role/r/s"},
        {"CanonicalUser": "*"},
    ],
)
def test_refuses_invalid_principal(principal: Any) -> None:
    assert refusal(document(statement(Principal=principal))) == "Invalid principal in policy"


def test_refuses_unknown_principal() -> None:
    text = document(statement(Principal={"AWS": ["AKA", "AKGONE"]}))
    message = refusal(text, principal_exists=lambda name: name != "AKGONE")
    assert message == "Invalid principal in policy"


def test_asks_about_every_named_principal_but_the_wildcard() -> None:
    asked: list[str] = []

    def exists(name: str) -> bool:
        asked.append(name)
        return True

    names = ["*", "AKA", "arn:aws:iam::123456789012:root", "arn:aws:iam::AKB:user/bob"]
    text = document(statement(Principal={"AWS": names, "CanonicalUser": "c" * 64}))
    parse_policy(text, bucket=BUCKET, principal_exists=exists)
    assert asked == [*names[1:], "c" * 64]


@pytest.mark.parametrize(
    "action",
    ["s3:Frobnicate", "iam:GetUser", "s3:", "GetObject", "s3:Frob*", "s3:?", 5, [], ["*", 1]],
)
def test_refuses_invalid_action(action: Any) -> None:
    assert refusal(document(statement(Action=action))) == "Policy has invalid action"


@pytest.mark.parametrize("action", ["*", "s3:*", "S3:GETOBJECT", "s3:Get*", "s3:GetObjec?"])
def test_accepts_known_actions_in_any_case_and_wildcards(action: str) -> None:
    assert parse(statement(Action=action)).statements[0].actions == (action.lower(),)


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:s3:::other/*",
        "arn:aws:s3:::bb/*",
        "arn:aws:s3:::B/*",
        "arn:aws:s3:::x*",
        "arn:aws:s3:::",
        "b/*",
        "arn:aws:s3:us-east-1::b/*",
        "arn:aws:iam::123456789012:root",
        5,
        [],
    ],
)
def test_refuses_resource_outside_the_bucket(resource: Any) -> None:
    assert refusal(document(statement(Resource=resource))) == "Policy has invalid resource"


@pytest.mark.parametrize("resource", ["*", "arn:aws:s3:::b*", "arn:aws:s3:::?/x", "arn:aws:s3:::*"])
def test_accepts_resource_patterns_that_reach_the_bucket(resource: str) -> None:
    assert parse(statement(Resource=resource)).statements[0].resources == (resource,)


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("s3:GetObject", "arn:aws:s3:::b"),
        (["s3:GetObject", "s3:PutObject"], ["arn:aws:s3:::b"]),
        ("s3:ListBucket", "arn:aws:s3:::b/*"),
        ("s3:GetBucketPolicy", "arn:aws:s3:::b/logs/x"),
        ("s3:CreateBucket", "arn:aws:s3:::b/*"),
    ],
)
def test_refuses_actions_that_apply_to_none_of_the_resources(action: Any, resource: Any) -> None:
    text = document(statement(Action=action, Resource=resource))
    assert refusal(text) == "Action does not apply to any resource(s) in statement"


@pytest.mark.parametrize(
    "fields",
    [
        {"Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "arn:aws:s3:::b"},
        {"Action": "s3:GetObject", "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]},
        {"Action": "s3:GetObject", "Resource": "arn:aws:s3:::b*"},
        {"Action": "s3:GetObject", "Resource": "*"},
        {"Action": "s3:GetObject*", "Resource": "arn:aws:s3:::b"},
        {"Action": "s3:ListAllMyBuckets", "Resource": "arn:aws:s3:::b/*"},
        {"Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"},
        {"Action": "s3:CreateBucket", "Resource": "arn:aws:s3:::b"},
        {"Action": None, "NotAction": "s3:GetObject", "Resource": "arn:aws:s3:::b"},
        {"Resource": None, "NotResource": "arn:aws:s3:::b/*", "Action": "s3:ListBucket"},
    ],
)
def test_accepts_actions_that_apply_to_some_resource(fields: dict[str, Any]) -> None:
    assert parse(statement(**fields)).statements


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("StringEquals", "invalid condition"),
        ({"StringEquals": "x"}, "Invalid Condition block"),
        ({"StringEqualz": {"s3:prefix": "x"}}, "Invalid Condition type : StringEqualz"),
        ({"stringequals": {"s3:prefix": "x"}}, "Invalid Condition type"),
        ({"NullIfExists": {"s3:prefix": "true"}}, "Invalid Condition type"),
        ({"IfExists": {"s3:prefix": "true"}}, "Invalid Condition type"),
        ({"ForSomeValues:StringEquals": {"s3:prefix": "x"}}, "Invalid Condition type"),
        ({"StringEquals": {"aws:Nope": "x"}}, "invalid condition key"),
        ({"StringEquals": {"s3:ExistingObjectTag/": "x"}}, "invalid condition key"),
        ({"StringEquals": {"prefix": "x"}}, "invalid condition key"),
        ({"NumericLessThan": {"s3:max-keys": "ten"}}, "Invalid Condition value"),
        ({"NumericLessThan": {"s3:max-keys": "1e999"}}, "Invalid Condition value"),
        ({"NumericLessThan": {"s3:max-keys": True}}, "Invalid Condition value"),
        ({"DateLessThan": {"aws:CurrentTime": "yesterday"}}, "Invalid Condition value"),
        ({"Bool": {"aws:SecureTransport": "yes"}}, "Invalid Condition value"),
        ({"Null": {"s3:prefix": 1}}, "Invalid Condition value"),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.300"}}, "Invalid Condition value"),
        ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/33"}}, "Invalid Condition value"),
        ({"BinaryEquals": {"s3:prefix": "!!!"}}, "Invalid Condition value"),
        ({"StringEquals": {"s3:prefix": {"a": "b"}}}, "Invalid Condition value"),
        ({"StringEquals": {"s3:prefix": None}}, "Invalid Condition value"),
        ({"StringEquals": {"s3:prefix": []}}, "Invalid Condition value"),
        ({"StringEquals": {"s3:prefix": [["x"]]}}, "Invalid Condition value"),
    ],
)
def test_refuses_malformed_condition(condition: Any, message: str) -> None:
    assert message in refusal(document(statement(Condition=condition)))


@pytest.mark.parametrize(
    "condition",
    [
        {},
        {"StringEquals": {}},
        {"StringEquals": {"S3:PREFIX": "x", "aws:PrincipalTag/team": "a"}},
        {"ForAllValues:StringLikeIfExists": {"aws:TagKeys": ["a*", "b"]}},
        {"ForAnyValue:StringNotEquals": {"s3:RequestObjectTag/env": "prod"}},
        {"NumericLessThanEquals": {"s3:max-keys": [10, "2.5", "-3e2"]}},
        {
            "DateGreaterThan": {
                "aws:CurrentTime": ["2024-01-01T00:00:00Z", "2024-01-01", 1700000000]
            }
        },
        {"Bool": {"aws:SecureTransport": [True, "FALSE"]}},
        {"Null": {"s3:prefix": False}},
        {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"]}},
        {"BinaryEquals": {"s3:prefix": "aGVsbG8="}},
        {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::b*"}},
        {"StringEquals": {"aws:SourceAccount": "123456789012", "aws:SourceOwner": "x"}},
    ],
)
def test_accepts_valid_conditions(condition: Any) -> None:
    assert parse(statement(Condition=condition)).statements


def test_accepts_old_version_no_version_and_a_lone_statement() -> None:
    lone = statement()
    for text in (
        json.dumps({"Version": "2008-10-17", "Id": "p", "Statement": [lone]}),
        json.dumps({"Statement": lone}),
    ):
        assert len(parse_policy(text, bucket=BUCKET).statements) == 1


REQUIRED_ACTIONS = re.findall(
    r"\w+",
    """
    AbortMultipartUpload CreateBucket DeleteBucket DeleteBucketPolicy DeleteBucketOwnershipControls
    DeleteBucketWebsite DeleteObject DeleteObjectTagging DeleteObjectVersion
    DeleteObjectVersionTagging GetBucketAcl GetBucketCORS GetBucketLocation GetBucketLogging
    GetBucketNotification GetBucketObjectLockConfiguration GetBucketOwnershipControls
    GetBucketPolicy GetBucketPolicyStatus GetBucketPublicAccessBlock GetBucketRequestPayment
    GetBucketTagging GetBucketVersioning GetBucketWebsite GetEncryptionConfiguration
    GetLifecycleConfiguration GetObject GetObjectAcl GetObjectAttributes GetObjectLegalHold
    GetObjectRetention GetObjectTagging GetObjectVersion GetObjectVersionAcl
    GetObjectVersionAttributes GetObjectVersionTagging GetReplicationConfiguration
    ListAllMyBuckets ListBucket ListBucketMultipartUploads ListBucketVersions
    ListMultipartUploadParts PutBucketAcl PutBucketCORS PutBucketLogging PutBucketNotification
    PutBucketObjectLockConfiguration PutBucketOwnershipControls PutBucketPolicy
    PutBucketPublicAccessBlock PutBucketRequestPayment PutBucketTagging PutBucketVersioning
    PutBucketWebsite PutEncryptionConfiguration PutLifecycleConfiguration PutObject PutObjectAcl
    PutObjectLegalHold PutObjectRetention PutObjectTagging PutObjectVersionAcl
    PutObjectVersionTagging PutReplicationConfiguration BypassGovernanceRetention RestoreObject
    ReplicateObject ReplicateDelete ReplicateTags GetAccelerateConfiguration
    PutAccelerateConfiguration GetAnalyticsConfiguration PutAnalyticsConfiguration
    GetInventoryConfiguration PutInventoryConfiguration GetMetricsConfiguration
    PutMetricsConfiguration GetIntelligentTieringConfiguration PutIntelligentTieringConfiguration
    ObjectOwnerOverrideToBucketOwner GetObjectTorrent GetObjectVersionTorrent
    GetAccountPublicAccessBlock PutAccountPublicAccessBlock ListAccessPoints
""",
)


def test_knows_every_s3_action_it_must() -> None:
    assert {f"s3:{name.lower()}" for name in REQUIRED_ACTIONS} <= S3_ACTIONS
    assert all(action == action.lower() for action in S3_ACTIONS)


def test_keeps_the_text_verbatim_for_get_bucket_policy() -> None:
    text = '{ "Statement" : [ {"Effect":"Allow","Principal":"*",\n"Action":"s3:GetObject",'
    text += '"Resource":"arn:aws:s3:::b/*"} ] }\n'
    assert parse_policy(text, bucket=BUCKET).text == text


# --- evaluate: principals, actions, resources ---------------------------------------------------
@pytest.mark.parametrize(
    ("principal", "caller", "expected"),
    [
        ("*", KEY_A, Decision.ALLOW),
        ("*", ANONYMOUS, Decision.ALLOW),
        ({"AWS": "*"}, ANONYMOUS, Decision.ALLOW),
        ({"AWS": "AKA"}, KEY_A, Decision.ALLOW),
        ({"AWS": "AKA"}, KEY_B, Decision.NONE),
        ({"AWS": "AKA"}, ANONYMOUS, Decision.NONE),
        ({"AWS": ["AKB", "AKA"]}, KEY_A, Decision.ALLOW),
        ({"AWS": "c" * 64}, KEY_A, Decision.ALLOW),
        ({"AWS": "alice"}, KEY_A, Decision.ALLOW),
        ({"AWS": "aka"}, KEY_A, Decision.NONE),
        ({"CanonicalUser": "c" * 64}, KEY_A, Decision.ALLOW),
        ({"CanonicalUser": "AKA"}, KEY_A, Decision.NONE),
        ({"CanonicalUser": "c" * 64}, ANONYMOUS, Decision.NONE),
        ({"AWS": "arn:aws:iam::AKA:root"}, KEY_A, Decision.ALLOW),
        ({"AWS": "arn:aws:iam::AKB:root"}, KEY_A, Decision.NONE),
        ({"AWS": "arn:aws:iam::123456789012:user/alice"}, KEY_A, Decision.ALLOW),
        ({"AWS": "arn:aws:iam::123456789012:user/team/alice"}, KEY_A, Decision.ALLOW),
        ({"AWS": "arn:aws:iam::123456789012:user/bob"}, KEY_A, Decision.NONE),
        ({"AWS": "123456789012"}, Principal(False, "AK1", "123456789012"), Decision.ALLOW),
        ({"AWS": "123456789012"}, KEY_A, Decision.NONE),
    ],
)
def test_principal_matching(principal: Any, caller: Principal, expected: Decision) -> None:
    assert decide(statement(Principal=principal), principal=caller) is expected


def test_a_principal_without_identifiers_matches_no_named_principal() -> None:
    blank = Principal(anonymous=False)
    assert decide(statement(Principal={"AWS": "AKA"}), principal=blank) is Decision.NONE


@pytest.mark.parametrize(
    ("caller", "expected"),
    [(KEY_A, Decision.NONE), (KEY_B, Decision.DENY), (ANONYMOUS, Decision.DENY)],
)
def test_not_principal_applies_to_everyone_else(caller: Principal, expected: Decision) -> None:
    deny_others = statement(Effect="Deny", Principal=None, NotPrincipal={"AWS": "AKA"})
    assert decide(deny_others, principal=caller) is expected


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("s3:GetObject", "s3:getobject", Decision.ALLOW),
        ("S3:GETOBJECT", "s3:GetObject", Decision.ALLOW),
        ("s3:get*", "S3:GetObjectTagging", Decision.ALLOW),
        ("s3:Get*", "s3:PutObject", Decision.NONE),
        ("s3:GetObjec?", "s3:GetObject", Decision.ALLOW),
        ("s3:GetObjec?", "s3:GetObjectAcl", Decision.NONE),
        ("s3:*Object", "s3:DeleteObject", Decision.ALLOW),
        ("*", "s3:PutObject", Decision.ALLOW),
    ],
)
def test_action_patterns_ignore_case(pattern: str, action: str, expected: Decision) -> None:
    assert decide(statement(Action=pattern), action=action) is expected


def test_not_action_applies_to_every_other_action() -> None:
    all_but_delete = statement(Action=None, NotAction="s3:Delete*")
    assert decide(all_but_delete, action="s3:PutObject") is Decision.ALLOW
    assert decide(all_but_delete, action="s3:DeleteObject") is Decision.NONE


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("arn:aws:s3:::b/logs/*", "arn:aws:s3:::b/logs/2024/x", Decision.ALLOW),
        ("arn:aws:s3:::b/logs/*", "arn:aws:s3:::b/Logs/x", Decision.NONE),
        ("arn:aws:s3:::b/Logs/*", "arn:aws:s3:::b/logs/x", Decision.NONE),
        ("arn:aws:s3:::b/?", "arn:aws:s3:::b/k", Decision.ALLOW),
        ("arn:aws:s3:::b/?", "arn:aws:s3:::b/kk", Decision.NONE),
        ("arn:aws:s3:::b/k[1]", "arn:aws:s3:::b/k1", Decision.NONE),
        ("arn:aws:s3:::b/k[1]", "arn:aws:s3:::b/k[1]", Decision.ALLOW),
        ("arn:aws:s3:::b*", "arn:aws:s3:::b/any/key", Decision.ALLOW),
        ("*", "arn:aws:s3:::b/k", Decision.ALLOW),
    ],
)
def test_resource_patterns_respect_case(pattern: str, resource: str, expected: Decision) -> None:
    assert decide(statement(Resource=pattern), resource=resource) is expected


def test_not_resource_applies_to_every_other_resource() -> None:
    outside_secret = statement(Resource=None, NotResource="arn:aws:s3:::b/secret/*")
    assert decide(outside_secret, resource="arn:aws:s3:::b/public/x") is Decision.ALLOW
    assert decide(outside_secret, resource="arn:aws:s3:::b/secret/x") is Decision.NONE


def test_nothing_applies_is_none() -> None:
    assert decide(statement(Action="s3:PutObject")) is Decision.NONE
    assert decide(statement(Effect="Deny", Action="s3:PutObject")) is Decision.NONE


def test_a_deny_beats_an_allow_whatever_the_order() -> None:
    deny = statement(Effect="Deny", Principal={"AWS": "AKA"})
    assert decide(statement(), deny) is Decision.DENY
    assert decide(deny, statement()) is Decision.DENY
    assert decide(statement(), deny, principal=KEY_B) is Decision.ALLOW


# --- evaluate: conditions ------------------------------------------------------------------------
ALLOW, NONE = Decision.ALLOW, Decision.NONE
OPERATOR_CASES = [
    # operator, key, policy values, request values (None: absent), decision
    ("StringEquals", "s3:prefix", "logs/", ["logs/"], ALLOW),
    ("StringEquals", "s3:prefix", "logs/", ["Logs/"], NONE),
    ("StringEquals", "s3:prefix", ["a", "logs/"], ["logs/"], ALLOW),
    ("StringEquals", "s3:prefix", "logs/", None, NONE),
    ("StringNotEquals", "s3:prefix", "logs/", ["data/"], ALLOW),
    ("StringNotEquals", "s3:prefix", ["a", "logs/"], ["logs/"], NONE),
    ("StringNotEquals", "s3:prefix", "logs/", None, ALLOW),
    ("StringEqualsIgnoreCase", "s3:prefix", "LOGS/", ["logs/"], ALLOW),
    ("StringNotEqualsIgnoreCase", "s3:prefix", "LOGS/", ["logs/"], NONE),
    ("StringNotEqualsIgnoreCase", "s3:prefix", "LOGS/", None, ALLOW),
    ("StringLike", "s3:prefix", "logs/*", ["logs/2024/"], ALLOW),
    ("StringLike", "s3:prefix", "logs/?", ["logs/ab"], NONE),
    ("StringLike", "s3:prefix", "logs/*", ["LOGS/x"], NONE),
    ("StringLike", "s3:prefix", "logs/*", None, NONE),
    ("StringNotLike", "s3:prefix", "logs/*", ["data/"], ALLOW),
    ("StringNotLike", "s3:prefix", "logs/*", ["logs/x"], NONE),
    ("StringNotLike", "s3:prefix", "logs/*", None, ALLOW),
    ("NumericEquals", "s3:max-keys", 10, ["10.0"], ALLOW),
    ("NumericNotEquals", "s3:max-keys", "10", ["11"], ALLOW),
    ("NumericNotEquals", "s3:max-keys", "10", None, ALLOW),
    ("NumericLessThan", "s3:max-keys", "10", ["9"], ALLOW),
    ("NumericLessThan", "s3:max-keys", "10", ["10"], NONE),
    ("NumericLessThanEquals", "s3:max-keys", "10", ["10"], ALLOW),
    ("NumericGreaterThan", "s3:max-keys", "10", ["1e2"], ALLOW),
    ("NumericGreaterThanEquals", "s3:max-keys", "10", ["9.5"], NONE),
    ("NumericLessThan", "s3:max-keys", "10", ["many"], NONE),
    ("NumericLessThan", "s3:max-keys", "10", None, NONE),
    ("DateLessThan", "aws:CurrentTime", "2024-06-01T00:00:00Z", ["2024-05-31T23:59:59Z"], ALLOW),
    ("DateLessThan", "aws:CurrentTime", "2024-06-01T00:00:00Z", ["2024-06-01T00:00:00Z"], NONE),
    ("DateEquals", "aws:CurrentTime", "2024-06-01T00:00:00Z", ["1717200000"], ALLOW),
    ("DateEquals", "aws:CurrentTime", 1717200000, ["2024-06-01T02:00:00+02:00"], ALLOW),
    ("DateNotEquals", "aws:CurrentTime", "2024-06-01", ["2024-06-02"], ALLOW),
    ("DateGreaterThan", "aws:EpochTime", "2024-06-01", ["1717200001"], ALLOW),
    ("DateGreaterThanEquals", "aws:CurrentTime", "2024-06-01", ["2024-05-01"], NONE),
    ("DateLessThanEquals", "aws:CurrentTime", "2024-06-01", ["not a date"], NONE),
    ("Bool", "aws:SecureTransport", "true", ["true"], ALLOW),
    ("Bool", "aws:SecureTransport", True, ["TRUE"], ALLOW),
    ("Bool", "aws:SecureTransport", "false", ["true"], NONE),
    ("Bool", "aws:SecureTransport", "false", None, NONE),
    ("BinaryEquals", "s3:prefix", "aGVsbG8=", ["aGVsbG8="], ALLOW),
    ("BinaryEquals", "s3:prefix", "aGVsbG8=", ["d29ybGQ="], NONE),
    ("BinaryEquals", "s3:prefix", "aGVsbG8=", ["aGVsbG9="], ALLOW),  # the same bytes
    ("BinaryEquals", "s3:prefix", "aGVsbG8=", ["not base64!"], NONE),
    ("IpAddress", "aws:SourceIp", "10.0.0.0/8", ["10.20.30.40"], ALLOW),
    ("IpAddress", "aws:SourceIp", "10.0.0.0/8", ["11.0.0.1"], NONE),
    ("IpAddress", "aws:SourceIp", "192.0.2.7", ["192.0.2.7"], ALLOW),
    ("IpAddress", "aws:SourceIp", "2001:db8::/32", ["2001:db8:1::5"], ALLOW),
    ("IpAddress", "aws:SourceIp", "2001:db8::/32", ["10.0.0.1"], NONE),
    ("IpAddress", "aws:SourceIp", ["10.0.0.0/8", "2001:db8::/32"], ["2001:db8::1"], ALLOW),
    ("IpAddress", "aws:SourceIp", "10.0.0.0/8", ["garbage"], NONE),
    ("NotIpAddress", "aws:SourceIp", "10.0.0.0/8", ["11.0.0.1"], ALLOW),
    ("NotIpAddress", "aws:SourceIp", "10.0.0.0/8", ["10.0.0.1"], NONE),
    ("NotIpAddress", "aws:SourceIp", "10.0.0.0/8", ["garbage"], ALLOW),
    ("NotIpAddress", "aws:SourceIp", "10.0.0.0/8", None, ALLOW),
    ("ArnEquals", "aws:SourceArn", "arn:aws:s3:::b", ["arn:aws:s3:::b"], ALLOW),
    ("ArnLike", "aws:SourceArn", "arn:aws:s3:::b*", ["arn:aws:s3:::b/x"], ALLOW),
    ("ArnLike", "aws:SourceArn", "arn:aws:s3:::b*", ["arn:aws:s3:::c"], NONE),
    ("ArnNotEquals", "aws:SourceArn", "arn:aws:s3:::b", ["arn:aws:s3:::c"], ALLOW),
    ("ArnNotLike", "aws:SourceArn", "arn:aws:s3:::b*", ["arn:aws:s3:::b1"], NONE),
    ("ArnNotLike", "aws:SourceArn", "arn:aws:s3:::b*", None, ALLOW),
    # IfExists: a missing key passes, a present one is tested as without the suffix.
    ("StringEqualsIfExists", "s3:prefix", "logs/", None, ALLOW),
    ("StringEqualsIfExists", "s3:prefix", "logs/", ["data/"], NONE),
    ("NumericLessThanIfExists", "s3:max-keys", "10", None, ALLOW),
    ("NumericLessThanIfExists", "s3:max-keys", "10", ["20"], NONE),
    ("IpAddressIfExists", "aws:SourceIp", "10.0.0.0/8", None, ALLOW),
    ("BoolIfExists", "aws:SecureTransport", "true", ["false"], NONE),
    ("StringNotLikeIfExists", "s3:prefix", "logs/*", ["logs/x"], NONE),
    # Null: "true" asks for the key to be absent, "false" for it to be present.
    ("Null", "s3:prefix", "true", None, ALLOW),
    ("Null", "s3:prefix", "true", ["x"], NONE),
    ("Null", "s3:prefix", False, ["x"], ALLOW),
    ("Null", "s3:prefix", "FALSE", None, NONE),
    ("Null", "s3:prefix", "true", [], ALLOW),
    # Several request values without a set qualifier: any may satisfy a positive operator,
    # none may match for a negated one.
    ("StringEquals", "aws:TagKeys", "a", ["b", "a"], ALLOW),
    ("StringNotEquals", "aws:TagKeys", "a", ["b", "a"], NONE),
    # ForAnyValue: some request value matches some policy value; never for a missing key.
    ("ForAnyValue:StringEquals", "aws:TagKeys", ["a", "b"], ["c", "b"], ALLOW),
    ("ForAnyValue:StringEquals", "aws:TagKeys", ["a", "b"], ["c", "d"], NONE),
    ("ForAnyValue:StringEquals", "aws:TagKeys", ["a", "b"], None, NONE),
    ("ForAnyValue:StringEquals", "aws:TagKeys", ["a", "b"], [], NONE),
    ("ForAnyValue:StringNotEquals", "aws:TagKeys", ["a", "b"], ["a", "c"], ALLOW),
    ("ForAnyValue:StringNotEquals", "aws:TagKeys", ["a", "b"], ["a", "b"], NONE),
    ("ForAnyValue:StringNotEquals", "aws:TagKeys", ["a"], None, NONE),
    ("ForAnyValue:StringLikeIfExists", "aws:TagKeys", "a*", None, ALLOW),
    # ForAllValues: every request value matches some policy value; true of a missing key.
    ("ForAllValues:StringEquals", "aws:TagKeys", ["a", "b"], ["a", "b"], ALLOW),
    ("ForAllValues:StringEquals", "aws:TagKeys", ["a", "b"], ["a", "c"], NONE),
    ("ForAllValues:StringEquals", "aws:TagKeys", ["a", "b"], None, ALLOW),
    ("ForAllValues:StringEquals", "aws:TagKeys", ["a", "b"], [], ALLOW),
    ("ForAllValues:StringLike", "aws:TagKeys", "env-*", ["env-a", "env-b"], ALLOW),
    ("ForAllValues:StringNotEquals", "aws:TagKeys", ["a", "b"], ["c", "d"], ALLOW),
    ("ForAllValues:StringNotEquals", "aws:TagKeys", ["a", "b"], ["c", "a"], NONE),
    ("ForAllValues:NotIpAddress", "aws:SourceIp", "10.0.0.0/8", ["11.0.0.1"], ALLOW),
]


@pytest.mark.parametrize(("operator", "key", "wanted", "got", "expected"), OPERATOR_CASES)
def test_condition_operators(
    operator: str, key: str, wanted: Any, got: list[str] | None, expected: Decision
) -> None:
    context = {} if got is None else {key: got}
    assert decide(when(operator, key, wanted), context=context) is expected


def test_condition_keys_match_whatever_their_case() -> None:
    allow = when("StringEquals", "S3:Prefix", "logs/")
    assert decide(allow, context={"s3:PREFIX": ["logs/"]}) is Decision.ALLOW


def test_a_bare_string_context_value_is_one_value() -> None:
    allow = when("StringEquals", "s3:prefix", "logs/")
    assert decide(allow, context={"s3:prefix": "logs/"}) is Decision.ALLOW


def test_conditions_are_all_required_and_a_keys_values_are_alternatives() -> None:
    allow = statement(
        Condition={
            "StringLike": {"s3:prefix": ["logs/*", "data/*"], "s3:delimiter": "/"},
            "Bool": {"aws:SecureTransport": "true"},
        }
    )
    secure = {"s3:prefix": ["data/x"], "s3:delimiter": ["/"], "aws:SecureTransport": ["true"]}
    assert decide(allow, context=secure) is Decision.ALLOW
    for key, value in [("s3:prefix", "tmp/"), ("s3:delimiter", ","), ("aws:SecureTransport", "x")]:
        assert decide(allow, context={**secure, key: [value]}) is Decision.NONE


@pytest.mark.parametrize("operator", ["NotIpAddress", "IpAddress"])
def test_an_ip_deny_beats_an_allow_for_the_same_request(operator: str) -> None:
    # NotIpAddress denies everyone outside the network; IpAddress denies everyone in it.
    deny = statement(Effect="Deny", Condition={operator: {"aws:SourceIp": "10.0.0.0/8"}})
    denied_ip = "192.0.2.1" if operator == "NotIpAddress" else "10.1.1.1"
    allowed_ip = "10.1.1.1" if operator == "NotIpAddress" else "192.0.2.1"
    allow = statement(Principal={"AWS": "AKA"})
    assert decide(allow, deny, context={"aws:SourceIp": [denied_ip]}) is Decision.DENY
    assert decide(allow, deny, context={"aws:SourceIp": [allowed_ip]}) is Decision.ALLOW


# --- is_public ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "public"),
    [
        ({}, True),
        ({"Principal": {"AWS": "*"}}, True),
        ({"Principal": {"AWS": ["AKA", "*"]}}, True),
        ({"Principal": None, "NotPrincipal": {"AWS": "AKA"}}, True),
        ({"Principal": {"AWS": "AKA"}}, False),
        ({"Principal": {"CanonicalUser": "c" * 64}}, False),
        ({"Effect": "Deny"}, False),
        ({"Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}, False),
        ({"Condition": {"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]}}}, False),
        ({"Condition": {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}}, True),
        ({"Condition": {"IpAddress": {"aws:SourceIp": "::/0"}}}, True),
        ({"Condition": {"IpAddress": {"aws:SourceIp": "0.0.0.0/1"}}}, True),
        ({"Condition": {"IpAddress": {"aws:SourceIp": "2001::/16"}}}, True),
        ({"Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "0.0.0.0/0"]}}}, True),
        ({"Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}, True),
        ({"Condition": {"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}}, True),
        ({"Condition": {"ForAllValues:IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}, True),
        ({"Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}}, False),
        ({"Condition": {"StringEquals": {"aws:SourceVpc": "vpc-111"}}}, False),
        ({"Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-123"}}}, False),
        ({"Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}, False),
        ({"Condition": {"StringEquals": {"aws:SourceOwner": "123456789012"}}}, False),
        ({"Condition": {"StringEquals": {"aws:userid": "AKA"}}}, False),
        ({"Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::b"}}}, False),
        ({"Condition": {"ArnEquals": {"s3:DataAccessPointArn": "arn:aws:s3:::b"}}}, False),
        ({"Condition": {"StringEquals": {"s3:DataAccessPointAccount": "123"}}}, False),
        ({"Condition": {"StringEquals": {"aws:SourceVpce": "vpce-*"}}}, True),
        ({"Condition": {"StringLike": {"aws:SourceVpce": "vpce-1"}}}, True),
        ({"Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}}, True),
        ({"Condition": {"StringEquals": {"s3:prefix": "logs/"}}}, True),
        ({"Condition": {"Bool": {"aws:SecureTransport": "true"}}}, True),
    ],
)
def test_is_public(fields: dict[str, Any], public: bool) -> None:
    assert is_public(parse(statement(**fields))) is public


def test_a_policy_is_public_if_any_allow_is() -> None:
    private = statement(Principal={"AWS": "AKA"})
    assert is_public(parse(private, statement(Action="s3:ListBucket", Resource="arn:aws:s3:::b")))
    assert not is_public(parse(private, statement(Effect="Deny")))
