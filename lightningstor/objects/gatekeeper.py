"""Authorization against the store: the records the core's decision (``auth/access.py``) reads,
fetched for it, so both doors ask the same way and differ only in the facts of a request.

A request for a bucket that does not exist is answered NoSuchBucket at once (nothing else is
known about it, and a bucket created meanwhile must not be reached unchecked). A read of a
missing object is NoSuchKey only for a caller who may list its name (s3:ListBucket with that
prefix), as S3 answers; anyone else learns nothing but 403.
"""

from __future__ import annotations

import dataclasses

from lightningstor.auth.access import (
    AccessRequest,
    AccessSettings,
    Caller,
    Verdict,
    decide,
)
from lightningstor.auth.acls import written_owner
from lightningstor.errors import (
    AccessDenied,
    NoSuchBucket,
    NoSuchKey,
    NoSuchVersion,
    StorageError,
)
from lightningstor.model import BucketInfo, ObjectAcl
from lightningstor.objects.store import ObjectStore

_READS = frozenset({"s3:getobject", "s3:getobjectversion"})
_EXISTING_TAG = "s3:existingobjecttag/"


class Gatekeeper:
    def __init__(self, store: ObjectStore, settings: AccessSettings) -> None:
        self.store = store
        self.settings = settings

    async def bucket(self, name: str) -> BucketInfo:
        """The bucket's record as authorization reads it (cached); raises NoSuchBucket."""
        bucket = await self.store.buckets.get(name)
        if bucket is None:
            raise NoSuchBucket(resource=name)
        return bucket

    async def has_policy(self, *names: str) -> bool:
        """Whether any of these buckets has a policy: only then are a request's condition keys
        read (building them for every request showed in small-op profiles)."""
        return any([(await self.bucket(name)).policy for name in names])

    async def may_bypass_governance(self, caller: Caller, bucket: str, key: str) -> bool:
        """Whether ``caller`` holds s3:BypassGovernanceRetention on the object: admins and the
        bucket's owner do, and whoever its policy allows it (a key's grant never does)."""
        access = AccessRequest(action="s3:BypassGovernanceRetention", bucket=bucket, key=key)
        info = await self.store.buckets.get(bucket)
        return info is not None and (
            decide(caller, access, info, self.settings, ObjectAcl(owner=info.owner))
            is Verdict.ALLOW
        )

    async def written_acl(self, caller: Caller, bucket: str) -> ObjectAcl:
        """Who owns what ``caller`` writes into ``bucket`` when the write names no ACL (S3
        Object Ownership: the writer with ACLs on, the bucket's owner otherwise)."""
        info = await self.bucket(bucket)
        return ObjectAcl(owner=written_owner(info, caller.owner, None))

    def may_create(self, caller: Caller) -> None:
        """Raise AccessDenied unless ``caller`` may create buckets (and own them)."""
        if caller.owner is None:
            raise AccessDenied()
        if not (caller.admin or self.settings.keys_create_buckets):
            raise AccessDenied("Only admin keys may create buckets on this server.")

    async def check(
        self, caller: Caller, access: AccessRequest, version_id: str | None = None
    ) -> BucketInfo:
        """Raise unless ``caller`` may do ``access`` (reading the object's ACL when only it
        could allow); the bucket as it was decided on."""
        bucket = await self.bucket(access.bucket)
        access = await self._with_object_tags(access, bucket, version_id)
        verdict = decide(caller, access, bucket, self.settings)
        if verdict is Verdict.ASK_OBJECT:
            assert access.key is not None
            try:
                obj = await self._object_acl(bucket, access.key, version_id)
            except (NoSuchKey, NoSuchVersion):
                verdict = Verdict.DENY
            else:
                verdict = decide(caller, access, bucket, self.settings, obj)
        if verdict is Verdict.ALLOW:
            return bucket
        if access.key is not None and access.action.lower() in _READS:
            await self._raise_if_missing(caller, access, bucket, version_id)
        raise AccessDenied(resource=access.key or access.bucket)

    async def _with_object_tags(
        self, access: AccessRequest, bucket: BucketInfo, version_id: str | None
    ) -> AccessRequest:
        """``access`` with the object's tags as s3:ExistingObjectTag/<key>, read only when the
        bucket's policy tests them (one more read, for those buckets alone)."""
        if access.key is None or _EXISTING_TAG not in bucket.policy.lower():
            return access
        try:
            head = await self.store.head_object(bucket.name, access.key, version_id=version_id)
        except StorageError:
            return access  # a missing object has no tags; its own answer comes later
        tags = {f"s3:ExistingObjectTag/{k}": [v] for k, v in head.tags.items()}
        return dataclasses.replace(access, context={**access.context, **tags})

    async def _raise_if_missing(
        self, caller: Caller, access: AccessRequest, bucket: BucketInfo, version_id: str | None
    ) -> None:
        """NoSuchKey (or NoSuchVersion) for a missing object, to a caller who may list it."""
        assert access.key is not None
        context = {**access.context, "s3:prefix": [access.key]}
        listing = AccessRequest(action="s3:ListBucket", bucket=bucket.name, context=context)
        if decide(caller, listing, bucket, self.settings) is Verdict.ALLOW:
            await self._object_acl(bucket, access.key, version_id)

    async def _object_acl(self, bucket: BucketInfo, key: str, version_id: str | None) -> ObjectAcl:
        head = await self.store.head_object(bucket.name, key, version_id=version_id)
        return ObjectAcl(owner=head.owner or bucket.owner, acl=head.acl)
