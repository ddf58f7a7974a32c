"""A signature binds exactly the request that is executed (issue 14, critical group).

Each attack takes a request botocore signed (header or presigned, SigV4 or SigV2) and edits
its target or Host over a raw socket the way an attacker holding it would. Each must be
refused with the exact error, and the stored objects must be intact afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.botocore_requests import Prepared, captured, from_url, presigned, s3_client
from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon, boto3_client
from tests.raw import exchange, form_body, post_form

BUCKET = "bind"
KEY = "k"
CONTENT = b"the live object, which no edited signature may touch"
DOMAIN = "s3.binding.test"


@pytest.fixture(scope="module")
def vhost_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(
        tmp_path_factory.mktemp("bind") / "data",
        extra_env={"LIGHTNINGSTOR_VIRTUAL_HOST_DOMAINS": DOMAIN},
    ).start()
    s3 = boto3_client(d)
    for bucket in (BUCKET, "alpha", "beta", "private"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=CONTENT)
    s3.put_object(Bucket="alpha", Key=KEY, Body=b"alpha's object")
    s3.put_object(Bucket="beta", Key=KEY, Body=b"beta's object")
    for key in ("a b/1", "a+b/1", "zzz/1", "zzz#/1"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"listed")
    s3.close()
    yield d
    d.stop()


@pytest.fixture
def s3(vhost_daemon: Daemon) -> Iterator[Any]:
    client = boto3_client(vhost_daemon)
    yield client
    client.close()


def assert_intact(s3: Any) -> None:
    assert s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == CONTENT
    assert s3.get_object(Bucket="beta", Key=KEY)["Body"].read() == b"beta's object"
    assert "Contents" not in s3.list_objects_v2(Bucket="private")


_AUTH_PARAMETERS = ("X-Amz-", "AWSAccessKeyId=", "Expires=")


def hash_smuggled(target: str, executed_path: str) -> str:
    """The '#' attack on a presigned URL: its authentication parameters and a dummy signature
    first, then a '#', then what selects the signed operation and the real signature. The
    checker of d92457a saw the whole target; its router stopped at the '#' and ran
    ``executed_path`` without the sub-resource."""
    query = target.partition("?")[2].split("&")
    signature = next(i for i in query if i.startswith(("X-Amz-Signature=", "Signature=")))
    auth = [i for i in query if i.startswith(_AUTH_PARAMETERS) and i != signature]
    rest = [i for i in query if not i.startswith(_AUTH_PARAMETERS) and i != signature]
    dummy = signature.split("=", 1)[0] + "=0"
    return f"{executed_path}?{'&'.join([*auth, dummy])}#&{'&'.join([*rest, signature])}"


def listed_keys(body: bytes) -> list[str]:
    """The keys of a listing reply, decoded when it says they are URL-encoded."""
    root = ET.fromstring(body)
    ns = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
    keys = [node.text or "" for node in root.iterfind("s3:Contents/s3:Key", ns)]
    encoded = root.findtext("s3:EncodingType", namespaces=ns) == "url"
    return [unquote_plus(key) for key in keys] if encoded else keys


def assert_refused_uri(reply: Any) -> None:
    assert (reply.status, reply.code) == (400, "InvalidURI"), reply.body
    assert CONTENT not in reply.body


SIGV4 = {"region": "eu-central-1"}
SIGV2 = {"region": "us-east-1", "signature_version": "s3"}


@pytest.mark.parametrize("signer", [SIGV4, SIGV2], ids=["sigv4", "sigv2"])
def test_presigned_acl_read_cannot_become_a_get(vhost_daemon: Daemon, s3: Any, signer: Any) -> None:
    client = s3_client(vhost_daemon, **signer)
    url = presigned(client, "get_object_acl", Bucket=BUCKET, Key=KEY)
    assert url.send(vhost_daemon).status == 200  # the URL as issued works
    attack = hash_smuggled(url.target, f"/{BUCKET}/{KEY}")
    assert_refused_uri(url.send(vhost_daemon, target=attack))
    assert_intact(s3)
    client.close()


@pytest.mark.parametrize("signer", [SIGV4, SIGV2], ids=["sigv4", "sigv2"])
def test_presigned_upload_part_cannot_overwrite_the_object(
    vhost_daemon: Daemon, s3: Any, signer: Any
) -> None:
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=KEY)["UploadId"]
    client = s3_client(vhost_daemon, **signer)
    url = presigned(
        client, "upload_part", "PUT", Bucket=BUCKET, Key=KEY, UploadId=upload, PartNumber=1
    )
    evil = Prepared(url.method, url.host, url.target, url.headers, b"overwritten!")
    assert_refused_uri(
        evil.send(vhost_daemon, target=hash_smuggled(url.target, f"/{BUCKET}/{KEY}"))
    )
    assert_intact(s3)
    s3.abort_multipart_upload(Bucket=BUCKET, Key=KEY, UploadId=upload)
    client.close()


@pytest.mark.parametrize("signer", [SIGV4, SIGV2], ids=["sigv4", "sigv2"])
def test_presigned_abort_cannot_become_a_delete(vhost_daemon: Daemon, s3: Any, signer: Any) -> None:
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=KEY)["UploadId"]
    client = s3_client(vhost_daemon, **signer)
    url = presigned(
        client, "abort_multipart_upload", "DELETE", Bucket=BUCKET, Key=KEY, UploadId=upload
    )
    assert_refused_uri(url.send(vhost_daemon, target=hash_smuggled(url.target, f"/{BUCKET}/{KEY}")))
    assert_intact(s3)
    assert url.send(vhost_daemon).status == 204  # the abort it was signed for still works
    client.close()


def test_presigned_list_parts_and_location_cannot_become_reads(
    vhost_daemon: Daemon, s3: Any
) -> None:
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=KEY)["UploadId"]
    client = s3_client(vhost_daemon)
    parts = presigned(client, "list_parts", Bucket=BUCKET, Key=KEY, UploadId=upload)
    assert_refused_uri(
        parts.send(vhost_daemon, target=hash_smuggled(parts.target, f"/{BUCKET}/{KEY}"))
    )
    location = presigned(client, "get_bucket_location", Bucket=BUCKET)
    reply = location.send(vhost_daemon, target=hash_smuggled(location.target, f"/{BUCKET}"))
    assert_refused_uri(reply)
    assert b"<Key>" not in reply.body
    s3.abort_multipart_upload(Bucket=BUCKET, Key=KEY, UploadId=upload)
    client.close()


def test_header_signed_delete_of_a_hash_key_cannot_delete_another(
    vhost_daemon: Daemon, s3: Any
) -> None:
    s3.put_object(Bucket=BUCKET, Key="k#1", Body=b"the key with a hash")
    request = captured(s3_client(vhost_daemon), "delete_object", Bucket=BUCKET, Key="k#1")
    assert request.target == f"/{BUCKET}/k%231"
    assert_refused_uri(request.send(vhost_daemon, target=f"/{BUCKET}/k#1"))
    assert_intact(s3)
    assert request.send(vhost_daemon).status == 204
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="k#")


def test_presigned_listing_prefix_with_a_hash_stays_its_prefix(vhost_daemon: Daemon) -> None:
    client = s3_client(vhost_daemon)
    url = presigned(client, "list_objects_v2", Bucket=BUCKET, Prefix="zzz#")
    reply = url.send(vhost_daemon)
    assert reply.status == 200 and listed_keys(reply.body) == ["zzz#/1"]
    assert "prefix=zzz%23" in url.target
    assert_refused_uri(url.send(vhost_daemon, target=url.target.replace("zzz%23", "zzz#")))
    client.close()


def test_sigv2_header_with_a_smuggled_subresource(vhost_daemon: Daemon, s3: Any) -> None:
    request = captured(s3_client(vhost_daemon, **SIGV2), "get_object_acl", Bucket=BUCKET, Key=KEY)
    assert request.target == f"/{BUCKET}/{KEY}?acl"
    assert_refused_uri(request.send(vhost_daemon, target=f"/{BUCKET}/{KEY}?x-id=0#&acl"))
    assert_intact(s3)


@pytest.mark.parametrize(
    "target",
    [
        f"/{BUCKET}/{KEY}#",
        f"/{BUCKET}/{KEY}?acl#x",
        f"/{BUCKET}/a\x7fb",
        f"/{BUCKET}/caf\u00e9",  # raw UTF-8: clients percent-encode it
        f"/{BUCKET}/a{{b}}",
        f"/{BUCKET}/a|b",
        f"/{BUCKET}/a^b",
        f"/{BUCKET}/a`b",
        f'/{BUCKET}/a"b',
        f"/{BUCKET}/a<b>",
        f"/{BUCKET}/a\\b",
        f"/{BUCKET}/a[b]",
        f"/{BUCKET}/a%zzb",
        f"/{BUCKET}/a%2",
        f"/{BUCKET}?prefix=a&prefix=b",
        f"http://127.0.0.1/{BUCKET}/{KEY}",
        "*",
    ],
)
def test_targets_rfc_9112_does_not_allow_are_refused_first(
    vhost_daemon: Daemon, s3: Any, target: str
) -> None:
    """Refused before authentication: the request is not even signed."""
    data = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    reply = exchange(vhost_daemon, data.encode("utf-8", "surrogateescape"))
    assert reply is not None
    if reply.code is None:  # what aiohttp refuses itself before the app sees it
        assert reply.status == 400, reply.body
    else:
        assert_refused_uri(reply)
    assert_intact(s3)


def test_plus_in_the_query_is_a_space_for_the_signature_too(vhost_daemon: Daemon) -> None:
    client = s3_client(vhost_daemon)
    url = presigned(client, "list_objects", Bucket=BUCKET, Prefix="a+b")
    assert "prefix=a%2Bb" in url.target
    listed = url.send(vhost_daemon)
    assert listed.status == 200 and listed_keys(listed.body) == ["a+b/1"]
    replay = url.send(vhost_daemon, target=url.target.replace("prefix=a%2Bb", "prefix=a+b"))
    assert (replay.status, replay.code) == (403, "SignatureDoesNotMatch")
    assert b"<Contents>" not in replay.body
    # Signed for a space, sent as "+": the same request, so it runs, and lists "a b".
    spaced = presigned(client, "list_objects", Bucket=BUCKET, Prefix="a b")
    as_plus = spaced.send(vhost_daemon, target=spaced.target.replace("prefix=a%20b", "prefix=a+b"))
    assert as_plus.status == 200 and listed_keys(as_plus.body) == ["a b/1"]
    client.close()


# --- SigV2 and virtual hosts: the canonical resource names the bucket -----------------------------
def _vhost_client(daemon: Daemon, **signer: Any) -> Any:
    return s3_client(
        daemon,
        endpoint=f"http://{DOMAIN}:{daemon.s3_port}",
        addressing_style="virtual",
        **signer,
    )


@pytest.mark.parametrize("form", ["header", "presigned"])
def test_sigv2_virtual_host_signature_names_its_bucket(
    vhost_daemon: Daemon, s3: Any, form: str
) -> None:
    client = _vhost_client(vhost_daemon, **SIGV2)
    if form == "header":
        request = captured(client, "get_object", Bucket="alpha", Key=KEY)
    else:
        request = presigned(client, "get_object", Bucket="alpha", Key=KEY)
    assert request.host == f"alpha.{DOMAIN}:{vhost_daemon.s3_port}"
    assert request.target.startswith(f"/{KEY}")
    served = request.send(vhost_daemon)  # botocore signs "/alpha/k": accepted (interop)
    assert served.status == 200 and served.body == b"alpha's object"
    moved = request.send(vhost_daemon, host=f"beta.{DOMAIN}:{vhost_daemon.s3_port}")
    assert (moved.status, moved.code) == (403, "SignatureDoesNotMatch")
    assert b"beta's object" not in moved.body
    assert_intact(s3)
    client.close()


def test_sigv2_signature_over_a_resource_without_the_bucket_is_refused(
    vhost_daemon: Daemon,
) -> None:
    """What d92457a accepted: "/k" signed for a virtual-hosted request."""
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    to_sign = f"GET\n\n\n{date}\n/{KEY}"
    signature = base64.b64encode(
        hmac.new(SECRET_KEY.encode(), to_sign.encode(), hashlib.sha1).digest()
    ).decode()
    data = (
        f"GET /{KEY} HTTP/1.1\r\nHost: beta.{DOMAIN}\r\nDate: {date}\r\n"
        f"Authorization: AWS {ACCESS_KEY}:{signature}\r\nConnection: close\r\n\r\n"
    )
    reply = exchange(vhost_daemon, data.encode())
    assert reply is not None and (reply.status, reply.code) == (403, "SignatureDoesNotMatch")


@pytest.mark.parametrize(
    ("subresource", "code"),
    [
        ("encryption", "AccessDenied"),
        ("publicAccessBlock", "AccessDenied"),
        ("ownershipControls", "AccessDenied"),
        ("object-lock", "SignatureDoesNotMatch"),
        ("replication", "SignatureDoesNotMatch"),
        ("accelerate", "SignatureDoesNotMatch"),
    ],
)
def test_sigv2_presigned_url_cannot_gain_a_subresource(
    vhost_daemon: Daemon, subresource: str, code: str
) -> None:
    """Either signed (so appending it breaks the signature) or refused under SigV2."""
    client = s3_client(vhost_daemon, **SIGV2)
    listing = presigned(client, "list_objects", Bucket=BUCKET)
    # SigV2 does not sign encoding-type (a listing filter): without it the URL holds nothing
    # but its authentication, so the router would take the sub-resource alone.
    url = Prepared(
        listing.method, listing.host, listing.target.replace("encoding-type=url&", ""), {}
    )
    assert url.send(vhost_daemon).status == 200  # botocore signs "/bind/" for "/bind"
    reply = url.send(vhost_daemon, target=f"{url.target}&{subresource}")
    assert (reply.status, reply.code) == (403, code), reply.body
    client.close()


def test_sigv2_presigned_lifetime_is_at_most_a_week(vhost_daemon: Daemon) -> None:
    client = s3_client(vhost_daemon, **SIGV2)
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=975 * 365 * 86400
    )
    assert "Expires=3" in url  # the year 3000 or so
    reply = from_url(url).send(vhost_daemon)
    assert (reply.status, reply.code) == (400, "AuthorizationQueryParametersError")
    week = client.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=7 * 86400 - 60
    )
    assert from_url(week).send(vhost_daemon).body == CONTENT
    client.close()


class _OtherScopeDate(S3SigV4QueryAuth):  # type: ignore[misc]
    """botocore's presigner, with the credential scope dated a day before X-Amz-Date."""

    def _scope_date(self, request: AWSRequest) -> str:
        stamp = datetime.strptime(request.context["timestamp"], "%Y%m%dT%H%M%SZ")
        return (stamp - timedelta(days=1)).strftime("%Y%m%d")

    def scope(self, request: AWSRequest) -> str:
        return "/".join([self.credentials.access_key, self.credential_scope(request)])

    def credential_scope(self, request: AWSRequest) -> str:
        return "/".join([self._scope_date(request), self._region_name, "s3", "aws4_request"])

    def signature(self, string_to_sign: str, request: AWSRequest) -> str:
        key = self._sign(f"AWS4{self.credentials.secret_key}".encode(), self._scope_date(request))
        for part in (self._region_name, "s3", "aws4_request"):
            key = self._sign(key, part)
        return str(self._sign(key, string_to_sign, hex=True))


def test_presigned_sigv4_scope_date_must_be_the_request_date(vhost_daemon: Daemon) -> None:
    url = f"{vhost_daemon.endpoint}/{BUCKET}/{KEY}"
    request = AWSRequest(method="GET", url=url)
    signer = _OtherScopeDate(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "eu-central-1", 600)
    signer.add_auth(request)
    reply = from_url(request.url).send(vhost_daemon)
    assert (reply.status, reply.code) == (400, "AuthorizationQueryParametersError"), reply.body
    assert b"X-Amz-Date" in reply.body


# --- POST forms: the bucket checked is the bucket written ---------------------------------------
def test_post_policy_bucket_condition_is_checked_against_the_url(
    vhost_daemon: Daemon, s3: Any
) -> None:
    expires = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    policy = base64.b64encode(
        json.dumps(
            {
                "expiration": expires,
                "conditions": [{"bucket": "alpha"}, ["starts-with", "$key", ""]],
            }
        ).encode()
    )
    signature = base64.b64encode(hmac.new(SECRET_KEY.encode(), policy, hashlib.sha1).digest())
    fields: list[tuple[str, str | bytes]] = [
        ("key", "smuggled"),
        ("bucket", "alpha"),
        ("AWSAccessKeyId", ACCESS_KEY),
        ("policy", policy),
        ("signature", signature),
        ("file", b"into the private bucket"),
    ]
    reply = post_form(vhost_daemon, "private", form_body(fields))
    assert reply is not None and (reply.status, reply.code) == (403, "AccessDenied"), reply
    assert b"bucket" in reply.body
    assert_intact(s3)
    # The same form to the bucket it names is fine.
    landed = post_form(vhost_daemon, "alpha", form_body(fields))
    assert landed is not None and landed.status == 204
    assert (
        s3.get_object(Bucket="alpha", Key="smuggled")["Body"].read() == b"into the private bucket"
    )


def test_listing_xml_parses(vhost_daemon: Daemon) -> None:
    reply = presigned(s3_client(vhost_daemon), "list_objects_v2", Bucket=BUCKET).send(vhost_daemon)
    ET.fromstring(reply.body)
