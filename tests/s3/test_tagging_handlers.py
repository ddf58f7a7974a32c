"""Tagging through the in-process S3 door: object and bucket tag sets, x-amz-tagging on writes,
the copy directive, and refusals that leave the stored tags as they were."""

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


def tagging(*pairs: tuple[str, str]) -> bytes:
    tags = "".join(f"<Tag><Key>{k}</Key><Value>{v}</Value></Tag>" for k, v in pairs)
    return f"<Tagging><TagSet>{tags}</TagSet></Tagging>".encode()


def tags_of(body: bytes) -> list[tuple[str | None, str | None]]:
    return [
        (tag.findtext("s3:Key", namespaces=NS), tag.findtext("s3:Value", namespaces=NS))
        for tag in ET.fromstring(body).iterfind(".//s3:Tag", NS)
    ]


def test_object_tags_round_trip_and_bad_ones_change_nothing(tmp_path: Path) -> None:
    async def scenario(d: Door) -> None:
        await d.call("PUT", "/tagged")
        status, _, _ = await d.call("PUT", "/tagged/k", b"x", {"x-amz-tagging": "f&c%20d=e&b=&a=1"})
        assert status == 200
        status, headers, _ = await d.call("HEAD", "/tagged/k")
        assert headers["x-amz-tagging-count"] == "4"
        assert tags_of((await d.call("GET", "/tagged/k?tagging"))[2]) == [
            ("a", "1"),
            ("b", ""),
            ("c d", "e"),
            ("f", ""),
        ]
        assert (await d.call("PUT", "/tagged/k?tagging", tagging(("x", "y"))))[0] == 200
        for bad, code in (
            (tagging(*[(f"k{i}", "v") for i in range(11)]), "InvalidTag"),
            (tagging(("k" * 129, "v")), "InvalidTag"),
            (tagging(("k", "v" * 257)), "InvalidTag"),
            (tagging(("k", "1"), ("k", "2")), "InvalidTag"),
            (b"<Tagging><Nope/></Tagging>", "MalformedXML"),
            (b"not xml", "MalformedXML"),
        ):
            status, _, body = await d.call("PUT", "/tagged/k?tagging", bad)
            assert (status, code_of(body)) == (400, code)
            assert tags_of((await d.call("GET", "/tagged/k?tagging"))[2]) == [("x", "y")]
        status, _, body = await d.call("PUT", "/tagged/new", b"x", {"x-amz-tagging": "aws:k=v"})
        assert (status, code_of(body)) == (400, "InvalidTag")
        assert (await d.call("GET", "/tagged/new"))[0] == 404
        assert (await d.call("DELETE", "/tagged/k?tagging"))[0] == 204
        status, headers, _ = await d.call("HEAD", "/tagged/k")
        assert status == 200 and "x-amz-tagging-count" not in headers
        assert (await d.call("GET", "/tagged/k"))[2] == b"x"

    run(tmp_path, scenario)


def test_copies_keep_or_replace_tags_as_their_directive_says(tmp_path: Path) -> None:
    async def scenario(d: Door) -> None:
        await d.call("PUT", "/cpy")
        await d.call("PUT", "/cpy/src", b"x", {"x-amz-tagging": "a=1"})
        await d.call("PUT", "/cpy/kept", headers={"x-amz-copy-source": "/cpy/src"})
        assert tags_of((await d.call("GET", "/cpy/kept?tagging"))[2]) == [("a", "1")]
        replace = {
            "x-amz-copy-source": "/cpy/src",
            "x-amz-tagging-directive": "REPLACE",
            "x-amz-tagging": "b=2",
        }
        await d.call("PUT", "/cpy/replaced", headers=replace)
        assert tags_of((await d.call("GET", "/cpy/replaced?tagging"))[2]) == [("b", "2")]
        bad = {"x-amz-copy-source": "/cpy/src", "x-amz-tagging-directive": "MERGE"}
        status, _, body = await d.call("PUT", "/cpy/bad", headers=bad)
        assert (status, code_of(body)) == (400, "InvalidArgument")

    run(tmp_path, scenario)


def test_bucket_tags(tmp_path: Path) -> None:
    async def scenario(d: Door) -> None:
        await d.call("PUT", "/btags")
        status, _, body = await d.call("GET", "/btags?tagging")
        assert (status, code_of(body)) == (404, "NoSuchTagSet")
        assert (await d.call("PUT", "/btags?tagging", tagging(("team", "a"))))[0] == 204
        assert tags_of((await d.call("GET", "/btags?tagging"))[2]) == [("team", "a")]
        many = tagging(*[(f"k{i}", "v") for i in range(51)])
        status, _, body = await d.call("PUT", "/btags?tagging", many)
        assert (status, code_of(body)) == (400, "InvalidTag")
        assert tags_of((await d.call("GET", "/btags?tagging"))[2]) == [("team", "a")]
        assert (await d.call("DELETE", "/btags?tagging"))[0] == 204
        assert code_of((await d.call("GET", "/btags?tagging"))[2]) == "NoSuchTagSet"

    run(tmp_path, scenario)
