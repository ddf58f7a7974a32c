"""Object operations: PutObject, GetObject, HeadObject, DeleteObject."""

from __future__ import annotations

from aiohttp import web

from lightningstor.errors import MissingContentLength
from lightningstor_server.s3 import headers as h
from lightningstor_server.s3.body import object_body, reject_streaming_payload
from lightningstor_server.s3.context import S3Call

# GET may override these response headers through signed query parameters.
_RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


async def handle_put_object(call: S3Call) -> web.StreamResponse:
    request = call.request
    reject_streaming_payload(call)
    if "Content-Length" not in request.headers:
        raise MissingContentLength()
    head = await call.store.put_object(
        call.endpoint.bucket,
        call.endpoint.key,
        object_body(call),
        headers=h.content_headers(request.headers),
        user_metadata=h.user_metadata(request.headers),
        expect=h.body_expectations(request.headers, call.auth.payload_hash),
        preconditions=h.preconditions(request.headers),
    )
    reply = {"ETag": f'"{head.etag}"'}
    for algorithm, value in head.checksums.items():
        reply[h.CHECKSUM_PREFIX + algorithm] = value
    return web.Response(headers=reply)


def _wants_checksums(call: S3Call) -> bool:
    return call.request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"


async def handle_head_object(call: S3Call) -> web.StreamResponse:
    head = await call.store.head_object(
        call.endpoint.bucket, call.endpoint.key, preconditions=h.preconditions(call.request.headers)
    )
    response = web.StreamResponse(
        headers=h.object_headers(head, with_checksums=_wants_checksums(call))
    )
    response.content_length = head.size
    return response


async def handle_get_object(call: S3Call) -> web.StreamResponse:
    request = call.request
    reader = await call.store.open_object(
        call.endpoint.bucket,
        call.endpoint.key,
        byte_range=h.byte_range(request.headers.get("Range")),
        preconditions=h.preconditions(request.headers),
    )
    # A whole-object checksum describes the whole object only: never attach it to a 206.
    with_checksums = _wants_checksums(call) and reader.range is None
    headers = h.object_headers(reader.head, with_checksums=with_checksums)
    for param, header in _RESPONSE_OVERRIDES.items():
        if param in request.query:
            headers[header] = request.query[param]
    response = web.StreamResponse(status=200 if reader.range is None else 206, headers=headers)
    if reader.range is not None:
        response.headers["Content-Range"] = (
            f"bytes {reader.range.start}-{reader.range.end}/{reader.head.size}"
        )
    response.content_length = reader.length
    await response.prepare(request)
    async for chunk in reader.chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


async def handle_delete_object(call: S3Call) -> web.StreamResponse:
    # S3 answers 204 whether or not the key existed.
    await call.store.delete_object(call.endpoint.bucket, call.endpoint.key)
    return web.Response(status=204)
