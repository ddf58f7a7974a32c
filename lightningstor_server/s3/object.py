"""Object operations: PutObject, GetObject, HeadObject, DeleteObject."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping

from aiohttp import web

from lightningstor.errors import InvalidArgument
from lightningstor.model import ByteRange, ObjectHead
from lightningstor.objects.conditions import part_range, resolve_range
from lightningstor_server.s3 import headers as h
from lightningstor_server.s3.acl import written_acl
from lightningstor_server.s3.body import object_upload
from lightningstor_server.s3.configuration import check_write_headers
from lightningstor_server.s3.context import STREAMED, S3Call, may_bypass_governance
from lightningstor_server.s3.lifecycle import expiration_header
from lightningstor_server.s3.tagging import header_tags

log = logging.getLogger("lightningstor.s3")

# GET bodies up to this size are read whole before the response starts (see handle_get_object).
_WHOLE_GET_BYTES = 64 * 1024
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
    check_write_headers(call)
    upload = object_upload(call)
    head = await call.store.put_object(
        call.endpoint.bucket,
        call.endpoint.key,
        upload.chunks,
        headers=upload.headers,
        user_metadata=h.user_metadata(call.headers),
        expect=upload.expect,
        preconditions=h.preconditions(call.headers),
        protection=h.protection(call.headers),
        acl=await written_acl(call, bucket := await call.bucket()),
        tags=header_tags(call.headers),
    )
    reply = {
        "ETag": f'"{head.etag}"',
        **h.checksum_headers(head.checksums, of=head.checksums),
        **h.version_headers(head),
        **expiration_header(bucket.lifecycle, head),
    }
    return web.Response(headers=reply)


def _wants_checksums(call: S3Call) -> bool:
    return call.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"


def _checksums_of(
    call: S3Call, head: ObjectHead, selected: ByteRange | None, part_number: int | None
) -> Mapping[str, str]:
    """The checksums a GET or HEAD returns, in checksum mode only: the object's for the whole
    object, a part's for a read of that part, none for any other range (a whole-object
    checksum on a 206 fails every SDK's validation of the body)."""
    if not _wants_checksums(call):
        return {}
    if part_number is not None and head.part_checksums:
        return head.part_checksums[part_number - 1]
    whole = selected is None or (part_number == 1 and not head.segments[1:])
    return head.checksums if whole else {}


async def _response(
    call: S3Call,
    head: ObjectHead,
    selected: ByteRange | None,
    part_number: int | None,
    *,
    body: bytes | None = None,
) -> web.StreamResponse:
    """Status and headers of a GET or HEAD that returns ``selected`` (None: everything), with
    ``body`` when it is already at hand."""
    headers = h.object_headers(head, checksums=_checksums_of(call, head, selected, part_number))
    if call.params.version_id is None:  # the current version: when a rule expires it
        headers.update(expiration_header((await call.bucket()).lifecycle, head))
    for param, header in _RESPONSE_OVERRIDES.items():
        if param in call.query:
            value = call.query[param]
            if any(ord(c) < 32 or ord(c) == 127 for c in value):
                raise InvalidArgument(f"Invalid {param} value.", resource=param)
            headers[header] = value
    if part_number is not None and "-" in head.etag:
        headers["x-amz-mp-parts-count"] = str(len(head.segments))
    status = 206 if selected is not None else 200
    response = (
        web.StreamResponse(status=status, headers=headers)
        if body is None
        else web.Response(status=status, headers=headers, body=body)
    )
    if selected is not None:
        response.headers["Content-Range"] = f"bytes {selected.start}-{selected.end}/{head.size}"
    if body is None:  # a Response counts its body itself
        response.content_length = selected.length if selected is not None else head.size
    return response


async def handle_head_object(call: S3Call) -> web.StreamResponse:
    headers = call.headers
    part_number = call.params.part_number or None
    head = await call.store.head_object(
        call.endpoint.bucket,
        call.endpoint.key,
        version_id=call.params.version_id,
        preconditions=h.preconditions(headers),
    )
    requested = h.byte_range(headers.get("Range"))
    if part_number is not None:
        selected = part_range(head, part_number)
    else:
        selected = resolve_range(requested, head.size, head.key) if requested else None
    return await _response(call, head, selected, part_number)


async def handle_get_object(call: S3Call) -> web.StreamResponse:
    part_number = call.params.part_number or None
    reader = await call.store.open_object(
        call.endpoint.bucket,
        call.endpoint.key,
        byte_range=h.byte_range(call.headers.get("Range")),
        part_number=part_number,
        version_id=call.params.version_id,
        preconditions=h.preconditions(call.headers),
    )
    if reader.length <= _WHOLE_GET_BYTES:
        # A small body is read first and sent with the headers in one write: one send
        # instead of two, and a failed read is still an ordinary error response.
        body = b"".join([chunk async for chunk in reader.chunks])
        return await _response(call, reader.head, reader.range, part_number, body=body)
    response = await _response(call, reader.head, reader.range, part_number)
    await response.prepare(call.request)
    sent, chunks = 0, reader.chunks
    try:
        while (chunk := await _next_block(call, chunks, response.status, sent)) is not None:
            sent += len(chunk)  # handed to the socket (what the client got is not knowable)
            try:
                await response.write(chunk)
            except ConnectionError as gone:
                # s3fs closes every GET over 50 MiB early, curl | head too: ordinary.
                log.info(
                    "request=%s client closed the download of %s after %d of %d bytes were sent",
                    call.request_id, call.endpoint.key, sent, response.content_length,
                )  # fmt: skip
                call.request[STREAMED] = (response.status, sent, "")
                if call.request.transport is not None:
                    call.request.transport.abort()
                # One kind for the error middleware, whichever way the socket said it.
                raise ConnectionResetError("the client closed the download") from gone
    finally:
        if isinstance(chunks, AsyncGenerator):  # its open blob is closed now, not when collected
            await chunks.aclose()
    await response.write_eof()
    return response


async def _next_block(
    call: S3Call, chunks: AsyncIterator[bytes], status: int, sent: int
) -> bytes | None:
    """The next block of a body being sent, None at its end. A block that cannot be read
    (it failed its checksum, say) ends the response by cutting the connection: its status
    and Content-Length are already sent, so the client sees a short body, never an error
    inside it."""
    try:
        return await anext(chunks, None)
    except Exception as exc:
        log.error(
            "request=%s body of %s failed mid-stream after %d bytes: %r",
            call.request_id, call.endpoint.key, sent, exc,
        )  # fmt: skip
        call.request[STREAMED] = (status, sent, getattr(exc, "code", "InternalError"))
        if call.request.transport is not None:
            call.request.transport.abort()
        raise ConnectionResetError("response aborted mid-stream") from exc


async def handle_delete_object(call: S3Call) -> web.StreamResponse:
    # S3 answers 204 whether or not the key (or the version) existed.
    result = await call.store.delete_object(
        call.endpoint.bucket,
        call.endpoint.key,
        version_id=call.params.version_id,
        bypass_governance=await may_bypass_governance(call, call.endpoint.key),
        conditions=h.delete_conditions(
            call.headers.get("If-Match"),
            call.headers.get("x-amz-if-match-last-modified-time"),
            call.headers.get("x-amz-if-match-size"),
        ),
    )
    headers = {}
    if result.version_id is not None:
        headers["x-amz-version-id"] = result.version_id
    if result.delete_marker:
        headers["x-amz-delete-marker"] = "true"
    return web.Response(status=204, headers=headers)
