"""Build, bind and start the gRPC door."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from lightningstor.auth.access import AccessSettings
from lightningstor.auth.credentials import CredentialStore
from lightningstor.objects.gatekeeper import Gatekeeper
from lightningstor.objects.store import ObjectStore
from lightningstor.v1 import admin_pb2
from lightningstor.v1 import admin_pb2_grpc as admin_grpc
from lightningstor.v1 import storage_pb2 as pb
from lightningstor.v1 import storage_pb2_grpc as pb_grpc
from lightningstor_server.grpc.admin import AdminServicer
from lightningstor_server.grpc.auth import MAX_OPEN_CALLS, AuthInterceptor
from lightningstor_server.grpc.buckets import BucketServicer
from lightningstor_server.grpc.errors import ErrorInterceptor
from lightningstor_server.grpc.multipart import MultipartServicer
from lightningstor_server.grpc.objects import ObjectServicer
from lightningstor_server.ratelimit import FailedAuthLimiter

SERVICE_NAMES = tuple(
    service.full_name
    for descriptor in (pb.DESCRIPTOR, admin_pb2.DESCRIPTOR)
    for service in descriptor.services_by_name.values()
)


@dataclass(frozen=True, slots=True)
class GrpcDoor:
    server: grpc.aio.Server
    port: int
    health: Any  # grpc_health.v1.health.aio.HealthServicer (untyped in its stubs)

    async def not_serving(self) -> None:
        """Tell load balancers to go elsewhere: the daemon is shutting down."""
        await self.health.enter_graceful_shutdown()


async def start_grpc_door(
    *,
    store: ObjectStore,
    credentials: CredentialStore,
    listen: str,
    server_credentials: grpc.ServerCredentials | None = None,
    limiter: FailedAuthLimiter | None = None,
    max_concurrent_calls: int = 0,
    max_open_calls: int = MAX_OPEN_CALLS,
    access: AccessSettings | None = None,
) -> GrpcDoor:
    """Serve BucketService, ObjectService, MultipartService and health on ``listen``
    ("host:port", port 0 picks a free one), over TLS when ``server_credentials`` are given;
    returns the started server and the port it bound.

    gRPC's default 4 MiB message limit stays: payload chunks are at most 2 MiB (the proto's
    MAX_CHUNK_BYTES), leaving room for the spec or metadata travelling beside them.
    """
    gatekeeper = Gatekeeper(store, access or AccessSettings())
    server = grpc.aio.server(
        maximum_concurrent_rpcs=max_concurrent_calls or None,
        # gRPC binds with SO_REUSEPORT by default: a second daemon on the same port would then
        # start "fine" and take a random share of the connections to another store. Bind
        # exclusively, as the S3 listener does, so the second one fails at start instead.
        options=[("grpc.so_reuseport", 0)],
        # The error interceptor comes first so it is outermost and also maps auth failures.
        interceptors=[
            ErrorInterceptor(),
            AuthInterceptor(
                lookup=credentials.lookup,
                limiter=limiter,
                max_open_calls=max_open_calls,
                gatekeeper=gatekeeper,
                secure=server_credentials is not None,
            ),
        ],
    )
    uploads = store.uploads
    buckets = BucketServicer(store=store, access=gatekeeper.settings)
    pb_grpc.add_BucketServiceServicer_to_server(buckets, server)  # type: ignore[no-untyped-call]
    pb_grpc.add_ObjectServiceServicer_to_server(
        ObjectServicer(store=store, gatekeeper=gatekeeper), server
    )  # type: ignore[no-untyped-call]
    admin_grpc.add_AdminServiceServicer_to_server(
        AdminServicer(credentials=credentials, gatekeeper=gatekeeper), server
    )  # type: ignore[no-untyped-call]
    pb_grpc.add_MultipartServiceServicer_to_server(
        MultipartServicer(uploads=uploads, gatekeeper=gatekeeper), server
    )  # type: ignore[no-untyped-call]
    # The aio servicer is public API (grpc_health.v1.health.aio) that the stubs lack.
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    # Reflection lets generic tools (grpcurl, grpcui) discover the API without the .proto.
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    try:
        if server_credentials is None:
            port = server.add_insecure_port(listen)
        else:
            port = server.add_secure_port(listen, server_credentials)
    except RuntimeError:  # how grpcio reports a failed bind (older releases: port 0)
        port = 0
    if port == 0:
        # The CLI reports an OSError at start-up in one line ("cannot start: ...").
        raise OSError(
            f"grpc_listen {listen}: cannot bind (the port is in use, by another daemon or "
            "program, or the address is not this host's)"
        )
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return GrpcDoor(server=server, port=port, health=health_servicer)
