"""The day-to-day S3 surface through boto3: copy, multi-delete, versions listing, bucket
configurations, part numbers, overrides. Exact codes asserted, stored data checked after."""

from __future__ import annotations

import base64
import hashlib
import http.client
import time
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.daemon import Daemon
from tests.signing import sign


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response: Any = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket="surface")
    return "surface"


def blob_count(daemon: Daemon) -> int:
    return sum(1 for p in (daemon.data_dir / "blobs").rglob("*") if p.is_file())


# --- CopyObject -------------------------------------------------------------------------------
def test_copy_shares_the_blob_and_keeps_metadata(daemon: Daemon, s3: Any, bucket: str) -> None:
    body = b"copy source body " * 1000
    s3.put_object(
        Bucket=bucket, Key="src/a b+c ü", Body=body, ContentType="text/x-src", Metadata={"k": "v"}
    )
    before = blob_count(daemon)
    reply = s3.copy_object(
        Bucket=bucket, Key="dst/copy", CopySource={"Bucket": bucket, "Key": "src/a b+c ü"}
    )
    assert reply["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert blob_count(daemon) == before  # no bytes copied
    got = s3.get_object(Bucket=bucket, Key="dst/copy")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/x-src"
    assert got["Metadata"] == {"k": "v"}


def test_copy_replace_directive_and_self_copy(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="self", Body=b"x", Metadata={"old": "1"})
    with pytest.raises(ClientError) as illegal:
        s3.copy_object(Bucket=bucket, Key="self", CopySource=f"{bucket}/self")
    assert error_of(illegal) == ("InvalidRequest", 400)
    s3.copy_object(
        Bucket=bucket,
        Key="self",
        CopySource=f"{bucket}/self",
        MetadataDirective="REPLACE",
        Metadata={"new": "2"},
        ContentType="text/plain",
    )
    head = s3.head_object(Bucket=bucket, Key="self")
    assert head["Metadata"] == {"new": "2"}
    assert head["ContentType"] == "text/plain"
    assert s3.get_object(Bucket=bucket, Key="self")["Body"].read() == b"x"


def test_copy_source_preconditions_and_missing_source(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="cond-src", Body=b"v1")
    s3.copy_object(
        Bucket=bucket,
        Key="cond-dst",
        CopySource=f"{bucket}/cond-src",
        CopySourceIfMatch=put["ETag"],
    )
    with pytest.raises(ClientError) as mismatch:
        s3.copy_object(
            Bucket=bucket, Key="cond-dst2", CopySource=f"{bucket}/cond-src", CopySourceIfMatch='"0"'
        )
    assert error_of(mismatch) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as unchanged:
        s3.copy_object(
            Bucket=bucket,
            Key="cond-dst2",
            CopySource=f"{bucket}/cond-src",
            CopySourceIfNoneMatch=put["ETag"],
        )
    assert error_of(unchanged) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as missing:
        s3.copy_object(Bucket=bucket, Key="x", CopySource=f"{bucket}/does-not-exist")
    assert error_of(missing) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as no_bucket:
        s3.copy_object(Bucket=bucket, Key="x", CopySource="no-such-bucket-here/k")
    assert error_of(no_bucket) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="cond-dst2")


# --- DeleteObjects ----------------------------------------------------------------------------
def test_delete_objects_verbose_quiet_and_version_null(s3: Any, bucket: str) -> None:
    keys = [f"multi/{i} ü+" for i in range(5)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    reply = s3.delete_objects(
        Bucket=bucket,
        Delete={
            "Objects": [
                {"Key": keys[0]},
                {"Key": keys[1], "VersionId": "null"},
                {"Key": "multi/never"},
            ]
        },
    )
    assert sorted(d["Key"] for d in reply["Deleted"]) == sorted([keys[0], keys[1], "multi/never"])
    quiet = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[2:]], "Quiet": True}
    )
    assert "Deleted" not in quiet
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="multi/")
    # A version id this store could not have issued is refused (AWS: InvalidArgument, "Invalid
    # version id specified"); one it could have, but never did, is deleted already (AWS too).
    unknown = "0" * 32
    odd = s3.delete_objects(
        Bucket=bucket,
        Delete={
            "Objects": [
                {"Key": "k", "VersionId": "3HL4kqtJlcpXroDTDmJ"},
                {"Key": "k", "VersionId": unknown},
            ]
        },
    )
    assert [(e["Code"], e["VersionId"]) for e in odd["Errors"]] == [
        ("InvalidArgument", "3HL4kqtJlcpXroDTDmJ")
    ]
    assert [(e["Key"], e["VersionId"]) for e in odd["Deleted"]] == [("k", unknown)]


def _post_delete(
    daemon: Daemon, bucket: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    path = f"/{bucket}?delete"
    signed = sign(
        "POST",
        f"{daemon.endpoint}{path}",
        headers={**headers, "Content-Length": str(len(body))},
        payload_hash=hashlib.sha256(body).hexdigest(),
    )
    conn = http.client.HTTPConnection("127.0.0.1", daemon.s3_port, timeout=10)
    conn.request("POST", path, body=body, headers=signed)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def _md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def test_delete_objects_bad_input(daemon: Daemon, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="survivor", Body=b"still here")
    good = b"<Delete><Object><Key>survivor</Key></Object></Delete>"
    status, reply = _post_delete(daemon, bucket, good, {})
    assert (status, b"<Code>InvalidRequest</Code>" in reply) == (400, True)
    status, reply = _post_delete(daemon, bucket, good, {"Content-MD5": _md5(b"other")})
    assert (status, b"<Code>BadDigest</Code>" in reply) == (400, True)
    crc = base64.b64encode(zlib.crc32(b"other").to_bytes(4, "big")).decode()
    status, reply = _post_delete(daemon, bucket, good, {"x-amz-checksum-crc32": crc})
    assert (status, b"<Code>BadDigest</Code>" in reply) == (400, True)
    for bad in (
        b"<Delete><Object></Object></Delete>",
        b"<Delete>",
        b"not xml",
        b"<Delete></Delete>",
    ):
        status, reply = _post_delete(daemon, bucket, bad, {"Content-MD5": _md5(bad)})
        assert (status, b"<Code>MalformedXML</Code>" in reply) == (400, True), bad
    too_many = b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>"
    status, reply = _post_delete(daemon, bucket, too_many, {"Content-MD5": _md5(too_many)})
    assert (status, b"<Code>MalformedXML</Code>" in reply) == (400, True)
    assert s3.get_object(Bucket=bucket, Key="survivor")["Body"].read() == b"still here"


# --- listings ---------------------------------------------------------------------------------
def test_list_object_versions_lists_every_object_once_as_null(s3: Any) -> None:
    s3.create_bucket(Bucket="versions")
    keys = [f"v/{i:02d}" for i in range(7)] + ["w/x"]
    for key in keys:
        s3.put_object(Bucket="versions", Key=key, Body=key.encode())
    seen: list[str] = []
    kwargs: dict[str, Any] = {"Bucket": "versions", "MaxKeys": 3}
    while True:
        page = s3.list_object_versions(**kwargs)
        for version in page.get("Versions", []):
            assert (version["VersionId"], version["IsLatest"]) == ("null", True)
            seen.append(version["Key"])
        if not page["IsTruncated"]:
            break
        kwargs.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page["NextVersionIdMarker"])
    assert seen == keys
    grouped = s3.list_object_versions(Bucket="versions", Delimiter="/")
    assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["v/", "w/"]
    s3.delete_object(Bucket="versions", Key="w/x", VersionId="null")
    assert "w/x" not in [v["Key"] for v in s3.list_object_versions(Bucket="versions")["Versions"]]
    with pytest.raises(ClientError) as bad_version:
        s3.get_object(Bucket="versions", Key="v/00", VersionId="3HL4kqtJlcpXroDTDmJ")
    assert error_of(bad_version) == ("InvalidArgument", 400)
    assert s3.get_object(Bucket="versions", Key="v/00", VersionId="null")["Body"].read() == b"v/00"


def test_list_buckets_paging_and_owner(s3: Any) -> None:
    for name in ("page-a1", "page-a2", "page-a3"):
        s3.create_bucket(Bucket=name)
    first = s3.list_buckets(MaxBuckets=2, Prefix="page-a")
    assert [b["Name"] for b in first["Buckets"]] == ["page-a1", "page-a2"]
    assert first["Owner"]["ID"]
    rest = s3.list_buckets(
        MaxBuckets=2, Prefix="page-a", ContinuationToken=first["ContinuationToken"]
    )
    assert [b["Name"] for b in rest["Buckets"]] == ["page-a3"]
    assert "ContinuationToken" not in rest
    # Every bucket is in the server's one region: named, and filtered on.
    assert {b["BucketRegion"] for b in first["Buckets"]} == {"us-east-1"}
    here = s3.list_buckets(Prefix="page-a", BucketRegion="us-east-1")["Buckets"]
    assert [b["Name"] for b in here] == ["page-a1", "page-a2", "page-a3"]
    assert s3.list_buckets(Prefix="page-a", BucketRegion="eu-west-1")["Buckets"] == []


def test_list_v1_next_marker_and_max_keys_zero(s3: Any) -> None:
    s3.create_bucket(Bucket="markers")
    for key in ("a", "b", "c"):
        s3.put_object(Bucket="markers", Key=key, Body=b"")
    page = s3.list_objects(Bucket="markers", MaxKeys=2)
    assert (page["IsTruncated"], page["NextMarker"]) == (True, "b")
    assert [o["Key"] for o in s3.list_objects(Bucket="markers", Marker="b")["Contents"]] == ["c"]
    empty = s3.list_objects_v2(Bucket="markers", MaxKeys=0)
    assert empty["KeyCount"] == 0
    assert "Contents" not in empty


def test_encoding_type_url_encodes_keys_only_when_asked(daemon: Daemon, s3: Any) -> None:
    s3.create_bucket(Bucket="encoding")
    s3.put_object(Bucket="encoding", Key="a+b c&<ü>", Body=b"")

    def raw(query: str) -> bytes:
        path = f"/encoding?{query}"
        conn = http.client.HTTPConnection("127.0.0.1", daemon.s3_port, timeout=10)
        conn.request("GET", path, headers=sign("GET", f"{daemon.endpoint}{path}"))
        body = conn.getresponse().read()
        conn.close()
        return body

    encoded = raw("list-type=2&encoding-type=url")
    assert b"<Key>a%2Bb%20c%26%3C%C3%BC%3E</Key>" in encoded
    assert b"<EncodingType>url</EncodingType>" in encoded
    plain = raw("list-type=2")
    assert "<Key>a+b c&amp;&lt;ü&gt;</Key>".encode() in plain
    assert b"EncodingType" not in plain
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="encoding")["Contents"]] == ["a+b c&<ü>"]


# --- bucket configurations we do not keep -------------------------------------------------------
ABSENT_CONFIGURATIONS = [
    ("get_bucket_tagging", "NoSuchTagSet"),
    ("get_bucket_cors", "NoSuchCORSConfiguration"),
    ("get_bucket_lifecycle_configuration", "NoSuchLifecycleConfiguration"),
    ("get_bucket_policy", "NoSuchBucketPolicy"),
    ("get_bucket_encryption", "ServerSideEncryptionConfigurationNotFoundError"),
    ("get_object_lock_configuration", "ObjectLockConfigurationNotFoundError"),
    ("get_bucket_website", "NoSuchWebsiteConfiguration"),
    ("get_bucket_replication", "ReplicationConfigurationNotFoundError"),
]


@pytest.mark.parametrize(("operation", "code"), ABSENT_CONFIGURATIONS)
def test_absent_configurations_answer_as_aws(
    s3: Any, bucket: str, operation: str, code: str
) -> None:
    with pytest.raises(ClientError) as raised:
        getattr(s3, operation)(Bucket=bucket)
    assert error_of(raised) == (code, 404)


def test_default_configurations(s3: Any, bucket: str) -> None:
    # New buckets are made as AWS makes them since April 2023: ACLs off, public access blocked.
    controls = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
    assert controls["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert set(block.values()) == {True} and len(block) == 4
    versioning = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in versioning
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL"]
    assert acl["Grants"][0]["Grantee"]["ID"] == acl["Owner"]["ID"]
    assert s3.get_bucket_logging(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_bucket_request_payment(Bucket=bucket)["Payer"] == "BucketOwner"
    with pytest.raises(ClientError) as no_bucket:
        s3.get_bucket_versioning(Bucket="no-such-bucket-here")
    assert error_of(no_bucket) == ("NoSuchBucket", 404)


@pytest.mark.parametrize(
    "call",
    [
        lambda s3, b: s3.delete_bucket_cors(Bucket=b),
        lambda s3, b: s3.delete_bucket_encryption(Bucket=b),
        lambda s3, b: s3.delete_bucket_website(Bucket=b),
    ],
)
def test_configuration_writes_are_not_implemented(s3: Any, bucket: str, call: Any) -> None:
    with pytest.raises(ClientError) as raised:
        call(s3, bucket)
    assert error_of(raised) == ("NotImplemented", 501)


def test_object_tagging_and_acl_reads(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="tagged", Body=b"x")
    assert s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"] == []
    assert (
        s3.get_object_acl(Bucket=bucket, Key="tagged")["Grants"][0]["Permission"] == "FULL_CONTROL"
    )
    with pytest.raises(ClientError) as missing:
        s3.get_object_tagging(Bucket=bucket, Key="untagged-missing")
    assert error_of(missing) == ("NoSuchKey", 404)


def test_canned_acls(s3: Any) -> None:
    s3.create_bucket(Bucket="acl-private", ACL="private")
    with pytest.raises(ClientError) as public:
        s3.create_bucket(Bucket="acl-public", ACL="public-read")
    assert error_of(public) == ("InvalidBucketAclWithObjectOwnership", 400)
    with pytest.raises(ClientError) as missing:
        s3.head_bucket(Bucket="acl-public")
    assert error_of(missing)[1] == 404


# --- reads --------------------------------------------------------------------------------------
def test_part_number_on_a_single_part_object(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="parts", Body=b"0123456789")
    part = s3.get_object(Bucket=bucket, Key="parts", PartNumber=1)
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == "bytes 0-9/10"
    assert part["Body"].read() == b"0123456789"
    head = s3.head_object(Bucket=bucket, Key="parts", PartNumber=1)
    assert (head["ResponseMetadata"]["HTTPStatusCode"], head["ContentLength"]) == (206, 10)
    with pytest.raises(ClientError) as beyond:
        s3.get_object(Bucket=bucket, Key="parts", PartNumber=2)
    assert error_of(beyond) == ("InvalidPartNumber", 416)


def test_response_overrides_and_stored_headers(s3: Any, bucket: str) -> None:
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    s3.put_object(
        Bucket=bucket,
        Key="headers",
        Body=b"x",
        ContentLanguage="de",
        ContentEncoding="identity",
        Expires=expires,
        CacheControl="no-store",
    )
    got = s3.get_object(Bucket=bucket, Key="headers")
    assert (got["ContentLanguage"], got["ContentEncoding"], got["CacheControl"]) == (
        "de",
        "identity",
        "no-store",
    )
    assert got["ResponseMetadata"]["HTTPHeaders"]["expires"] == "Tue, 01 Jan 2030 00:00:00 GMT"
    overridden = s3.get_object(
        Bucket=bucket,
        Key="headers",
        ResponseContentType="text/csv",
        ResponseContentDisposition="attachment",
        ResponseCacheControl="max-age=5",
    )
    assert overridden["ContentType"] == "text/csv"
    assert overridden["ContentDisposition"] == "attachment"
    assert overridden["CacheControl"] == "max-age=5"


def test_conditional_get_by_date(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="dated", Body=b"x")
    modified = s3.head_object(Bucket=bucket, Key="dated")["LastModified"]
    later, earlier = modified + timedelta(hours=1), modified - timedelta(hours=1)
    assert s3.get_object(Bucket=bucket, Key="dated", IfModifiedSince=earlier)["Body"].read() == b"x"
    with pytest.raises(ClientError) as not_modified:
        s3.get_object(Bucket=bucket, Key="dated", IfModifiedSince=later)
    assert error_of(not_modified) == ("304", 304)
    with pytest.raises(ClientError) as failed:
        s3.get_object(Bucket=bucket, Key="dated", IfUnmodifiedSince=earlier)
    assert error_of(failed) == ("PreconditionFailed", 412)


def test_key_too_long(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as raised:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert error_of(raised) == ("KeyTooLongError", 400)


@pytest.mark.parametrize(
    ("algorithm", "field"),
    [
        ("CRC32C", "ChecksumCRC32C"),
        ("CRC64NVME", "ChecksumCRC64NVME"),
        ("SHA1", "ChecksumSHA1"),
        ("SHA256", "ChecksumSHA256"),
    ],
)
def test_flexible_checksums_verified_stored_returned(
    s3: Any, bucket: str, algorithm: str, field: str
) -> None:
    body = b"flexible checksum body " * 100
    put = s3.put_object(
        Bucket=bucket, Key=f"sum-{algorithm}", Body=body, ChecksumAlgorithm=algorithm
    )
    got = s3.get_object(Bucket=bucket, Key=f"sum-{algorithm}", ChecksumMode="ENABLED")
    assert got["Body"].read() == body  # botocore validates the returned checksum itself
    assert got[field] == put[field]
    head = s3.head_object(Bucket=bucket, Key=f"sum-{algorithm}", ChecksumMode="ENABLED")
    assert head[field] == put[field]


@pytest.mark.parametrize(
    "extra",
    [
        {"ServerSideEncryption": "AES256"},
        {"StorageClass": "GLACIER"},
        {"WebsiteRedirectLocation": "/elsewhere"},
        {"TaggingDirective": "REPLACE", "Tagging": "k=" + "v" * 257},
    ],
)
def test_copy_refuses_features_it_would_not_honour(
    s3: Any, bucket: str, extra: dict[str, str]
) -> None:
    s3.put_object(Bucket=bucket, Key="plain-src", Body=b"x")
    with pytest.raises(ClientError) as raised:
        s3.copy_object(Bucket=bucket, Key="fancy", CopySource=f"{bucket}/plain-src", **extra)
    assert error_of(raised) in (("NotImplemented", 501), ("InvalidTag", 400))
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="fancy")


def test_tags_on_put_and_copy(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="tagged", Body=b"x", Tagging="a=1&b=2")
    assert s3.head_object(Bucket=bucket, Key="tagged")["TagCount"] == 2
    s3.copy_object(Bucket=bucket, Key="tagged-copy", CopySource=f"{bucket}/tagged")
    tags = s3.get_object_tagging(Bucket=bucket, Key="tagged-copy")["TagSet"]
    assert tags == [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]


def test_private_acl_and_standard_class_are_accepted(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="private-src", Body=b"x")
    s3.copy_object(
        Bucket=bucket,
        Key="private-copy",
        CopySource=f"{bucket}/private-src",
        ACL="bucket-owner-full-control",
        StorageClass="STANDARD",
    )
    assert s3.get_object(Bucket=bucket, Key="private-copy")["Body"].read() == b"x"


# --- hostile and damaged input (review findings) -------------------------------------------
def test_damaged_blob_cuts_the_connection_instead_of_sending_an_error_inside_the_body(
    daemon: Daemon, s3: Any, bucket: str
) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    s3.put_object(Bucket=bucket, Key="damaged", Body=body)
    sha = hashlib.sha256(body).hexdigest()
    blob = daemon.data_dir / "blobs" / sha[:2] / sha[2:4] / sha
    blob.write_bytes(body[:100])  # the disk lost the rest
    path = f"/{bucket}/damaged"
    conn = http.client.HTTPConnection("127.0.0.1", daemon.s3_port, timeout=10)
    conn.request("GET", path, headers=sign("GET", f"{daemon.endpoint}{path}"))
    response = conn.getresponse()
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead) as short:
        response.read()
    conn.close()
    assert short.value.partial == b""  # the damaged block is never sent, not even in part
    blob.write_bytes(body)  # repaired, for the store check of later tests


def test_unsigned_amz_headers_are_refused(daemon: Daemon, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="secret", Body=b"top secret")
    path = f"/{bucket}/public"
    headers = sign("PUT", f"{daemon.endpoint}{path}", headers={"Content-Length": "0"})
    headers["x-amz-copy-source"] = f"/{bucket}/secret"  # added after signing
    conn = http.client.HTTPConnection("127.0.0.1", daemon.s3_port, timeout=10)
    conn.request("PUT", path, body=b"", headers=headers)
    response = conn.getresponse()
    reply = response.read()
    conn.close()
    assert response.status == 403
    assert b"<Code>AccessDenied</Code>" in reply
    assert b"<HeadersNotSigned>x-amz-copy-source</HeadersNotSigned>" in reply
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="public")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"ACL": "public-read"}, ("AccessControlListNotSupported", 400)),
        ({"Tagging": "aws:reserved=b"}, ("InvalidTag", 400)),
        ({"StorageClass": "GLACIER"}, ("NotImplemented", 501)),
        ({"ServerSideEncryption": "AES256"}, ("NotImplemented", 501)),
    ],
)
def test_put_refuses_what_it_would_not_honour(
    s3: Any, bucket: str, extra: dict[str, str], expected: tuple[str, int]
) -> None:
    with pytest.raises(ClientError) as raised:
        s3.put_object(Bucket=bucket, Key="fancy-put", Body=b"x", **extra)
    assert error_of(raised) == expected
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="fancy-put")


def test_delete_objects_body_split_across_segments(daemon: Daemon, s3: Any, bucket: str) -> None:
    keys = [f"split/{i:04d}-{'x' * 40}" for i in range(800)]
    for key in keys[:3]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    body = (
        "<Delete>" + "".join(f"<Object><Key>{k}</Key></Object>" for k in keys) + "</Delete>"
    ).encode()
    path = f"/{bucket}?delete"
    headers = sign(
        "POST",
        f"{daemon.endpoint}{path}",
        headers={"Content-Length": str(len(body)), "Content-MD5": _md5(body)},
        payload_hash=hashlib.sha256(body).hexdigest(),
    )
    conn = http.client.HTTPConnection("127.0.0.1", daemon.s3_port, timeout=10)
    conn.putrequest("POST", path, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    conn.send(body[:1000])
    time.sleep(0.2)
    conn.send(body[1000:])
    response = conn.getresponse()
    reply = response.read()
    conn.close()
    assert response.status == 200, reply
    assert reply.count(b"<Deleted>") == 800
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="split/")


def test_response_override_cannot_inject_headers(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="override", Body=b"x")
    with pytest.raises(ClientError) as raised:
        s3.get_object(Bucket=bucket, Key="override", ResponseContentType="text/plain\r\nX-Evil: 1")
    assert error_of(raised) == ("InvalidArgument", 400)


def test_not_modified_still_describes_the_object(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="etagged", Body=b"x")
    with pytest.raises(ClientError) as raised:
        s3.get_object(Bucket=bucket, Key="etagged", IfNoneMatch=put["ETag"])
    headers = raised.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    assert headers["etag"] == put["ETag"]
    assert "last-modified" in headers
