"""Reads of bucket and object configurations we keep none of, answered as AWS answers for a
bucket or object that has none. Tools such as Terraform and rclone read every sub-resource on
refresh; a 404 of the wrong kind or a 500 breaks them."""

from __future__ import annotations

from aiohttp import web

from lightningstor.errors import ABSENT_CONFIGURATIONS, NoSuchConfiguration
from lightningstor_server.s3.context import S3Call
from lightningstor_server.s3.documents import EmptyConfiguration, xml_response
from lightningstor_server.s3.errors import NotImplementedByServer

# Configurations whose absence S3 reports as an empty (or default) document.
_EMPTY: dict[str, EmptyConfiguration] = {
    "logging": EmptyConfiguration("BucketLoggingStatus"),
    "notification": EmptyConfiguration("NotificationConfiguration"),
    "accelerate": EmptyConfiguration("AccelerateConfiguration"),
    "requestPayment": EmptyConfiguration(
        "RequestPaymentConfiguration", (("Payer", "BucketOwner"),)
    ),
}
ABSENT_CONFIGURATION_CODES = frozenset(code for code, _ in ABSENT_CONFIGURATIONS.values())


# Write headers that ask for features this server does not provide. Accepting them silently
# would be a wrong success (the object would lack what the client believes it has).
_UNSUPPORTED_WRITE_HEADERS = (
    "x-amz-server-side-encryption",
    "x-amz-website-redirect-location",
)


def check_write_headers(call: S3Call) -> None:
    """Refuse what a write asks for but would not get. (ACLs and tags are the handlers':
    acl.py, tagging.py.)"""
    headers = call.headers
    storage_class = headers.get("x-amz-storage-class", "STANDARD")
    if storage_class != "STANDARD":
        raise NotImplementedByServer(
            f"Storage class {storage_class} is not offered; use STANDARD.",
            resource="x-amz-storage-class",
        )
    for name in headers:
        if name.lower().startswith(_UNSUPPORTED_WRITE_HEADERS):
            raise NotImplementedByServer(f"The header {name} is not implemented.", resource=name)


async def handle_get_bucket_configuration(call: S3Call) -> web.StreamResponse:
    bucket, name = call.endpoint.bucket, call.endpoint.subresource
    await call.store.head_bucket(bucket)
    if name in _EMPTY:
        return xml_response(_EMPTY[name])
    raise absent(name, bucket)


def absent(subresource: str, bucket: str) -> NoSuchConfiguration:
    """The error S3 answers a read of a configuration ``bucket`` does not have."""
    return NoSuchConfiguration.of(subresource, bucket)
