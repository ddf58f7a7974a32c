"""Every XML document the S3 door sends, as a typed value, and how each is rendered.

A handler decides what a document says (which marker, whether a key is URL-encoded, who the
owner is) and builds one of these; the element names, their order and which are left out
when empty live here, once. ``tests/s3/test_documents.py`` holds golden bytes of each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from xml.sax.saxutils import escape

from aiohttp import web

from lightningstor.model import (
    Acl,
    DefaultRetention,
    Owner,
    PublicAccessBlock,
    Retention,
)
from lightningstor_server.s3.headers import iso_date
from lightningstor_server.s3.xml import checksum_elements, document, element, group


class Document(Protocol):
    def render(self) -> bytes: ...


def xml_response(
    doc: Document, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status, body=doc.render(), content_type="application/xml", headers=headers
    )


def _owner(name: str, owner: Owner) -> str:
    return group(name, [element("ID", owner.id), element("DisplayName", owner.name)])


def _etag(etag: str) -> str:
    return element("ETag", f'"{etag}"')


# --- buckets ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BucketEntry:
    name: str
    created_ns: int
    region: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ListAllMyBucketsResult:
    buckets: Sequence[BucketEntry]
    owner: Owner
    continuation_token: str | None
    prefix: str | None  # echoed only when the request gave one

    def render(self) -> bytes:
        entries = (
            group(
                "Bucket",
                [
                    element("Name", b.name),
                    element("CreationDate", iso_date(b.created_ns)),
                    element("BucketRegion", b.region),
                ],
            )
            for b in self.buckets
        )
        return document(
            "ListAllMyBucketsResult",
            [
                group("Buckets", entries),
                _owner("Owner", self.owner),
                element("ContinuationToken", self.continuation_token),
                element("Prefix", self.prefix),
            ],
        )


@dataclass(frozen=True, slots=True)
class LocationConstraint:
    region: str  # "" for us-east-1, as AWS answers

    def render(self) -> bytes:
        return document("LocationConstraint", [escape(self.region)])


# --- object listings -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ListedObject:
    """One Contents (or Version) entry, its key already encoded as the request asked."""

    key: str
    mtime_ns: int
    etag: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ListedPage:
    """What every listing shares; keys and prefixes already encoded as asked."""

    bucket: str
    prefix: str
    delimiter: str | None
    max_keys: int
    encoding_type: str | None
    truncated: bool
    objects: Sequence[ListedObject]
    common_prefixes: Sequence[str]

    def contents(self, owner: Owner | None) -> list[str]:
        owner_xml = _owner("Owner", owner) if owner is not None else ""
        items = [
            group(
                "Contents",
                [
                    element("Key", o.key),
                    element("LastModified", iso_date(o.mtime_ns)),
                    _etag(o.etag),
                    element("Size", o.size),
                    owner_xml,
                    element("StorageClass", "STANDARD"),
                ],
            )
            for o in self.objects
        ]
        return items + self.prefixes()

    def prefixes(self) -> list[str]:
        return [group("CommonPrefixes", [element("Prefix", p)]) for p in self.common_prefixes]


@dataclass(frozen=True, slots=True, kw_only=True)
class ListBucketResult:
    """ListObjects (v1). Its Prefix is never URL-encoded, whatever encoding-type says."""

    page: ListedPage
    marker: str
    next_marker: str | None
    owner: Owner

    def render(self) -> bytes:
        return document(
            "ListBucketResult",
            [
                element("Name", self.page.bucket),
                element("Prefix", self.page.prefix),
                element("Marker", self.marker),
                element("NextMarker", self.next_marker),
                element("MaxKeys", self.page.max_keys),
                element("Delimiter", self.page.delimiter),
                element("EncodingType", self.page.encoding_type),
                element("IsTruncated", self.page.truncated),
                *self.page.contents(self.owner),
            ],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ListBucketResultV2:
    page: ListedPage
    continuation_token: str | None
    next_continuation_token: str | None
    start_after: str | None
    owner: Owner | None  # only with fetch-owner=true

    def render(self) -> bytes:
        return document(
            "ListBucketResult",
            [
                element("Name", self.page.bucket),
                element("Prefix", self.page.prefix),
                element("Delimiter", self.page.delimiter),
                element("MaxKeys", self.page.max_keys),
                element("EncodingType", self.page.encoding_type),
                element("KeyCount", len(self.page.objects) + len(self.page.common_prefixes)),
                element("IsTruncated", self.page.truncated),
                element("ContinuationToken", self.continuation_token),
                element("NextContinuationToken", self.next_continuation_token),
                element("StartAfter", self.start_after),
                *self.page.contents(self.owner),
            ],
        )


@dataclass(frozen=True, slots=True)
class ListedVersion:
    """One Version or DeleteMarker entry, its key already encoded as the request asked."""

    key: str
    version_id: str
    latest: bool
    delete_marker: bool
    mtime_ns: int
    etag: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ListVersionsResult:
    """ListObjectVersions: versions and delete markers in the order listed (S3 interleaves
    them by key and age, and SDKs keep each kind's order)."""

    page: ListedPage
    versions: Sequence[ListedVersion]
    key_marker: str
    version_id_marker: str
    next_key_marker: str | None
    next_version_id_marker: str | None
    owner: Owner

    @staticmethod
    def _version(v: ListedVersion, owner: str) -> str:
        # A page holds up to 1,000 entries: only the key is text from outside; the version
        # id, ETag, size and date are the store's own (hex, digits), so they skip escaping.
        common = (
            f"{element('Key', v.key)}<VersionId>{v.version_id}</VersionId>"
            f"<IsLatest>{'true' if v.latest else 'false'}</IsLatest>"
            f"<LastModified>{iso_date(v.mtime_ns)}</LastModified>"
        )
        if v.delete_marker:
            return f"<DeleteMarker>{common}{owner}</DeleteMarker>"
        return (
            f'<Version>{common}<ETag>"{v.etag}"</ETag><Size>{v.size}</Size>{owner}'
            "<StorageClass>STANDARD</StorageClass></Version>"
        )

    def render(self) -> bytes:
        owner = _owner("Owner", self.owner)
        return document(
            "ListVersionsResult",
            [
                element("Name", self.page.bucket),
                element("Prefix", self.page.prefix),
                element("KeyMarker", self.key_marker),
                element("VersionIdMarker", self.version_id_marker),
                element("NextKeyMarker", self.next_key_marker),
                element("NextVersionIdMarker", self.next_version_id_marker),
                element("MaxKeys", self.page.max_keys),
                element("Delimiter", self.page.delimiter),
                element("EncodingType", self.page.encoding_type),
                element("IsTruncated", self.page.truncated),
                *(self._version(v, owner) for v in self.versions),
                *self.page.prefixes(),
            ],
        )


# --- writes ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CopyResult:
    """CopyObjectResult or CopyPartResult (``root``)."""

    root: str
    mtime_ns: int
    etag: str
    checksums: Mapping[str, str] = field(default_factory=dict)

    def render(self) -> bytes:
        return document(
            self.root,
            [
                element("LastModified", iso_date(self.mtime_ns)),
                _etag(self.etag),
                *checksum_elements(self.checksums),
            ],
        )


@dataclass(frozen=True, slots=True)
class PostResponse:
    """A browser form upload's answer for success_action_status=201 (no namespace, as S3)."""

    bucket: str
    key: str
    etag: str

    def render(self) -> bytes:
        return document(
            "PostResponse",
            [
                element("Location", f"/{self.bucket}/{self.key}"),
                element("Bucket", self.bucket),
                element("Key", self.key),
                _etag(self.etag),
            ],
            namespace=False,
        )


@dataclass(frozen=True, slots=True)
class DeleteOutcome:
    """One entry of a DeleteResult: Deleted when ``code`` is empty, else an Error."""

    key: str
    version_id: str | None = None
    code: str = ""
    message: str = ""
    # A delete marker was made (or removed, when ``version_id`` named one): its version id.
    delete_marker_version_id: str | None = None

    def render(self) -> str:
        if not self.code:
            marker = self.delete_marker_version_id
            return group(
                "Deleted",
                [
                    element("Key", self.key),
                    element("VersionId", self.version_id),
                    element("DeleteMarker", True if marker else None),
                    element("DeleteMarkerVersionId", marker),
                ],
            )
        return group(
            "Error",
            [
                element("Key", self.key),
                element("VersionId", self.version_id),
                element("Code", self.code),
                element("Message", self.message),
            ],
        )


@dataclass(frozen=True, slots=True)
class DeleteResult:
    outcomes: Sequence[DeleteOutcome]

    def render(self) -> bytes:
        return document("DeleteResult", [o.render() for o in self.outcomes])


# --- multipart -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class InitiateMultipartUploadResult:
    bucket: str
    key: str
    upload_id: str

    def render(self) -> bytes:
        return document(
            "InitiateMultipartUploadResult",
            [
                element("Bucket", self.bucket),
                element("Key", self.key),
                element("UploadId", self.upload_id),
            ],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteMultipartUploadResult:
    bucket: str
    key: str
    etag: str
    checksums: Mapping[str, str]
    checksum_type: str | None

    def render(self) -> bytes:
        return document(
            "CompleteMultipartUploadResult",
            [
                element("Location", f"/{self.bucket}/{self.key}"),
                element("Bucket", self.bucket),
                element("Key", self.key),
                _etag(self.etag),
                *checksum_elements(self.checksums),
                element("ChecksumType", self.checksum_type),
            ],
        )


@dataclass(frozen=True, slots=True)
class ListedPart:
    number: int
    mtime_ns: int
    etag: str
    size: int
    checksums: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ListPartsResult:
    bucket: str
    key: str
    upload_id: str
    owner: Owner
    part_number_marker: int
    max_parts: int
    truncated: bool
    checksum_algorithm: str | None
    checksum_type: str | None
    parts: Sequence[ListedPart]

    def render(self) -> bytes:
        entries = [
            group(
                "Part",
                [
                    element("PartNumber", p.number),
                    element("LastModified", iso_date(p.mtime_ns)),
                    _etag(p.etag),
                    element("Size", p.size),
                    *checksum_elements(p.checksums),
                ],
            )
            for p in self.parts
        ]
        next_marker = self.parts[-1].number if self.parts else self.part_number_marker
        return document(
            "ListPartsResult",
            [
                element("Bucket", self.bucket),
                element("Key", self.key),
                element("UploadId", self.upload_id),
                _owner("Initiator", self.owner),
                _owner("Owner", self.owner),
                element("StorageClass", "STANDARD"),
                element("PartNumberMarker", self.part_number_marker),
                element("NextPartNumberMarker", next_marker),
                element("MaxParts", self.max_parts),
                element("IsTruncated", self.truncated),
                element("ChecksumAlgorithm", self.checksum_algorithm),
                element("ChecksumType", self.checksum_type),
                *entries,
            ],
        )


@dataclass(frozen=True, slots=True)
class ListedUpload:
    key: str
    upload_id: str
    created_ns: int
    owner: Owner  # who initiated it (and so owns what it completes into)


@dataclass(frozen=True, slots=True, kw_only=True)
class ListMultipartUploadsResult:
    bucket: str
    owner: Owner
    key_marker: str
    upload_id_marker: str
    prefix: str
    max_uploads: int
    truncated: bool
    uploads: Sequence[ListedUpload]

    def render(self) -> bytes:
        entries = [
            group(
                "Upload",
                [
                    element("Key", u.key),
                    element("UploadId", u.upload_id),
                    _owner("Initiator", u.owner),
                    _owner("Owner", u.owner),
                    element("StorageClass", "STANDARD"),
                    element("Initiated", iso_date(u.created_ns)),
                ],
            )
            for u in self.uploads
        ]
        last = self.uploads[-1] if self.truncated and self.uploads else None
        return document(
            "ListMultipartUploadsResult",
            [
                element("Bucket", self.bucket),
                element("KeyMarker", self.key_marker),
                element("UploadIdMarker", self.upload_id_marker),
                element("NextKeyMarker", last.key if last else None),
                element("NextUploadIdMarker", last.upload_id if last else None),
                element("Prefix", self.prefix),
                element("MaxUploads", self.max_uploads),
                element("IsTruncated", self.truncated),
                *entries,
            ],
        )


# --- object attributes -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectParts:
    parts_count: int
    part_number_marker: int
    next_part_number_marker: int
    max_parts: int
    truncated: bool
    parts: Sequence[tuple[int, int, Mapping[str, str]]]  # number, size, checksums

    def render(self) -> str:
        return group(
            "ObjectParts",
            [
                element("PartsCount", self.parts_count),
                element("PartNumberMarker", self.part_number_marker),
                element("NextPartNumberMarker", self.next_part_number_marker),
                element("MaxParts", self.max_parts),
                element("IsTruncated", self.truncated),
                *(
                    group(
                        "Part",
                        [element("PartNumber", n), element("Size", size), *checksum_elements(sums)],
                    )
                    for n, size, sums in self.parts
                ),
            ],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class GetObjectAttributesResponse:
    """Only the attributes asked for are present (None: not asked)."""

    etag: str | None = None
    checksums: Mapping[str, str] | None = None
    checksum_type: str | None = None
    parts: ObjectParts | None = None
    storage_class: str | None = None
    size: int | None = None

    def render(self) -> bytes:
        checksum = (
            group(
                "Checksum",
                [*checksum_elements(self.checksums), element("ChecksumType", self.checksum_type)],
            )
            if self.checksums
            else ""
        )
        return document(
            "GetObjectAttributesResponse",
            [
                element("ETag", self.etag),
                checksum,
                self.parts.render() if self.parts else "",
                element("StorageClass", self.storage_class),
                element("ObjectSize", self.size),
            ],
        )


# --- configurations --------------------------------------------------------------------------
_XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


@dataclass(frozen=True, slots=True)
class AccessControlPolicy:
    """A bucket's or an object's ACL: its owner and its grants."""

    owner: Owner
    grants: Acl

    def render(self) -> bytes:
        entries = [
            group("Grant", [_grantee(g.user, g.group), element("Permission", g.permission)])
            for g in self.grants
        ]
        return document(
            "AccessControlPolicy",
            [_owner("Owner", self.owner), group("AccessControlList", entries)],
        )


def _grantee(user: Owner | None, group_uri: str) -> str:
    if user is not None:
        inner = element("ID", user.id) + element("DisplayName", user.name)
        return f'<Grantee {_XSI} xsi:type="CanonicalUser">{inner}</Grantee>'
    return f'<Grantee {_XSI} xsi:type="Group">{element("URI", group_uri)}</Grantee>'


@dataclass(frozen=True, slots=True)
class PolicyStatus:
    is_public: bool

    def render(self) -> bytes:
        return document("PolicyStatus", [element("IsPublic", self.is_public)])


@dataclass(frozen=True, slots=True)
class PublicAccessBlockConfiguration:
    block: PublicAccessBlock

    def render(self) -> bytes:
        b = self.block
        return document(
            "PublicAccessBlockConfiguration",
            [
                element("BlockPublicAcls", b.block_public_acls),
                element("IgnorePublicAcls", b.ignore_public_acls),
                element("BlockPublicPolicy", b.block_public_policy),
                element("RestrictPublicBuckets", b.restrict_public_buckets),
            ],
        )


@dataclass(frozen=True, slots=True)
class OwnershipControls:
    ownership: str

    def render(self) -> bytes:
        rule = group("Rule", [element("ObjectOwnership", self.ownership)])
        return document("OwnershipControls", [rule])


@dataclass(frozen=True, slots=True)
class EmptyConfiguration:
    """A configuration no bucket here has set, as AWS answers it for such a bucket:
    an empty root, or the fixed ``fields`` (element, text) it always carries."""

    root: str
    fields: tuple[tuple[str, str], ...] = ()

    def render(self) -> bytes:
        return document(self.root, [element(name, text) for name, text in self.fields])


@dataclass(frozen=True, slots=True)
class VersioningConfiguration:
    status: str  # "" for a bucket that never had versioning: then no Status at all

    def render(self) -> bytes:
        return document("VersioningConfiguration", [element("Status", self.status or None)])


@dataclass(frozen=True, slots=True)
class ObjectLockConfiguration:
    default: DefaultRetention | None

    def render(self) -> bytes:
        rule = []
        if self.default is not None:
            period = (
                element("Days", self.default.days)
                if self.default.days
                else element("Years", self.default.years)
            )
            rule = [
                group(
                    "Rule",
                    [group("DefaultRetention", [element("Mode", self.default.mode), period])],
                )
            ]
        return document("ObjectLockConfiguration", [element("ObjectLockEnabled", "Enabled"), *rule])


@dataclass(frozen=True, slots=True)
class RetentionDocument:
    retention: Retention

    def render(self) -> bytes:
        return document(
            "Retention",
            [
                element("Mode", self.retention.mode),
                element("RetainUntilDate", iso_date(self.retention.until_ns)),
            ],
        )


@dataclass(frozen=True, slots=True)
class LegalHoldDocument:
    on: bool

    def render(self) -> bytes:
        return document("LegalHold", [element("Status", "ON" if self.on else "OFF")])


@dataclass(frozen=True, slots=True)
class Tagging:
    """An object's or a bucket's tag set, by key (as S3 lists it, whatever order it was set
    in)."""

    tags: Mapping[str, str] = field(default_factory=dict)

    def render(self) -> bytes:
        entries = (
            group("Tag", [element("Key", key), element("Value", value)])
            for key, value in sorted(self.tags.items())
        )
        return document("Tagging", [group("TagSet", entries)])


# --- errors ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorDocument:
    """S3's Error (no namespace, as S3 sends it)."""

    code: str
    message: str
    resource: str
    request_id: str
    extra: Mapping[str, str] = field(default_factory=dict)

    def render(self) -> bytes:
        return document(
            "Error",
            [
                element("Code", self.code),
                element("Message", self.message),
                element("Resource", self.resource or None),
                element("RequestId", self.request_id),
                *(element(name, value) for name, value in self.extra.items()),
            ],
            namespace=False,
        )
