"""Golden bytes of every XML document the S3 door sends (documents.py).

Each expected document is written out whole: a change to an element's name, its order or
when it is left out shows here as a diff, before any client sees it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from lightningstor.model import (
    ALL_USERS,
    READ,
    DefaultRetention,
    Grant,
    Owner,
    PublicAccessBlock,
    Retention,
    owner_acl,
)
from lightningstor_server.s3 import documents as d

HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
NS = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
T0 = 1_700_000_000_123_000_000  # 2023-11-14T22:13:20.123Z
DATE = "2023-11-14T22:13:20.123Z"
AKID = Owner("AKID", "AKID")
OWNER = "<ID>AKID</ID><DisplayName>AKID</DisplayName>"

CASES: list[tuple[str, d.Document, str]] = [
    (
        "ListAllMyBucketsResult",
        d.ListAllMyBucketsResult(
            buckets=[d.BucketEntry("photos", T0, "eu-west-1")],
            owner=AKID,
            continuation_token="tok",
            prefix="ph",
        ),
        f"<ListAllMyBucketsResult{NS}><Buckets><Bucket><Name>photos</Name>"
        f"<CreationDate>{DATE}</CreationDate><BucketRegion>eu-west-1</BucketRegion></Bucket>"
        f"</Buckets><Owner>{OWNER}</Owner>"
        "<ContinuationToken>tok</ContinuationToken><Prefix>ph</Prefix></ListAllMyBucketsResult>",
    ),
    (
        "LocationConstraint",
        d.LocationConstraint("eu-central-1"),
        f"<LocationConstraint{NS}>eu-central-1</LocationConstraint>",
    ),
    (
        "ListBucketResult v1",
        d.ListBucketResult(
            page=d.ListedPage(
                bucket="b",
                prefix="a&b",
                delimiter="/",
                max_keys=2,
                encoding_type=None,
                truncated=True,
                objects=[d.ListedObject("a&b/1", T0, "e1", 5)],
                common_prefixes=["a&b/d/"],
            ),
            marker="",
            next_marker="a&b/1",
            owner=AKID,
        ),
        f"<ListBucketResult{NS}><Name>b</Name><Prefix>a&amp;b</Prefix><Marker></Marker>"
        "<NextMarker>a&amp;b/1</NextMarker><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter>"
        "<IsTruncated>true</IsTruncated><Contents><Key>a&amp;b/1</Key>"
        f'<LastModified>{DATE}</LastModified><ETag>"e1"</ETag><Size>5</Size>'
        f"<Owner>{OWNER}</Owner><StorageClass>STANDARD</StorageClass></Contents>"
        "<CommonPrefixes><Prefix>a&amp;b/d/</Prefix></CommonPrefixes></ListBucketResult>",
    ),
    (
        "ListBucketResult v2",
        d.ListBucketResultV2(
            page=d.ListedPage(
                bucket="b",
                prefix="",
                delimiter=None,
                max_keys=1000,
                encoding_type="url",
                truncated=False,
                objects=[d.ListedObject("k%20", T0, "e2", 0)],
                common_prefixes=[],
            ),
            continuation_token="",
            next_continuation_token=None,
            start_after=None,
            owner=None,
        ),
        f"<ListBucketResult{NS}><Name>b</Name><Prefix></Prefix><MaxKeys>1000</MaxKeys>"
        "<EncodingType>url</EncodingType><KeyCount>1</KeyCount><IsTruncated>false</IsTruncated>"
        "<ContinuationToken></ContinuationToken><Contents><Key>k%20</Key>"
        f'<LastModified>{DATE}</LastModified><ETag>"e2"</ETag><Size>0</Size>'
        "<StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>",
    ),
    (
        "ListVersionsResult",
        d.ListVersionsResult(
            page=d.ListedPage(
                bucket="b",
                prefix="p",
                delimiter=None,
                max_keys=1,
                encoding_type=None,
                truncated=True,
                objects=[],
                common_prefixes=[],
            ),
            versions=[
                d.ListedVersion("p0", "v2", True, True, T0, "", 0),
                d.ListedVersion("p1", "null", True, False, T0, "e3", 7),
            ],
            key_marker="",
            version_id_marker="",
            next_key_marker="p1",
            next_version_id_marker="null",
            owner=AKID,
        ),
        f"<ListVersionsResult{NS}><Name>b</Name><Prefix>p</Prefix><KeyMarker></KeyMarker>"
        "<VersionIdMarker></VersionIdMarker><NextKeyMarker>p1</NextKeyMarker>"
        "<NextVersionIdMarker>null</NextVersionIdMarker><MaxKeys>1</MaxKeys>"
        "<IsTruncated>true</IsTruncated><DeleteMarker><Key>p0</Key><VersionId>v2</VersionId>"
        f"<IsLatest>true</IsLatest><LastModified>{DATE}</LastModified><Owner>{OWNER}</Owner>"
        "</DeleteMarker><Version><Key>p1</Key><VersionId>null</VersionId>"
        f'<IsLatest>true</IsLatest><LastModified>{DATE}</LastModified><ETag>"e3"</ETag>'
        f"<Size>7</Size><Owner>{OWNER}</Owner><StorageClass>STANDARD</StorageClass></Version>"
        "</ListVersionsResult>",
    ),
    (
        "CopyObjectResult",
        d.CopyResult("CopyObjectResult", T0, "e4", {"crc32": "AAAAAA=="}),
        f'<CopyObjectResult{NS}><LastModified>{DATE}</LastModified><ETag>"e4"</ETag>'
        "<ChecksumCRC32>AAAAAA==</ChecksumCRC32></CopyObjectResult>",
    ),
    (
        "CopyPartResult",
        d.CopyResult("CopyPartResult", T0, "e5"),
        f'<CopyPartResult{NS}><LastModified>{DATE}</LastModified><ETag>"e5"</ETag>'
        "</CopyPartResult>",
    ),
    (
        "PostResponse",
        d.PostResponse("b", "up/a.txt", "e6"),
        "<PostResponse><Location>/b/up/a.txt</Location><Bucket>b</Bucket>"
        '<Key>up/a.txt</Key><ETag>"e6"</ETag></PostResponse>',
    ),
    (
        "DeleteResult",
        d.DeleteResult(
            [
                d.DeleteOutcome("gone"),
                d.DeleteOutcome("v", "null"),
                d.DeleteOutcome("x", "v9", code="NoSuchVersion", message="No such version."),
                d.DeleteOutcome("y", code="AccessDenied", message="Access Denied"),
            ]
        ),
        f"<DeleteResult{NS}><Deleted><Key>gone</Key></Deleted>"
        "<Deleted><Key>v</Key><VersionId>null</VersionId></Deleted>"
        "<Error><Key>x</Key><VersionId>v9</VersionId><Code>NoSuchVersion</Code>"
        "<Message>No such version.</Message></Error>"
        "<Error><Key>y</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        "</DeleteResult>",
    ),
    (
        "InitiateMultipartUploadResult",
        d.InitiateMultipartUploadResult("b", "k", "u-1"),
        f"<InitiateMultipartUploadResult{NS}><Bucket>b</Bucket><Key>k</Key>"
        "<UploadId>u-1</UploadId></InitiateMultipartUploadResult>",
    ),
    (
        "CompleteMultipartUploadResult",
        d.CompleteMultipartUploadResult(
            bucket="b",
            key="k",
            etag="abc-2",
            checksums={"crc32c": "AAAAAA==-2"},
            checksum_type="COMPOSITE",
        ),
        f"<CompleteMultipartUploadResult{NS}><Location>/b/k</Location><Bucket>b</Bucket>"
        '<Key>k</Key><ETag>"abc-2"</ETag><ChecksumCRC32C>AAAAAA==-2</ChecksumCRC32C>'
        "<ChecksumType>COMPOSITE</ChecksumType></CompleteMultipartUploadResult>",
    ),
    (
        "ListPartsResult",
        d.ListPartsResult(
            bucket="b",
            key="k",
            upload_id="u-1",
            owner=AKID,
            part_number_marker=0,
            max_parts=1000,
            truncated=False,
            checksum_algorithm="CRC32",
            checksum_type="FULL_OBJECT",
            parts=[d.ListedPart(1, T0, "p1", 5, {"crc32": "AAAAAA=="})],
        ),
        f"<ListPartsResult{NS}><Bucket>b</Bucket><Key>k</Key><UploadId>u-1</UploadId>"
        f"<Initiator>{OWNER}</Initiator><Owner>{OWNER}</Owner>"
        "<StorageClass>STANDARD</StorageClass><PartNumberMarker>0</PartNumberMarker>"
        "<NextPartNumberMarker>1</NextPartNumberMarker><MaxParts>1000</MaxParts>"
        "<IsTruncated>false</IsTruncated><ChecksumAlgorithm>CRC32</ChecksumAlgorithm>"
        "<ChecksumType>FULL_OBJECT</ChecksumType><Part><PartNumber>1</PartNumber>"
        f'<LastModified>{DATE}</LastModified><ETag>"p1"</ETag><Size>5</Size>'
        "<ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part></ListPartsResult>",
    ),
    (
        "ListMultipartUploadsResult",
        d.ListMultipartUploadsResult(
            bucket="b",
            owner=AKID,
            key_marker="",
            upload_id_marker="",
            prefix="",
            max_uploads=1,
            truncated=True,
            uploads=[d.ListedUpload("k", "u-1", T0, AKID)],
        ),
        f"<ListMultipartUploadsResult{NS}><Bucket>b</Bucket><KeyMarker></KeyMarker>"
        "<UploadIdMarker></UploadIdMarker><NextKeyMarker>k</NextKeyMarker>"
        "<NextUploadIdMarker>u-1</NextUploadIdMarker><Prefix></Prefix>"
        "<MaxUploads>1</MaxUploads><IsTruncated>true</IsTruncated><Upload><Key>k</Key>"
        f"<UploadId>u-1</UploadId><Initiator>{OWNER}</Initiator><Owner>{OWNER}</Owner>"
        f"<StorageClass>STANDARD</StorageClass><Initiated>{DATE}</Initiated></Upload>"
        "</ListMultipartUploadsResult>",
    ),
    (
        "GetObjectAttributesResponse",
        d.GetObjectAttributesResponse(
            etag="abc-2",
            checksums={"sha256": "c2hh"},
            checksum_type="COMPOSITE",
            parts=d.ObjectParts(
                parts_count=2,
                part_number_marker=1,
                next_part_number_marker=2,
                max_parts=1,
                truncated=False,
                parts=[(2, 10, {"sha256": "cGFydA=="})],
            ),
            storage_class="STANDARD",
            size=15,
        ),
        f"<GetObjectAttributesResponse{NS}><ETag>abc-2</ETag><Checksum>"
        "<ChecksumSHA256>c2hh</ChecksumSHA256><ChecksumType>COMPOSITE</ChecksumType>"
        "</Checksum><ObjectParts><PartsCount>2</PartsCount><PartNumberMarker>1"
        "</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker>"
        "<MaxParts>1</MaxParts><IsTruncated>false</IsTruncated><Part><PartNumber>2"
        "</PartNumber><Size>10</Size><ChecksumSHA256>cGFydA==</ChecksumSHA256></Part>"
        "</ObjectParts><StorageClass>STANDARD</StorageClass><ObjectSize>15</ObjectSize>"
        "</GetObjectAttributesResponse>",
    ),
    (
        "GetObjectAttributesResponse, size only",
        d.GetObjectAttributesResponse(size=0),
        f"<GetObjectAttributesResponse{NS}><ObjectSize>0</ObjectSize>"
        "</GetObjectAttributesResponse>",
    ),
    (
        "AccessControlPolicy",
        d.AccessControlPolicy(AKID, (*owner_acl(AKID), Grant(permission=READ, group=ALL_USERS))),
        f"<AccessControlPolicy{NS}><Owner>{OWNER}</Owner><AccessControlList><Grant>"
        '<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:type="CanonicalUser">{OWNER}</Grantee><Permission>FULL_CONTROL</Permission>'
        '</Grant><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>'
        "<Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>",
    ),
    (
        "PolicyStatus",
        d.PolicyStatus(is_public=True),
        f"<PolicyStatus{NS}><IsPublic>true</IsPublic></PolicyStatus>",
    ),
    (
        "PublicAccessBlockConfiguration",
        d.PublicAccessBlockConfiguration(PublicAccessBlock(block_public_acls=True)),
        f"<PublicAccessBlockConfiguration{NS}><BlockPublicAcls>true</BlockPublicAcls>"
        "<IgnorePublicAcls>false</IgnorePublicAcls><BlockPublicPolicy>false</BlockPublicPolicy>"
        "<RestrictPublicBuckets>false</RestrictPublicBuckets></PublicAccessBlockConfiguration>",
    ),
    (
        "OwnershipControls",
        d.OwnershipControls("ObjectWriter"),
        f"<OwnershipControls{NS}><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule>"
        "</OwnershipControls>",
    ),
    (
        "VersioningConfiguration",
        d.EmptyConfiguration("VersioningConfiguration"),
        f"<VersioningConfiguration{NS}></VersioningConfiguration>",
    ),
    (
        "VersioningConfiguration never set",
        d.VersioningConfiguration(""),
        f"<VersioningConfiguration{NS}></VersioningConfiguration>",
    ),
    (
        "VersioningConfiguration",
        d.VersioningConfiguration("Suspended"),
        f"<VersioningConfiguration{NS}><Status>Suspended</Status></VersioningConfiguration>",
    ),
    (
        "ObjectLockConfiguration without a rule",
        d.ObjectLockConfiguration(None),
        f"<ObjectLockConfiguration{NS}><ObjectLockEnabled>Enabled</ObjectLockEnabled>"
        "</ObjectLockConfiguration>",
    ),
    (
        "ObjectLockConfiguration",
        d.ObjectLockConfiguration(DefaultRetention(mode="GOVERNANCE", years=2)),
        f"<ObjectLockConfiguration{NS}><ObjectLockEnabled>Enabled</ObjectLockEnabled>"
        "<Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Years>2</Years></DefaultRetention>"
        "</Rule></ObjectLockConfiguration>",
    ),
    (
        "Retention",
        d.RetentionDocument(Retention(mode="COMPLIANCE", until_ns=T0)),
        f"<Retention{NS}><Mode>COMPLIANCE</Mode><RetainUntilDate>{DATE}</RetainUntilDate>"
        "</Retention>",
    ),
    ("LegalHold", d.LegalHoldDocument(True), f"<LegalHold{NS}><Status>ON</Status></LegalHold>"),
    (
        "RequestPaymentConfiguration",
        d.EmptyConfiguration("RequestPaymentConfiguration", (("Payer", "BucketOwner"),)),
        f"<RequestPaymentConfiguration{NS}><Payer>BucketOwner</Payer>"
        "</RequestPaymentConfiguration>",
    ),
    ("Tagging", d.Tagging(), f"<Tagging{NS}><TagSet></TagSet></Tagging>"),
    (
        "Error",
        d.ErrorDocument(
            code="NoSuchKey",
            message="The specified key does not exist.",
            resource="/b/a<b",
            request_id="0123456789ABCDEF",
            extra={"Key": "a<b"},
        ),
        "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>"
        "<Resource>/b/a&lt;b</Resource><RequestId>0123456789ABCDEF</RequestId>"
        "<Key>a&lt;b</Key></Error>",
    ),
    (
        "Error without a resource",
        d.ErrorDocument(code="SlowDown", message="Reduce.", resource="", request_id="R"),
        "<Error><Code>SlowDown</Code><Message>Reduce.</Message><RequestId>R</RequestId></Error>",
    ),
]


@pytest.mark.parametrize(("name", "doc", "body"), CASES, ids=[c[0] for c in CASES])
def test_document_bytes(name: str, doc: d.Document, body: str) -> None:
    rendered = doc.render()
    assert rendered == (HEAD + body).encode()
    ET.fromstring(rendered)  # every golden document parses


def test_every_document_type_has_a_golden_case() -> None:
    rendered_types = {type(doc) for _, doc, _ in CASES}
    documents = {
        cls
        for cls in vars(d).values()
        if isinstance(cls, type) and cls.__module__ == d.__name__ and hasattr(cls, "render")
    }
    # Entries rendered inside a document are covered by that document's case.
    parts = {d.Document, d.DeleteOutcome, d.ObjectParts}
    assert documents - parts - rendered_types == set()
