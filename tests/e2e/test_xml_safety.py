"""Every XML document the S3 door writes parses, whatever the keys and the request text:
keys with characters XML 1.0 cannot carry are refused at the door, and echoes of request
text replace such characters."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lightningstor import errors
from lightningstor.client import Client
from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon
from tests.raw import exchange, signed

BUCKET = "xmlsafe"
NS = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
# Keys XML can carry, the line ends only as character references.
ODD_KEYS = ["cr\rlf\ntab\t.txt", "amp&lt<gt>quote\"apos'", "\u00fc\u20ac\U0001f600"]


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket=BUCKET)
    for key in ODD_KEYS:
        s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    return BUCKET


def _get(daemon: Daemon, target: str) -> tuple[int, ET.Element]:
    reply = exchange(daemon, signed(daemon, "GET", target))
    assert reply is not None
    return reply.status, ET.fromstring(reply.body)  # raises if it is not well-formed


@pytest.mark.parametrize(
    "key", ["a\x01b", "nul\x00", "esc\x1b[31m", "ff\x0c", "noncharacter\uffff"]
)
def test_keys_xml_cannot_carry_are_refused(s3: Any, daemon: Daemon, bucket: str, key: str) -> None:
    with pytest.raises(ClientError) as raised:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert raised.value.response["Error"]["Code"] == "InvalidArgument"
    with pytest.raises(ClientError) as raised:
        s3.create_multipart_upload(Bucket=bucket, Key=key)
    assert raised.value.response["Error"]["Code"] == "InvalidArgument"

    async def grpc_put() -> None:
        async with Client(
            daemon.grpc_target, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
        ) as ls:
            await ls.put_object(bucket, key, b"x")

    with pytest.raises(errors.InvalidArgument):
        asyncio.run(grpc_put())
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]) == sorted(
        ODD_KEYS
    )


@pytest.mark.parametrize("listing", ["", "list-type=2&", "versions&"])
def test_listings_without_url_encoding_parse_and_keep_the_keys(
    daemon: Daemon, bucket: str, listing: str
) -> None:
    status, root = _get(daemon, f"/{bucket}?{listing}max-keys=10")
    assert status == 200
    tag = "s3:Version/s3:Key" if listing == "versions&" else "s3:Contents/s3:Key"
    assert sorted(node.text or "" for node in root.iterfind(tag, NS)) == sorted(ODD_KEYS)


@pytest.mark.parametrize(
    "query",
    ["prefix=%01", "delimiter=%1B", "marker=%00", "list-type=2&start-after=%08"],
)
def test_echoed_request_text_keeps_the_listing_well_formed(
    daemon: Daemon, bucket: str, query: str
) -> None:
    status, root = _get(daemon, f"/{bucket}?{query}")
    assert status == 200
    assert root.tag.endswith("ListBucketResult")


def test_errors_that_echo_a_key_parse(daemon: Daemon, bucket: str) -> None:
    status, root = _get(daemon, f"/{bucket}/missing%01key")
    assert status == 404
    assert root.findtext("Code") == "NoSuchKey"
