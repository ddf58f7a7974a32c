"""The vocabulary of bucket policies: the S3 actions and the condition keys a policy may name
(IAM's "Actions, resources, and condition keys for Amazon S3" and "AWS global condition
context keys"). A policy naming anything else is refused (policy.py)."""

from __future__ import annotations

from collections.abc import Sequence


def words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_OBJECT_ACTIONS = words("""
    AbortMultipartUpload BypassGovernanceRetention DeleteObject DeleteObjectTagging
    DeleteObjectVersion DeleteObjectVersionTagging GetObject GetObjectAcl GetObjectAttributes
    GetObjectLegalHold GetObjectRetention GetObjectTagging GetObjectTorrent GetObjectVersion
    GetObjectVersionAcl GetObjectVersionAttributes GetObjectVersionTagging
    GetObjectVersionTorrent ListMultipartUploadParts ObjectOwnerOverrideToBucketOwner PutObject
    PutObjectAcl PutObjectLegalHold PutObjectRetention PutObjectTagging PutObjectVersionAcl
    PutObjectVersionTagging ReplicateDelete ReplicateObject ReplicateTags RestoreObject
""")
_BUCKET_ACTIONS = words("""
    CreateBucket DeleteBucket DeleteBucketOwnershipControls DeleteBucketPolicy
    DeleteBucketWebsite GetAccelerateConfiguration GetAnalyticsConfiguration GetBucketAcl
    GetBucketCORS GetBucketLocation GetBucketLogging GetBucketNotification
    GetBucketObjectLockConfiguration GetBucketOwnershipControls GetBucketPolicy
    GetBucketPolicyStatus GetBucketPublicAccessBlock GetBucketRequestPayment GetBucketTagging
    GetBucketVersioning GetBucketWebsite GetEncryptionConfiguration
    GetIntelligentTieringConfiguration GetInventoryConfiguration GetLifecycleConfiguration
    GetMetricsConfiguration GetReplicationConfiguration ListBucket ListBucketMultipartUploads
    ListBucketVersions PutAccelerateConfiguration PutAnalyticsConfiguration PutBucketAcl
    PutBucketCORS PutBucketLogging PutBucketNotification PutBucketObjectLockConfiguration
    PutBucketOwnershipControls PutBucketPolicy PutBucketPublicAccessBlock
    PutBucketRequestPayment PutBucketTagging PutBucketVersioning PutBucketWebsite
    PutEncryptionConfiguration PutIntelligentTieringConfiguration PutInventoryConfiguration
    PutLifecycleConfiguration PutMetricsConfiguration PutReplicationConfiguration
""")
# Service- and account-level actions name no bucket or object; AWS wants Resource "*" for
# them, we accept any resource rather than guess which ARN a client meant.
_ANY_RESOURCE_ACTIONS = words("""
    GetAccountPublicAccessBlock ListAccessPoints ListAllMyBuckets PutAccountPublicAccessBlock
""")


def _s3(names: Sequence[str]) -> frozenset[str]:
    return frozenset(f"s3:{name.lower()}" for name in names)


OBJECT_LEVEL = _s3(_OBJECT_ACTIONS)
ANY_LEVEL = _s3(_ANY_RESOURCE_ACTIONS)
S3_ACTIONS: frozenset[str] = OBJECT_LEVEL | _s3(_BUCKET_ACTIONS) | ANY_LEVEL

CONDITION_KEYS = frozenset(
    key.lower()
    for key in words("""
    aws:SourceIp aws:SecureTransport aws:CurrentTime aws:EpochTime aws:UserAgent aws:Referer
    aws:userid aws:username aws:PrincipalType aws:PrincipalAccount aws:SourceVpce aws:SourceVpc
    aws:RequestedRegion aws:TokenIssueTime aws:MultiFactorAuthPresent aws:MultiFactorAuthAge
    aws:PrincipalArn aws:TagKeys aws:ViaAWSService aws:CalledVia aws:PrincipalOrgID
    aws:SourceArn aws:SourceOwner aws:SourceAccount
    s3:prefix s3:delimiter s3:max-keys s3:x-amz-acl s3:x-amz-grant-read s3:x-amz-grant-write
    s3:x-amz-grant-read-acp s3:x-amz-grant-write-acp s3:x-amz-grant-full-control
    s3:x-amz-copy-source s3:x-amz-metadata-directive s3:x-amz-server-side-encryption
    s3:x-amz-server-side-encryption-aws-kms-key-id s3:x-amz-storage-class
    s3:x-amz-content-sha256 s3:VersionId s3:LocationConstraint s3:authType s3:signatureversion
    s3:signatureAge s3:TlsVersion s3:RequestObjectTagKeys s3:object-lock-mode
    s3:object-lock-retain-until-date s3:object-lock-remaining-retention-days
    s3:object-lock-legal-hold s3:ResourceAccount s3:DataAccessPointArn
    s3:DataAccessPointAccount s3:AccessPointNetworkOrigin s3:x-amz-object-ownership
""")
)
TAG_KEY_PREFIXES = words(
    "aws:principaltag/ aws:requesttag/ aws:resourcetag/ s3:existingobjecttag/ s3:requestobjecttag/"
)
