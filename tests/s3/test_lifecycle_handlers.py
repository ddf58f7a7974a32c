"""Lifecycle configurations through the in-process S3 door: the document read and given back
as it was written, every refusal with S3's code and the stored configuration unchanged after
it, and the x-amz-expiration header on PUT, HEAD and GET."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.s3.test_handlers import NS, Door, code_of, serving


def run(tmp_path: Path, scenario: Callable[[Door], Awaitable[None]]) -> None:
    async def main() -> None:
        async with serving(tmp_path / "data") as d:
            await scenario(d)

    asyncio.run(main())


def config(*rules: str) -> bytes:
    return f"<LifecycleConfiguration>{''.join(rules)}</LifecycleConfiguration>".encode()


LEGACY = (
    "<Rule><ID>old</ID><Prefix>logs/</Prefix><Status>Enabled</Status>"
    "<Expiration><Days>3</Days></Expiration></Rule>"
)
FILTERED = (
    "<Rule><ID>and</ID><Filter><And><Prefix>tmp/</Prefix>"
    "<Tag><Key>a</Key><Value>1</Value></Tag><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>"
    "</And></Filter><Status>Disabled</Status>"
    "<NoncurrentVersionExpiration><NoncurrentDays>2</NoncurrentDays>"
    "<NewerNoncurrentVersions>3</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>"
)
DATED = (
    "<Rule><ID>date</ID><Filter><Prefix>x/</Prefix></Filter><Status>Enabled</Status>"
    "<Expiration><Date>2030-01-01T00:00:00.000Z</Date></Expiration>"
    "<AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation>"
    "</AbortIncompleteMultipartUpload></Rule>"
)


def rule_ids(body: bytes) -> list[str | None]:
    return [r.findtext("s3:ID", namespaces=NS) for r in ET.fromstring(body).iterfind("s3:Rule", NS)]


def test_configurations_round_trip_as_written(tmp_path: Path) -> None:
    async def scenario(d: Door) -> None:
        await d.call("PUT", "/lcb")
        status, _, body = await d.call("GET", "/lcb?lifecycle")
        assert (status, code_of(body)) == (404, "NoSuchLifecycleConfiguration")
        assert (await d.call("PUT", "/lcb?lifecycle", config(LEGACY, FILTERED, DATED)))[0] == 200
        status, _, body = await d.call("GET", "/lcb?lifecycle")
        assert status == 200 and rule_ids(body) == ["old", "and", "date"]
        root = ET.fromstring(body)
        old, both, dated = root.iterfind("s3:Rule", NS)
        assert old.findtext("s3:Prefix", namespaces=NS) == "logs/"
        assert old.find("s3:Filter", NS) is None
        assert both.findtext("s3:Filter/s3:And/s3:Tag/s3:Key", namespaces=NS) == "a"
        assert both.findtext("s3:Filter/s3:And/s3:ObjectSizeGreaterThan", namespaces=NS) == "10"
        assert both.findtext("s3:Status", namespaces=NS) == "Disabled"
        assert both.findtext(".//s3:NewerNoncurrentVersions", namespaces=NS) == "3"
        assert dated.findtext(".//s3:Date", namespaces=NS) == "2030-01-01T00:00:00.000Z"
        assert dated.findtext(".//s3:DaysAfterInitiation", namespaces=NS) == "7"
        assert (await d.call("DELETE", "/lcb?lifecycle"))[0] == 204
        assert (await d.call("GET", "/lcb?lifecycle"))[0] == 404
        assert (await d.call("DELETE", "/lcb?lifecycle"))[0] == 204  # none: still 204

    run(tmp_path, scenario)


def rule(inner: str, status: str = "Enabled") -> str:
    head = "<Rule><ID>r</ID><Filter><Prefix>p/</Prefix></Filter>"
    return f"{head}<Status>{status}</Status>{inner}</Rule>"


EXPIRE = "<Expiration><Days>1</Days></Expiration>"


def test_refusals_name_s3s_code_and_change_nothing(tmp_path: Path) -> None:
    async def scenario(d: Door) -> None:
        await d.call("PUT", "/lcr")
        assert (await d.call("PUT", "/lcr?lifecycle", config(LEGACY)))[0] == 200
        for bad, code in (
            (config(rule(EXPIRE, status="enabled")), "MalformedXML"),
            (config(rule(EXPIRE, status="")), "MalformedXML"),
            (config(f"<Rule><ID>r</ID><Status>Enabled</Status>{EXPIRE}</Rule>"), "MalformedXML"),
            (
                config(
                    "<Rule><ID>r</ID><Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value>"
                    f"</Tag></Filter><Status>Enabled</Status>{EXPIRE}</Rule>"
                ),
                "MalformedXML",
            ),
            (
                config(rule("<Expiration><Days>1</Days><Date>2030-01-01</Date></Expiration>")),
                "MalformedXML",
            ),
            (config(rule("<Expiration><Days>one</Days></Expiration>")), "MalformedXML"),
            (config(rule("<Expiration><Date>next week</Date></Expiration>")), "MalformedXML"),
            (config(rule("<Expiration><Days>0</Days></Expiration>")), "InvalidArgument"),
            (
                config(rule("<Expiration><Date>2030-01-01T12:00:00Z</Date></Expiration>")),
                "InvalidArgument",
            ),
            (
                config(rule(EXPIRE).replace("<ID>r</ID>", f"<ID>{'x' * 256}</ID>")),
                "InvalidArgument",
            ),
            (config(rule(EXPIRE), rule(EXPIRE)), "InvalidArgument"),
            (config(rule("")), "InvalidRequest"),
            (
                config(
                    rule(
                        "<Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>"
                    )
                ),
                "InvalidStorageClass",
            ),
            (b"<LifecycleConfiguration><Nope/></LifecycleConfiguration>", "MalformedXML"),
            (b"not xml", "MalformedXML"),
        ):
            status, _, body = await d.call("PUT", "/lcr?lifecycle", bad)
            assert (status, code_of(body)) == (400, code), bad
            assert rule_ids((await d.call("GET", "/lcr?lifecycle"))[2]) == ["old"]

    run(tmp_path, scenario)


def test_writes_and_reads_say_when_an_object_expires(tmp_path: Path) -> None:
    async def scenario(d: Door) -> None:
        await d.call("PUT", "/lce")
        await d.call("PUT", "/lce?lifecycle", config(LEGACY))
        _, headers, _ = await d.call("PUT", "/lce/logs/a", b"x")
        expiration = headers["x-amz-expiration"]
        assert expiration.startswith('expiry-date="') and expiration.endswith('", rule-id="old"')
        assert "00:00:00 GMT" in expiration  # midnight UTC, as S3 rounds
        for method in ("HEAD", "GET"):
            assert (await d.call(method, "/lce/logs/a"))[1]["x-amz-expiration"] == expiration
        _, headers, _ = await d.call("PUT", "/lce/other", b"x")
        assert "x-amz-expiration" not in headers
        assert "x-amz-expiration" not in (await d.call("HEAD", "/lce/other"))[1]

    run(tmp_path, scenario)
