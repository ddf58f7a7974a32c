"""Bucket lifecycle configurations as S3 carries them: the LifecycleConfiguration document of
Put/GetBucketLifecycleConfiguration (and of the older PutBucketLifecycle, whose rules name a
Prefix instead of a Filter), DeleteBucketLifecycle, and the ``x-amz-expiration`` header that
PUT, GET and HEAD answer with. What a rule means and which rules are valid is the core's
(``objects/lifecycle/rules.py``); this module reads and writes the XML, and refuses as
MalformedXML what does not fit S3's schema: a Status other than Enabled or Disabled, a Filter
with more than one condition outside an And (AWS refuses that too; ceph/s3-tests accepts it),
Days beside Date, a number or a date that does not parse."""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from email.utils import formatdate

from aiohttp import web

from lightningstor.errors import InvalidArgument
from lightningstor.model import (
    FILTER_AND,
    FILTER_ONE,
    FILTER_PREFIX,
    LifecycleFilter,
    LifecycleRule,
    ObjectHead,
    Transition,
)
from lightningstor.objects.lifecycle.rules import MAX_DATE_NS, expiration_of
from lightningstor_server.s3.body import small_body
from lightningstor_server.s3.configuration import absent
from lightningstor_server.s3.context import S3Call
from lightningstor_server.s3.errors import MalformedXML
from lightningstor_server.s3.xml import (
    document,
    element,
    fields_of,
    group,
    local_name,
    parse_request,
    text_of,
)

MAX_LIFECYCLE_BYTES = 1024 * 1024  # 1,000 rules of a few hundred bytes each
EXPIRATION = "x-amz-expiration"
_STATUSES = {"Enabled": True, "Disabled": False}
_RULE_ELEMENTS = frozenset(
    {
        "ID", "Prefix", "Filter", "Status", "Expiration", "Transition",
        "NoncurrentVersionTransition", "NoncurrentVersionExpiration",
        "AbortIncompleteMultipartUpload",
    }
)  # fmt: skip


# --- handlers -----------------------------------------------------------------------------------
async def handle_put_bucket_lifecycle(call: S3Call) -> web.StreamResponse:
    body = await small_body(call, MAX_LIFECYCLE_BYTES)
    root = await call.gateway.io.run(parse_request, body, "LifecycleConfiguration")
    rules = [_rule(child) for child in root if _named(child, "Rule")]
    await call.store.set_lifecycle(call.endpoint.bucket, rules)
    return web.Response()


async def handle_get_bucket_lifecycle(call: S3Call) -> web.StreamResponse:
    bucket = await call.bucket()
    if bucket.lifecycle is None:
        raise absent("lifecycle", bucket.name)
    body = document("LifecycleConfiguration", (_render_rule(rule) for rule in bucket.lifecycle))
    return web.Response(body=body, content_type="application/xml")


async def handle_delete_bucket_lifecycle(call: S3Call) -> web.StreamResponse:
    await call.store.set_lifecycle(call.endpoint.bucket, None)
    return web.Response(status=204)


def expiration_header(rules: Iterable[LifecycleRule] | None, head: ObjectHead) -> dict[str, str]:
    """``x-amz-expiration`` for a current version an expiration rule applies to (S3's
    calendar: a test day does not change the date told to clients)."""
    found = expiration_of(rules or (), head)
    if found is None or found[0] > MAX_DATE_NS:  # so far off it is no date (Days of 2**31-1)
        return {}
    when, rule_id = found
    date = formatdate(when / 1e9, usegmt=True)
    return {EXPIRATION: f'expiry-date="{date}", rule-id="{rule_id}"'}


# --- reading ------------------------------------------------------------------------------------
def _named(child: ET.Element, name: str) -> bool:
    if local_name(child.tag) != name:
        raise MalformedXML()
    return True


def _rule(node: ET.Element) -> LifecycleRule:
    children: dict[str, list[ET.Element]] = {}
    for child in node:
        name = local_name(child.tag)
        if name not in _RULE_ELEMENTS:
            raise MalformedXML()
        children.setdefault(name, []).append(child)
    one = {
        name: _only(nodes) for name, nodes in children.items() if not name.endswith("Transition")
    }
    status = _STATUSES.get(text_of(one.get("Status")) or "")
    if status is None or ("Prefix" in one) == ("Filter" in one):
        raise MalformedXML()
    if "Prefix" in one:
        rule_filter = LifecycleFilter(prefix=text_of(one["Prefix"]) or "", form=FILTER_PREFIX)
    else:
        rule_filter = _filter(one["Filter"])
    expiration = fields_of(one["Expiration"]) if "Expiration" in one else {}
    noncurrent = (
        fields_of(one["NoncurrentVersionExpiration"])
        if "NoncurrentVersionExpiration" in one
        else {}
    )
    abort = (
        fields_of(one["AbortIncompleteMultipartUpload"])
        if "AbortIncompleteMultipartUpload" in one
        else {}
    )
    if ("Days" in expiration and "Date" in expiration) or (
        "ExpiredObjectDeleteMarker" in expiration and len(expiration) > 1
    ):
        raise MalformedXML()
    return LifecycleRule(
        id=text_of(one.get("ID")) or "",
        enabled=status,
        filter=rule_filter,
        expiration_days=_integer(expiration.get("Days")),
        expiration_date_ns=_date(expiration.get("Date")),
        expired_object_delete_marker=_boolean(expiration.get("ExpiredObjectDeleteMarker")),
        noncurrent_days=_integer(noncurrent.get("NoncurrentDays")),
        newer_noncurrent_versions=_integer(noncurrent.get("NewerNoncurrentVersions")),
        abort_upload_days=_integer(abort.get("DaysAfterInitiation")),
        transitions=tuple(_transition(t, "Days") for t in children.get("Transition", ())),
        noncurrent_transitions=tuple(
            _transition(t, "NoncurrentDays")
            for t in children.get("NoncurrentVersionTransition", ())
        ),
    )


def _only(nodes: list[ET.Element]) -> ET.Element:
    if len(nodes) != 1:
        raise MalformedXML()
    return nodes[0]


def _filter(node: ET.Element) -> LifecycleFilter:
    """A Filter: no condition, one condition, or an And of several (S3's schema)."""
    parts = fields_of(node)
    if len(parts) > 1:
        raise MalformedXML()
    if "And" in parts:
        conditions, form = list(parts["And"]), FILTER_AND
    else:
        conditions, form = list(node), FILTER_ONE
    prefix, tags, sizes = "", {}, {}
    for condition in conditions:
        name = local_name(condition.tag)
        if name == "Prefix" and not prefix:
            prefix = text_of(condition) or ""
        elif name == "Tag":
            key, value = _tag(condition)
            if key in tags:
                raise InvalidArgument("Duplicate Tag Keys are not allowed.", resource=key)
            tags[key] = value
        elif name in ("ObjectSizeGreaterThan", "ObjectSizeLessThan") and name not in sizes:
            sizes[name] = _integer(condition)
        else:
            raise MalformedXML()
    return LifecycleFilter(
        prefix=prefix,
        tags=tags,
        size_greater_than=sizes.get("ObjectSizeGreaterThan"),
        size_less_than=sizes.get("ObjectSizeLessThan"),
        form=form,
    )


def _tag(node: ET.Element) -> tuple[str, str]:
    parts = fields_of(node)
    key, value = text_of(parts.get("Key")), text_of(parts.get("Value"))
    if key is None or value is None or set(parts) != {"Key", "Value"}:
        raise MalformedXML()
    return key, value


def _transition(node: ET.Element, days_name: str) -> Transition:
    parts = fields_of(node)
    if days_name in parts and "Date" in parts:
        raise MalformedXML()
    return Transition(
        storage_class=text_of(parts.get("StorageClass")) or "",
        days=_integer(parts.get(days_name)),
        date_ns=_date(parts.get("Date")),
        newer_noncurrent=_integer(parts.get("NewerNoncurrentVersions")),
    )


def _integer(node: ET.Element | None) -> int | None:
    text = text_of(node)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise MalformedXML() from None


def _boolean(node: ET.Element | None) -> bool | None:
    text = text_of(node)
    if text is None:
        return None
    if text not in ("true", "false"):
        raise MalformedXML()
    return text == "true"


def _date(node: ET.Element | None) -> int | None:
    """An ISO 8601 date or date-time, in ns since the epoch (UTC when no zone is given)."""
    text = text_of(node)
    if text is None:
        return None
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise MalformedXML() from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return int(when.timestamp()) * 10**9 + when.microsecond * 1000


# --- writing ------------------------------------------------------------------------------------
def _render_rule(rule: LifecycleRule) -> str:
    parts = [element("ID", rule.id), _render_filter(rule.filter)]
    parts.append(element("Status", "Enabled" if rule.enabled else "Disabled"))
    expiration = [
        element("Days", rule.expiration_days),
        element("Date", _iso(rule.expiration_date_ns)),
        element("ExpiredObjectDeleteMarker", rule.expired_object_delete_marker),
    ]
    if any(expiration):
        parts.append(group("Expiration", expiration))
    if rule.noncurrent_days is not None:
        parts.append(
            group(
                "NoncurrentVersionExpiration",
                [
                    element("NoncurrentDays", rule.noncurrent_days),
                    element("NewerNoncurrentVersions", rule.newer_noncurrent_versions),
                ],
            )
        )
    if rule.abort_upload_days is not None:
        parts.append(
            group(
                "AbortIncompleteMultipartUpload",
                [element("DaysAfterInitiation", rule.abort_upload_days)],
            )
        )
    return group("Rule", parts)


def _render_filter(rule_filter: LifecycleFilter) -> str:
    if rule_filter.form == FILTER_PREFIX:
        return element("Prefix", rule_filter.prefix)
    conditions = [
        element("Prefix", rule_filter.prefix) if rule_filter.prefix else "",
        *(_render_tag(rule_filter.tags)),
        element("ObjectSizeGreaterThan", rule_filter.size_greater_than),
        element("ObjectSizeLessThan", rule_filter.size_less_than),
    ]
    if rule_filter.form == FILTER_AND:
        return group("Filter", [group("And", conditions)])
    return group("Filter", [c for c in conditions if c] or [element("Prefix", "")])


def _render_tag(tags: Mapping[str, str]) -> list[str]:
    return [group("Tag", [element("Key", k), element("Value", v)]) for k, v in tags.items()]


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    when = datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
