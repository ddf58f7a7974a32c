"""BucketService: create, get, delete and list buckets, and set their versioning, object lock,
lifecycle configuration and tags (each authorized by access.py's table, as S3's operations
are)."""

from __future__ import annotations

from lightningstor.auth.access import AccessSettings, visible
from lightningstor.errors import NoSuchConfiguration
from lightningstor.objects.store import ObjectStore
from lightningstor.v1 import storage_pb2 as pb
from lightningstor.v1 import storage_pb2_grpc as pb_grpc
from lightningstor_server.grpc.auth import current_caller
from lightningstor_server.grpc.lifecycle import parse_rules, render_rule
from lightningstor_server.grpc.messages import (
    parse_object_lock,
    parse_versioning_status,
    render_bucket,
)
from lightningstor_server.grpc.wrapping import Context


class BucketServicer(pb_grpc.BucketServiceServicer):
    def __init__(self, *, store: ObjectStore, access: AccessSettings | None = None) -> None:
        self._store = store
        self._access = access or AccessSettings()

    async def CreateBucket(self, request: pb.CreateBucketRequest, context: Context) -> pb.Bucket:
        info = await self._store.create_bucket(
            request.name,
            owner=current_caller().owner,
            object_lock=request.object_lock_enabled,
            access=self._access.new_bucket(),
        )
        return render_bucket(info)

    async def GetBucket(self, request: pb.GetBucketRequest, context: Context) -> pb.Bucket:
        return render_bucket(await self._store.head_bucket(request.name))

    async def DeleteBucket(
        self, request: pb.DeleteBucketRequest, context: Context
    ) -> pb.DeleteBucketResponse:
        await self._store.uploads.delete_bucket(request.name)  # its uploads in progress end with it
        return pb.DeleteBucketResponse()

    async def ListBuckets(
        self, request: pb.ListBucketsRequest, context: Context
    ) -> pb.ListBucketsResponse:
        shown = visible(current_caller().core, await self._store.list_buckets())
        return pb.ListBucketsResponse(buckets=[render_bucket(b) for b in shown])

    async def SetBucketVersioning(
        self, request: pb.SetBucketVersioningRequest, context: Context
    ) -> pb.Bucket:
        status = parse_versioning_status(request.status)
        return render_bucket(await self._store.set_versioning(request.name, status))

    async def SetObjectLockConfiguration(
        self, request: pb.SetObjectLockConfigurationRequest, context: Context
    ) -> pb.Bucket:
        lock = parse_object_lock(request)
        return render_bucket(await self._store.set_object_lock(request.name, lock))

    async def SetBucketLifecycle(
        self, request: pb.SetBucketLifecycleRequest, context: Context
    ) -> pb.BucketLifecycle:
        info = await self._store.set_lifecycle(request.bucket, parse_rules(request.rules))
        return pb.BucketLifecycle(
            bucket=info.name, rules=[render_rule(rule) for rule in info.lifecycle or ()]
        )

    async def GetBucketLifecycle(
        self, request: pb.GetBucketLifecycleRequest, context: Context
    ) -> pb.BucketLifecycle:
        info = await self._store.head_bucket(request.bucket)
        if info.lifecycle is None:
            raise NoSuchConfiguration.of("lifecycle", info.name)
        return pb.BucketLifecycle(
            bucket=info.name, rules=[render_rule(rule) for rule in info.lifecycle]
        )

    async def DeleteBucketLifecycle(
        self, request: pb.DeleteBucketLifecycleRequest, context: Context
    ) -> pb.DeleteBucketLifecycleResponse:
        await self._store.set_lifecycle(request.bucket, None)
        return pb.DeleteBucketLifecycleResponse()

    async def SetBucketTagging(
        self, request: pb.SetBucketTaggingRequest, context: Context
    ) -> pb.BucketTagging:
        info = await self._store.set_bucket_tags(request.bucket, dict(request.tags))
        return pb.BucketTagging(bucket=info.name, tags=dict(info.tags or {}))

    async def GetBucketTagging(
        self, request: pb.GetBucketTaggingRequest, context: Context
    ) -> pb.BucketTagging:
        info = await self._store.head_bucket(request.bucket)
        if info.tags is None:
            raise NoSuchConfiguration.of("tagging", info.name)
        return pb.BucketTagging(bucket=info.name, tags=dict(info.tags))

    async def DeleteBucketTagging(
        self, request: pb.DeleteBucketTaggingRequest, context: Context
    ) -> pb.DeleteBucketTaggingResponse:
        await self._store.set_bucket_tags(request.bucket, None)
        return pb.DeleteBucketTaggingResponse()
