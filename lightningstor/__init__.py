"""LightningSTOR core: the object store both front doors share.

This package imports no protocol code (no aiohttp, no grpc server); ``lightningstor.v1`` holds
the generated gRPC stubs and ``lightningstor.client`` a small client for internal services.
"""

__version__ = "0.1.0"
