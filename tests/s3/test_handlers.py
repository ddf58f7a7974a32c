"""The S3 door in process: the real S3App over a real store, served by aiohttp's test server
and signed with botocore, no subprocess. Routing, handlers, XML and the error table, fast; the
e2e tier keeps the real daemon and real clients."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import logging
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lightningstor.auth.access import AccessSettings
from lightningstor.auth.credentials import Credential
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from lightningstor.ops.fsck import check_store
from lightningstor_server.ratelimit import FailedAuthLimiter
from lightningstor_server.s3 import app as s3_app
from lightningstor_server.s3.app import S3App, make_gateway

KEY_ID, SECRET = "AKIDINPROCESS0000001", "in-process-secret-00001"
# A key that may write bucket "dst" and nothing else.
LIMITED = "AKIDINPROCESSLIMITED"
NS = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


async def _lookup(key_id: str) -> Credential | None:
    if key_id not in (KEY_ID, LIMITED):
        return None
    admin = key_id == KEY_ID
    grants = {} if admin else {"dst": "readwrite"}
    return Credential(
        access_key_id=key_id,
        secret_access_key=SECRET,
        name="t",
        admin=admin,
        active=True,
        grants=grants,
    )


class Door:
    """A signed HTTP client of one in-process S3 door."""

    def __init__(self, client: TestClient[Any, Any], app: S3App) -> None:
        self.client = client
        self.app = app

    async def call(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        key_id: str = KEY_ID,
    ) -> tuple[int, Mapping[str, str], bytes]:
        host = f"127.0.0.1:{self.client.port}"
        wanted = {**(headers or {}), "X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()}
        request = AWSRequest(method=method, url=f"http://{host}{target}", data=body, headers=wanted)
        S3SigV4Auth(Credentials(key_id, SECRET), "s3", "us-east-1").add_auth(request)
        sent = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        # A BytesIO: aiohttp warns that bytes this large would be sent in one blocking write.
        response = await self.client.request(method, target, data=io.BytesIO(body), headers=sent)
        return response.status, response.headers, await response.read()


@asynccontextmanager
async def serving(path: Path, access: AccessSettings | None = None) -> AsyncIterator[Door]:
    offloader = Offloader(workers=2)
    store = await offloader.run(ObjectStore.open, path, offloader=offloader)
    app = make_gateway(
        store,
        offloader=offloader,
        region="us-east-1",
        lookup=_lookup,
        limiter=FailedAuthLimiter(failures=0),
        access=access,
    )
    client: TestClient[Any, Any] = TestClient(TestServer(app.build()))
    await client.start_server()
    try:
        yield Door(client, app)
    finally:
        await client.close()
        assert check_store(store.kv, store.blobs, verify_content=True).problems == []
        store.close()
        offloader.shutdown()


@pytest.fixture
def door(tmp_path: Path) -> Iterator[Callable[[Callable[[Door], Awaitable[None]]], None]]:
    def run(scenario: Callable[[Door], Awaitable[None]]) -> None:
        async def main() -> None:
            async with serving(tmp_path / "data") as d:
                await scenario(d)

        asyncio.run(main())

    yield run


def code_of(body: bytes) -> str | None:
    return ET.fromstring(body).findtext("Code") if body else None


def test_bucket_and_object_round_trip(door: Any) -> None:
    async def scenario(d: Door) -> None:
        assert (await d.call("PUT", "/inproc"))[0] == 200
        status, headers, _ = await d.call(
            "PUT", "/inproc/a%20b/c", b"hello", {"Content-Type": "text/plain"}
        )
        assert status == 200 and headers["ETag"] == f'"{hashlib.md5(b"hello").hexdigest()}"'
        status, headers, body = await d.call("GET", "/inproc/a%20b/c")
        assert (status, body, headers["Content-Type"]) == (200, b"hello", "text/plain")
        status, headers, body = await d.call("HEAD", "/inproc/a%20b/c")
        assert (status, headers["Content-Length"], body) == (200, "5", b"")
        status, _, body = await d.call("GET", "/inproc/a%20b/c", headers={"Range": "bytes=1-3"})
        assert (status, body) == (206, b"ell")
        assert (await d.call("DELETE", "/inproc/a%20b/c"))[0] == 204
        status, _, body = await d.call("GET", "/inproc/a%20b/c")
        assert (status, code_of(body)) == (404, "NoSuchKey")
        assert (await d.call("DELETE", "/inproc"))[0] == 204

    door(scenario)


def test_listing_document(door: Any) -> None:
    async def scenario(d: Door) -> None:
        await d.call("PUT", "/lst")
        for key in ("a/1", "a/2", "b", "c&d"):
            await d.call("PUT", f"/lst/{key.replace('&', '%26')}", b"x")
        status, _, body = await d.call("GET", "/lst?list-type=2&delimiter=%2F&max-keys=2")
        assert status == 200
        root = ET.fromstring(body)
        assert root.tag == "{http://s3.amazonaws.com/doc/2006-03-01/}ListBucketResult"
        assert [p.text for p in root.iterfind("s3:CommonPrefixes/s3:Prefix", NS)] == ["a/"]
        assert [k.text for k in root.iterfind("s3:Contents/s3:Key", NS)] == ["b"]
        assert root.findtext("s3:IsTruncated", namespaces=NS) == "true"
        assert root.findtext("s3:KeyCount", namespaces=NS) == "2"
        token = root.findtext("s3:NextContinuationToken", namespaces=NS)
        assert token
        status, _, body = await d.call(
            "GET", f"/lst?list-type=2&delimiter=%2F&continuation-token={quote(token, safe='')}"
        )
        keys = [k.text for k in ET.fromstring(body).iterfind("s3:Contents/s3:Key", NS)]
        assert keys == ["c&d"]

    door(scenario)


def test_errors_are_s3_documents_with_request_ids(door: Any) -> None:
    async def scenario(d: Door) -> None:
        status, headers, body = await d.call("GET", "/missing-bucket/k")
        assert (status, code_of(body)) == (404, "NoSuchBucket")
        root = ET.fromstring(body)
        assert root.findtext("RequestId") == headers["x-amz-request-id"]
        assert (await d.call("PUT", "/ab"))[0] == 400  # too short a name
        status, _, body = await d.call("PUT", "/okbucket?website")
        assert (status, code_of(body)) == (501, "NotImplemented")
        status, _, body = await d.call("PATCH", "/okbucket")
        assert status == 405 and code_of(body) == "MethodNotAllowed"

    door(scenario)


def test_unsigned_and_badly_signed_requests(door: Any) -> None:
    async def scenario(d: Door) -> None:
        # Unsigned is anonymous: refused on a private bucket; a missing bucket is missing, as
        # AWS answers anyone.
        response = await d.client.get("/anything?acl")
        assert (response.status, code_of(await response.read())) == (404, "NoSuchBucket")
        await d.call("PUT", "/private-bucket")
        for target in ("/private-bucket?acl", "/private-bucket", "/private-bucket/k", "/"):
            response = await d.client.get(target)
            assert (response.status, code_of(await response.read())) == (403, "AccessDenied")
        host = f"127.0.0.1:{d.client.port}"
        request = AWSRequest(method="GET", url=f"http://{host}/")
        request.headers["X-Amz-Content-SHA256"] = EMPTY_SHA256
        S3SigV4Auth(Credentials(KEY_ID, "wrong-secret-wrong"), "s3", "us-east-1").add_auth(request)
        sent = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        response = await d.client.get("/", headers=sent)
        assert code_of(await response.read()) == "SignatureDoesNotMatch"

    door(scenario)


def test_multipart_in_process(door: Any) -> None:
    async def scenario(d: Door) -> None:
        await d.call("PUT", "/mpu")
        status, _, body = await d.call("POST", "/mpu/big?uploads")
        upload = ET.fromstring(body).findtext("s3:UploadId", namespaces=NS)
        assert status == 200 and upload
        part = b"p" * (5 * 1024 * 1024)
        status, headers, _ = await d.call("PUT", f"/mpu/big?partNumber=1&uploadId={upload}", part)
        etag1 = headers["ETag"]
        _, headers, _ = await d.call("PUT", f"/mpu/big?partNumber=2&uploadId={upload}", b"end")
        etag2 = headers["ETag"]
        complete = (
            "<CompleteMultipartUpload>"
            f"<Part><PartNumber>1</PartNumber><ETag>{etag1}</ETag></Part>"
            f"<Part><PartNumber>2</PartNumber><ETag>{etag2}</ETag></Part>"
            "</CompleteMultipartUpload>"
        ).encode()
        status, _, body = await d.call("POST", f"/mpu/big?uploadId={upload}", complete)
        assert status == 200 and ET.fromstring(body).findtext("s3:ETag", namespaces=NS)
        status, headers, body = await d.call("GET", "/mpu/big?partNumber=2")
        assert (status, body, headers["x-amz-mp-parts-count"]) == (206, b"end", "2")

    door(scenario)


def test_parameters_are_parsed_and_bounded_before_any_handler(door: Any) -> None:
    async def scenario(d: Door) -> None:
        await d.call("PUT", "/params")
        await d.call("PUT", "/params/k", b"0123456789")
        refused = {
            "/params/k?partNumber=0": (400, "InvalidArgument", "Part number must be"),
            "/params/k?partNumber=10001": (400, "InvalidArgument", "Part number must be"),
            "/params?max-keys=abc": (400, "InvalidArgument", "Provided max-keys not an integer"),
            "/params?max-keys=-1": (400, "InvalidArgument", "Argument maxKeys must be"),
            "/?max-buckets=0": (400, "InvalidArgument", "max-buckets must be an integer"),
            "/params?uploads&max-uploads=x": (400, "InvalidArgument", "Provided max-uploads"),
        }
        for target, (status, code, message) in refused.items():
            got, _, body = await d.call("GET", target)
            assert (got, code_of(body)) == (status, code), target
            assert (ET.fromstring(body).findtext("Message") or "").startswith(message), target
        got, _, body = await d.call("GET", "/params/k?partNumber=1", headers={"Range": "bytes=0-1"})
        assert (got, code_of(body)) == (400, "InvalidRequest")
        status, _, body = await d.call("GET", "/params?max-keys=5000")
        assert ET.fromstring(body).findtext("s3:MaxKeys", namespaces=NS) == "1000"  # capped
        assert (await d.call("GET", "/params/k"))[2] == b"0123456789"  # nothing was lost

    door(scenario)


def test_a_copy_needs_read_access_to_its_source(door: Any) -> None:
    async def scenario(d: Door) -> None:
        for bucket in ("src", "dst"):
            await d.call("PUT", f"/{bucket}")
        await d.call("PUT", "/src/secret", b"not yours")
        await d.call("PUT", "/dst/mine", b"yours", key_id=LIMITED)
        copy = {"x-amz-copy-source": "src/secret"}
        status, _, body = await d.call("PUT", "/dst/stolen", headers=copy, key_id=LIMITED)
        assert (status, code_of(body)) == (403, "AccessDenied")
        _, _, body = await d.call("POST", "/dst/big?uploads", key_id=LIMITED)
        upload = ET.fromstring(body).findtext("s3:UploadId", namespaces=NS)
        status, _, body = await d.call(
            "PUT", f"/dst/big?partNumber=1&uploadId={upload}", headers=copy, key_id=LIMITED
        )
        assert (status, code_of(body)) == (403, "AccessDenied")
        status, _, _ = await d.call("GET", "/dst/stolen")
        assert status == 404  # nothing was written
        own = {"x-amz-copy-source": "dst/mine"}
        assert (await d.call("PUT", "/dst/copy", headers=own, key_id=LIMITED))[0] == 200
        assert (await d.call("GET", "/dst/copy"))[2] == b"yours"
        assert (await d.call("DELETE", f"/dst/big?uploadId={upload}"))[0] == 204

    door(scenario)


def test_the_access_log_records_every_answer_once(
    door: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(d: Door) -> None:
        caplog.set_level(logging.INFO, logger="lightningstor.s3")
        await d.call("PUT", "/logged")
        _, headers, _ = await d.call("GET", "/logged/missing")
        await d.app.drain(0)
        status, refused_headers, body = await d.call("GET", "/logged")
        assert (status, code_of(body)) == (503, "ServiceUnavailable")
        assert refused_headers["Connection"] == "close"
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("request=")]
        assert len(lines) == 3
        assert "op=CreateBucket status=200" in lines[0] and f"key_id={KEY_ID}" in lines[0]
        assert lines[1].startswith(f"request={headers['x-amz-request-id']} method=GET")
        # The operation stays named on an error; its code has a field of its own.
        assert "op=GetObject status=404 code=NoSuchKey" in lines[1]
        assert f"key_id={KEY_ID}" in lines[1]
        assert "status=503 code=ServiceUnavailable" in lines[2]
        assert all(SECRET not in r.getMessage() for r in caplog.records)

    door(scenario)


def test_an_unexpected_exception_is_an_internal_error_with_its_request_id(
    door: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(call: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setitem(s3_app.HANDLERS, "HeadBucket", broken)

    async def scenario(d: Door) -> None:
        await d.call("PUT", "/buggy")
        status, headers, body = await d.call("GET", "/buggy?location")
        assert status == 200  # the other operations are unaffected
        status, headers, body = await d.call("HEAD", "/buggy")
        assert (status, body) == (500, b"")
        request_id = headers["x-amz-request-id"]
        failures = [r for r in caplog.records if "failed unexpectedly" in r.getMessage()]
        assert [r.getMessage().split()[0] for r in failures] == [f"request={request_id}"]
        assert failures[0].exc_info is not None

    door(scenario)


ENTITY_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
    b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
)
EXTERNAL = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'


def test_request_xml_with_a_dtd_or_entities_is_malformed(door: Any) -> None:
    """defusedxml: no DTD, no entity declaration, however small; nothing is changed."""

    async def scenario(d: Door) -> None:
        await d.call("PUT", "/xmlsafe")
        await d.call("PUT", "/xmlsafe/keep", b"kept")
        bodies = {
            "POST /xmlsafe?delete": ENTITY_BOMB
            + b"<Delete><Object><Key>&b;</Key></Object><Object><Key>keep</Key></Object></Delete>",
            "PUT /xmlsafe-new": EXTERNAL
            + b"<CreateBucketConfiguration><LocationConstraint>&x;</LocationConstraint>"
            + b"</CreateBucketConfiguration>",
        }
        _, _, body = await d.call("POST", "/xmlsafe/big?uploads")
        upload = ET.fromstring(body).findtext("s3:UploadId", namespaces=NS)
        bodies[f"POST /xmlsafe/big?uploadId={upload}"] = (
            EXTERNAL + b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
            b"<ETag>&x;</ETag></Part></CompleteMultipartUpload>"
        )
        for what, xml in bodies.items():
            method, target = what.split(" ")
            md5 = base64.b64encode(hashlib.md5(xml).digest()).decode()
            status, _, body = await d.call(method, target, xml, {"Content-MD5": md5})
            assert (status, code_of(body)) == (400, "MalformedXML"), what
        assert (await d.call("GET", "/xmlsafe/keep"))[2] == b"kept"
        assert (await d.call("HEAD", "/xmlsafe-new"))[0] == 404
        assert (await d.call("GET", f"/xmlsafe/big?uploadId={upload}"))[0] == 200  # still open
        assert (await d.call("DELETE", f"/xmlsafe/big?uploadId={upload}"))[0] == 204

    door(scenario)
