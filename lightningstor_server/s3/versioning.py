"""Bucket versioning and object lock: Put/GetBucketVersioning, Put/GetObjectLockConfiguration,
Put/GetObjectRetention, Put/GetObjectLegalHold."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from aiohttp import web

from lightningstor.errors import InvalidRequest, NoSuchConfiguration
from lightningstor.model import (
    VERSIONING_ENABLED,
    VERSIONING_SUSPENDED,
    DefaultRetention,
    ObjectHead,
    ObjectLock,
    Retention,
)
from lightningstor_server.s3 import headers as h
from lightningstor_server.s3.body import request_document
from lightningstor_server.s3.context import S3Call, may_bypass_governance
from lightningstor_server.s3.documents import (
    LegalHoldDocument,
    ObjectLockConfiguration,
    RetentionDocument,
    VersioningConfiguration,
    xml_response,
)
from lightningstor_server.s3.errors import (
    InvalidRetentionPeriod,
    MalformedXML,
    NotImplementedByServer,
)
from lightningstor_server.s3.xml import fields_of, text_of

MAX_BODY_BYTES = 64 * 1024
_MODES = ("GOVERNANCE", "COMPLIANCE")


async def _document(call: S3Call, root: str) -> dict[str, ET.Element]:
    return await request_document(call, root, MAX_BODY_BYTES)


# --- versioning ------------------------------------------------------------------------------
async def handle_put_bucket_versioning(call: S3Call) -> web.StreamResponse:
    fields = await _document(call, "VersioningConfiguration")
    status = text_of(fields.get("Status"))
    if status not in (VERSIONING_ENABLED, VERSIONING_SUSPENDED):
        raise MalformedXML()
    if text_of(fields.get("MfaDelete")) not in (None, "Disabled"):
        raise NotImplementedByServer("MFA delete is not offered.", resource="MfaDelete")
    await call.store.set_versioning(call.endpoint.bucket, status)
    return web.Response()


async def handle_get_bucket_versioning(call: S3Call) -> web.StreamResponse:
    info = await call.store.head_bucket(call.endpoint.bucket)
    return xml_response(VersioningConfiguration(info.versioning))


# --- object lock configuration ---------------------------------------------------------------
def _default_retention(rule: ET.Element | None) -> DefaultRetention | None:
    if rule is None:
        return None
    default = fields_of(rule).get("DefaultRetention")
    if default is None:
        raise MalformedXML()
    fields = fields_of(default)
    mode, days, years = (text_of(fields.get(n)) for n in ("Mode", "Days", "Years"))
    if mode not in _MODES or (days is None) == (years is None):
        raise MalformedXML()  # a mode, and exactly one of Days and Years
    period = days if days is not None else years
    assert period is not None
    try:
        number = int(period)
    except ValueError:
        raise MalformedXML() from None
    if number <= 0:
        raise InvalidRetentionPeriod()
    if days is not None:
        return DefaultRetention(mode=mode, days=number)
    return DefaultRetention(mode=mode, years=number)


async def handle_put_object_lock_configuration(call: S3Call) -> web.StreamResponse:
    fields = await _document(call, "ObjectLockConfiguration")
    if text_of(fields.get("ObjectLockEnabled")) != "Enabled":
        raise MalformedXML()
    lock = ObjectLock(default=_default_retention(fields.get("Rule")))
    await call.store.set_object_lock(call.endpoint.bucket, lock)
    return web.Response()


async def handle_get_object_lock_configuration(call: S3Call) -> web.StreamResponse:
    bucket = call.endpoint.bucket
    info = await call.store.head_bucket(bucket)
    if info.object_lock is None:
        raise NoSuchConfiguration(
            "ObjectLockConfigurationNotFoundError",
            "Object Lock configuration does not exist for this bucket",
            resource=bucket,
        )
    return xml_response(ObjectLockConfiguration(info.object_lock.default))


# --- retention and legal hold ----------------------------------------------------------------
async def handle_put_object_retention(call: S3Call) -> web.StreamResponse:
    fields = await _document(call, "Retention")
    mode, until = text_of(fields.get("Mode")), text_of(fields.get("RetainUntilDate"))
    retention = None
    if mode is not None or until is not None:
        if mode not in _MODES or until is None:
            raise MalformedXML()
        retention = Retention(mode=mode, until_ns=h.parse_retain_until(until, "RetainUntilDate"))
    await call.store.set_retention(
        call.endpoint.bucket,
        call.endpoint.key,
        retention,
        version_id=call.params.version_id,
        bypass_governance=await may_bypass_governance(call, call.endpoint.key),
    )
    return web.Response()


async def handle_get_object_retention(call: S3Call) -> web.StreamResponse:
    head = await _locked_version(call)
    if head.retention is None:
        raise NoSuchConfiguration(
            "NoSuchObjectLockConfiguration",
            "The specified object does not have a ObjectLock configuration",
            resource=call.endpoint.key,
        )
    return xml_response(RetentionDocument(head.retention))


async def handle_put_object_legal_hold(call: S3Call) -> web.StreamResponse:
    fields = await _document(call, "LegalHold")
    status = text_of(fields.get("Status"))
    if status not in ("ON", "OFF"):
        raise MalformedXML()
    await call.store.set_legal_hold(
        call.endpoint.bucket, call.endpoint.key, status == "ON", version_id=call.params.version_id
    )
    return web.Response()


async def handle_get_object_legal_hold(call: S3Call) -> web.StreamResponse:
    head = await _locked_version(call)
    return xml_response(LegalHoldDocument(head.legal_hold))


async def _locked_version(call: S3Call) -> ObjectHead:
    """The version asked about, in a bucket with object lock (InvalidRequest otherwise)."""
    bucket = call.endpoint.bucket
    info = await call.store.head_bucket(bucket)
    if info.object_lock is None:
        raise InvalidRequest("Bucket is missing Object Lock Configuration", resource=bucket)
    return await call.store.head_object(
        bucket, call.endpoint.key, version_id=call.params.version_id
    )
