"""Behaviours the S3 conformance suite (ceph/s3-tests) checks, each tested here too, the AWS
way: listings, conditional writes, part reads, copy ranges, full-object checksums and
GetObjectAttributes, signing with a Date header, expired and SDK-made presigned URLs, ACLs."""

from __future__ import annotations

import base64
import hashlib
import zlib
from dataclasses import replace
from email.utils import formatdate
from typing import Any

import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.botocore_requests import from_url
from tests.daemon import ACCESS_KEY, SECRET_KEY, Daemon, boto3_client
from tests.raw import exchange, signed
from tests.signing import sign

BUCKET = "compat"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket=BUCKET)
    return BUCKET


def error_of(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


# --- listings -----------------------------------------------------------------------------------
def test_v1_prefix_is_not_url_encoded_v2_prefix_is(daemon: Daemon, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="\nline", Body=b"")
    v1 = s3.list_objects(Bucket=bucket, Prefix="\n")  # botocore asks for encoding-type=url
    assert v1["Prefix"] == "\n" and [o["Key"] for o in v1["Contents"]] == ["\nline"]
    v2 = s3.list_objects_v2(Bucket=bucket, Prefix="\n")
    assert v2["Prefix"] == "\n" and v2["KeyCount"] == 1
    raw = exchange(daemon, signed(daemon, "GET", f"/{bucket}?encoding-type=url&prefix=%0A"))
    assert raw is not None and b"<Prefix>\n</Prefix>" in raw.body


def test_an_empty_continuation_token_is_the_first_page(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="first", Body=b"")
    page = s3.list_objects_v2(Bucket=bucket, ContinuationToken="")
    assert page["ContinuationToken"] == "" and "first" in [o["Key"] for o in page["Contents"]]


# --- bodies -------------------------------------------------------------------------------------
def test_http_chunked_body_without_content_length(daemon: Daemon, s3: Any, bucket: str) -> None:
    body = b"sent in HTTP chunks"
    framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:7], body[7:])) + b"0\r\n\r\n"
    headers = {"Transfer-Encoding": "chunked"}
    request = signed(
        daemon, "PUT", f"/{bucket}/chunked", headers=headers, payload_hash="UNSIGNED-PAYLOAD"
    )
    reply = exchange(daemon, request + framed)
    assert reply is not None and reply.status == 200, reply
    assert s3.get_object(Bucket=bucket, Key="chunked")["Body"].read() == body


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("gzip, aws-chunked", "gzip"),
        ("aws-chunked, gzip", "gzip"),
        ("aws-chunked", None),
        ("aws-chunked, aws-chunked", None),
        ("deflate, gzip", "deflate, gzip"),
    ],
)
def test_aws_chunked_in_content_encoding_of_a_plain_body(
    s3: Any, bucket: str, sent: str, stored: str | None
) -> None:
    s3.put_object(Bucket=bucket, Key="encoded", Body=b"plain bytes", ContentEncoding=sent)
    head = s3.head_object(Bucket=bucket, Key="encoded")
    assert head.get("ContentEncoding") == stored
    assert s3.get_object(Bucket=bucket, Key="encoded")["Body"].read() == b"plain bytes"


# --- conditional writes ---------------------------------------------------------------------------
def test_conditional_puts(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="cond", Body=b"one", IfNoneMatch="*")["ETag"]
    put = s3.put_object
    assert error_of(lambda: put(Bucket=bucket, Key="cond", Body=b"x", IfNoneMatch="*")) == (
        "PreconditionFailed",
        412,
    )
    assert error_of(lambda: put(Bucket=bucket, Key="cond", Body=b"x", IfNoneMatch=etag)) == (
        "PreconditionFailed",
        412,
    )
    put(Bucket=bucket, Key="cond", Body=b"two", IfNoneMatch='"someotheretag"')
    etag = put(Bucket=bucket, Key="cond", Body=b"three", IfMatch="*")["ETag"]
    assert error_of(lambda: put(Bucket=bucket, Key="cond", Body=b"x", IfMatch='"bad"')) == (
        "PreconditionFailed",
        412,
    )
    put(Bucket=bucket, Key="cond", Body=b"four", IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="cond")["Body"].read() == b"four"
    assert error_of(lambda: put(Bucket=bucket, Key="absent", Body=b"x", IfMatch="*")) == (
        "NoSuchKey",
        404,
    )


# --- parts and ranges ---------------------------------------------------------------------------
def _three_parts(s3: Any, key: str, **create: Any) -> tuple[str, list[bytes], list[dict[str, Any]]]:
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key, **create)["UploadId"]
    data = [bytes([65 + n]) * (5 * MIB if n < 2 else 1000) for n in range(3)]
    parts = []
    for number, body in enumerate(data, start=1):
        extra = {"ChecksumAlgorithm": create["ChecksumAlgorithm"]} if create else {}
        reply = s3.upload_part(
            Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number, Body=body, **extra
        )
        part = {"ETag": reply["ETag"], "PartNumber": number}
        if create:
            name = "Checksum" + create["ChecksumAlgorithm"]
            part[name] = reply[name]
        parts.append(part)
    return upload, data, parts


def test_part_number_past_the_last_part_is_416_as_aws_answers(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="single", Body=b"one part")
    assert error_of(lambda: s3.get_object(Bucket=bucket, Key="single", PartNumber=2)) == (
        "InvalidPartNumber",
        416,
    )
    with pytest.raises(ClientError) as raised:
        s3.get_object(Bucket=bucket, Key="single", PartNumber=2)
    details = raised.value.response["Error"]
    assert (details["PartNumberRequested"], details["ActualPartCount"]) == ("2", "1")


def test_upload_part_copy_range_past_the_source_is_invalid_range(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="five", Body=b"12345")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="copied")["UploadId"]

    def copy(copy_range: str) -> Any:
        return s3.upload_part_copy(
            Bucket=bucket,
            Key="copied",
            UploadId=upload,
            PartNumber=1,
            CopySource={"Bucket": bucket, "Key": "five"},
            CopySourceRange=copy_range,
        )

    assert error_of(lambda: copy("bytes=0-21")) == ("InvalidRange", 416)
    assert copy("bytes=1-3")["CopyPartResult"]["ETag"]
    s3.abort_multipart_upload(Bucket=bucket, Key="copied", UploadId=upload)


# --- checksums of multipart objects -------------------------------------------------------------
def test_full_object_crc32_multipart(s3: Any, bucket: str) -> None:
    create = {"ChecksumAlgorithm": "CRC32", "ChecksumType": "FULL_OBJECT"}
    upload, data, parts = _three_parts(s3, "full", **create)
    whole = crc32_b64(b"".join(data))

    def complete(claim: str) -> Any:
        return s3.complete_multipart_upload(
            Bucket=bucket,
            Key="full",
            UploadId=upload,
            MultipartUpload={"Parts": parts},
            ChecksumCRC32=claim,
            ChecksumType="FULL_OBJECT",
        )

    assert error_of(lambda: complete(crc32_b64(b"not the object"))) == ("BadDigest", 400)
    done = complete(whole)
    assert (done["ChecksumCRC32"], done["ChecksumType"]) == (whole, "FULL_OBJECT")
    head = s3.head_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (whole, "FULL_OBJECT")
    second = s3.get_object(Bucket=bucket, Key="full", PartNumber=2, ChecksumMode="ENABLED")
    assert second["ChecksumCRC32"] == crc32_b64(data[1])  # botocore checked the body by it
    assert second["Body"].read() == data[1]
    attributes = s3.get_object_attributes(
        Bucket=bucket, Key="full", ObjectAttributes=["Checksum", "ObjectParts", "ObjectSize"]
    )
    assert attributes["Checksum"] == {"ChecksumCRC32": whole, "ChecksumType": "FULL_OBJECT"}
    assert attributes["ObjectSize"] == sum(map(len, data))
    listed = attributes["ObjectParts"]["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ChecksumCRC32"]) for p in listed] == [
        (n, len(d), crc32_b64(d)) for n, d in enumerate(data, start=1)
    ]


def test_composite_sha256_multipart_and_attributes(s3: Any, bucket: str) -> None:
    upload, _data, parts = _three_parts(s3, "composite", ChecksumAlgorithm="SHA256")
    raw = b"".join(base64.b64decode(p["ChecksumSHA256"]) for p in parts)
    expected = base64.b64encode(hashlib.sha256(raw).digest()).decode() + "-3"
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="composite", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    assert (done["ChecksumSHA256"], done["ChecksumType"]) == (expected, "COMPOSITE")
    pages = s3.get_object_attributes(
        Bucket=bucket,
        Key="composite",
        ObjectAttributes=["ETag", "ObjectParts", "StorageClass"],
        MaxParts=1,
        PartNumberMarker=1,
    )
    assert pages["ETag"] == done["ETag"].strip('"') and pages["StorageClass"] == "STANDARD"
    object_parts = pages["ObjectParts"]
    assert (object_parts["TotalPartsCount"], object_parts["IsTruncated"]) == (3, True)
    assert object_parts["NextPartNumberMarker"] == 2
    assert [p["PartNumber"] for p in object_parts["Parts"]] == [2]


@pytest.mark.parametrize(
    ("algorithm", "kind"), [("SHA256", "FULL_OBJECT"), ("CRC64NVME", "COMPOSITE")]
)
def test_checksum_types_an_algorithm_cannot_have(
    s3: Any, bucket: str, algorithm: str, kind: str
) -> None:
    create = lambda: s3.create_multipart_upload(  # noqa: E731
        Bucket=bucket, Key="nope", ChecksumAlgorithm=algorithm, ChecksumType=kind
    )
    assert error_of(create) == ("InvalidRequest", 400)


def test_object_attributes_of_a_simple_object(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="simple", Body=b"abc", ChecksumAlgorithm="CRC32")
    got = s3.get_object_attributes(
        Bucket=bucket, Key="simple", ObjectAttributes=["ETag", "Checksum", "ObjectSize"]
    )
    assert got["ObjectSize"] == 3 and "ObjectParts" not in got
    assert got["Checksum"] == {"ChecksumCRC32": crc32_b64(b"abc"), "ChecksumType": "FULL_OBJECT"}
    with pytest.raises(ClientError) as bad:
        s3.get_object_attributes(Bucket=bucket, Key="simple", ObjectAttributes=["Nonsense"])
    assert bad.value.response["Error"]["Code"] == "InvalidArgument"


# --- signatures ---------------------------------------------------------------------------------
def test_sigv4_signed_with_a_date_header_instead_of_x_amz_date(
    daemon: Daemon, s3: Any, bucket: str
) -> None:
    """botocore's signer uses Date when the caller set one (ceph/s3-tests' test_headers do)."""
    fields = sign(
        "PUT",
        f"{daemon.endpoint}/{bucket}/dated",
        headers={"Date": formatdate(usegmt=True), "Content-Length": "5"},
        payload_hash=hashlib.sha256(b"dated").hexdigest(),
    )
    assert "X-Amz-Date" not in fields and "Date" in fields
    head = f"PUT /{bucket}/dated HTTP/1.1\r\nHost: 127.0.0.1:{daemon.s3_port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    reply = exchange(daemon, head.encode() + b"\r\ndated")
    assert reply is not None and reply.status == 200, reply
    assert s3.get_object(Bucket=bucket, Key="dated")["Body"].read() == b"dated"


def test_expired_presigned_put_is_403(daemon: Daemon, bucket: str) -> None:
    url = _presigned(daemon, "PUT", f"/{bucket}/late", expires=-1000)  # ceph/s3-tests' way
    reply = from_url(url, "PUT").send(daemon)
    assert (reply.status, reply.code) == (403, "AccessDenied")


def _client(daemon: Daemon, region: str, **config: Any) -> Any:
    return boto3_client(daemon, region=region, **config)


def _presigned(daemon: Daemon, method: str, target: str, *, expires: int = 600) -> str:
    """A SigV4 presigned URL by botocore's own (Python) presigner, keeping what ``target``'s
    query already holds: what the JavaScript v3 presigner signs into its URLs, say."""
    request = AWSRequest(method=method, url=f"{daemon.endpoint}{target}")
    signer = S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1", expires)
    signer.add_auth(request)
    assert "X-Amz-Signature=" in request.url
    return str(request.url)


def test_javascript_v3_presigned_get_and_put(daemon: Daemon, s3: Any, bucket: str) -> None:
    body = b"uploaded through a JavaScript v3 presigned URL"
    checksum = crc32_b64(body)
    put_url = _presigned(
        daemon,
        "PUT",
        f"/{bucket}/js?X-Amz-Content-Sha256=UNSIGNED-PAYLOAD&x-id=PutObject"
        f"&x-amz-sdk-checksum-algorithm=CRC32&x-amz-checksum-crc32={checksum}",
    )
    empty = from_url(put_url, "PUT").send(daemon)
    assert (empty.status, empty.code) == (400, "BadDigest")  # the query's CRC32 is checked
    reply = replace(from_url(put_url, "PUT"), body=body).send(daemon)
    assert reply.status == 200, reply
    assert reply.headers["x-amz-checksum-crc32"] == checksum
    get_url = _presigned(
        daemon,
        "GET",
        f"/{bucket}/js?X-Amz-Content-Sha256=UNSIGNED-PAYLOAD&x-id=GetObject"
        "&x-amz-checksum-mode=ENABLED",
    )
    got = from_url(get_url).send(daemon)
    assert (got.status, got.body) == (200, body)
    assert got.headers["x-amz-checksum-crc32"] == checksum


def test_boto3_sigv2_presigned_put_with_content_type_and_metadata(
    daemon: Daemon, s3: Any, bucket: str
) -> None:
    client = _client(daemon, "us-east-1")
    url = client.generate_presigned_url(
        "put_object",
        Params={
            "Bucket": bucket,
            "Key": "v2-put",
            "ContentType": "text/csv",
            "Metadata": {"origin": "presigned"},
        },
        ExpiresIn=600,
    )
    assert "content-type=text%2Fcsv" in url and "x-amz-meta-origin=presigned" in url
    reply = replace(from_url(url, "PUT"), body=b"a,b\n1,2\n").send(daemon)
    assert reply.status == 200, reply
    head = s3.head_object(Bucket=bucket, Key="v2-put")
    assert (head["ContentType"], head["Metadata"]) == ("text/csv", {"origin": "presigned"})
    tampered = from_url(url.replace("text%2Fcsv", "text%2Fhtml"), "PUT").send(daemon)
    assert (tampered.status, tampered.code) == (403, "SignatureDoesNotMatch")


def test_unsigned_requests_learn_nothing_but_403(daemon: Daemon, bucket: str) -> None:
    for target in (f"/{bucket}?nonsense", f"/{bucket}/k?acl", f"/{bucket}?encryption"):
        data = f"PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
        reply = exchange(daemon, data)
        assert reply is not None and (reply.status, reply.code) == (403, "AccessDenied"), target


# --- ACLs ---------------------------------------------------------------------------------------
def test_public_acls_get_the_errors_aws_gives_under_bucket_owner_enforced(
    s3: Any, bucket: str
) -> None:
    assert error_of(lambda: s3.create_bucket(Bucket="public-one", ACL="public-read")) == (
        "InvalidBucketAclWithObjectOwnership",
        400,
    )
    put = lambda: s3.put_object(  # noqa: E731
        Bucket=bucket, Key="public", Body=b"x", ACL="public-read"
    )
    assert error_of(put) == ("AccessControlListNotSupported", 400)
    s3.put_object(Bucket=bucket, Key="plain", Body=b"x")
    everyone = 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'
    for attempt in (
        lambda: s3.copy_object(
            Bucket=bucket, Key="copy", CopySource=f"{bucket}/plain", GrantRead=everyone
        ),
        lambda: s3.put_object_acl(Bucket=bucket, Key="plain", ACL="private"),
        lambda: s3.put_bucket_acl(Bucket=bucket, ACL="public-read"),
    ):
        assert error_of(attempt) == ("AccessControlListNotSupported", 400)
    # Nothing was written by the refusals.
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])].count(
        "copy"
    ) == 0
