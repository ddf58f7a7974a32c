"""Run a servicer method inside an async context manager, whatever its streaming shape.

grpc.aio interceptors only see the method handler, not the call; to act *during* a call (check a
token with an awaited lookup, turn exceptions into statuses) an interceptor returns a copy of the
handler whose behaviour runs the original inside its own ``async with`` block. Doing the work
inside the behaviour, rather than in ``intercept_service``, keeps it in the call's own task, so a
context variable set there is seen by the servicer and by nothing else.

Requests are deserialized inside that block too. grpc.aio would otherwise parse them before any
behaviour runs, and answer bytes that are not the method's message with UNKNOWN and its own
exception text; parsed here, they are an InvalidArgument like any other bad input.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError

from lightningstor.errors import InvalidArgument

if TYPE_CHECKING:  # generic only in the stubs; subscripting them at run time fails
    Context = grpc.aio.ServicerContext[Any, Any]
    Handler = grpc.RpcMethodHandler[Any, Any]
    ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    Context = grpc.aio.ServicerContext
    Handler = grpc.RpcMethodHandler
    ServerInterceptor = grpc.aio.ServerInterceptor
# The stubs say a continuation always finds a handler; for an unknown method it returns None.
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]
# Given the call's context, the block that surrounds one run of a servicer method.
Around = Callable[[Context], AbstractAsyncContextManager[None]]
# The stubs describe sync behaviours; grpc.aio ones return coroutines or async generators.
_Behaviour = Callable[..., Any]
_Deserializer = Callable[[bytes], Any] | None
# Raises to refuse a call, given its request message (see access.py).
Check = Callable[[Any], Awaitable[None]]


def wrap_handler(handler: Handler, around: Around, check: Check | None = None) -> Handler:
    """A handler like ``handler`` whose behaviour runs inside ``around(context)``, and, when
    given, ``check``s the request (a streamed request's first message) before the servicer
    sees it."""
    parse = _checked(_parser(handler), check, streaming=handler.request_streaming)
    if handler.response_streaming:
        make = (
            grpc.stream_stream_rpc_method_handler
            if handler.request_streaming
            else grpc.unary_stream_rpc_method_handler
        )
        original = handler.stream_stream if handler.request_streaming else handler.unary_stream
        behaviour = _streaming(original, around, parse)
    else:
        make = (
            grpc.stream_unary_rpc_method_handler
            if handler.request_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        original = handler.stream_unary if handler.request_streaming else handler.unary_unary
        behaviour = _single(original, around, parse)
    return make(
        behaviour,
        request_deserializer=None,  # grpc.aio hands over the raw bytes: see _parser
        response_serializer=handler.response_serializer,
    )


def _parser(handler: Handler) -> Callable[[Any], Any]:
    """What turns the request (or, when streaming, the request iterator) grpc.aio hands a
    behaviour into the one the original expects, raising InvalidArgument for bytes that are not
    a message of the method's type. A handler wrapped before passes raw bytes on unchanged."""
    deserialize: _Deserializer = handler.request_deserializer
    if deserialize is None:
        return lambda request: request

    def parse(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except DecodeError:
            raise InvalidArgument("The request is not a valid message for this method.") from None

    if not handler.request_streaming:
        return parse

    async def parse_each(raw_messages: AsyncIterator[bytes]) -> AsyncIterator[Any]:
        async for raw in raw_messages:
            yield parse(raw)

    return parse_each


def _checked(
    parse: Callable[[Any], Any], check: Check | None, *, streaming: bool
) -> Callable[[Any], Any]:
    if check is None:
        return parse
    if not streaming:

        async def parse_and_check(raw: Any) -> Any:
            message = parse(raw)
            await check(message)
            return message

        return parse_and_check

    async def check_first(raw_messages: Any) -> AsyncIterator[Any]:
        checked = False
        async for message in parse(raw_messages):
            if not checked:
                await check(message)
                checked = True
            yield message

    return check_first


def _single(original: _Behaviour | None, around: Around, parse: Callable[[Any], Any]) -> _Behaviour:
    assert original is not None  # grpc fills exactly the slot its streaming flags name

    async def behaviour(request: Any, context: Context) -> Any:
        async with around(context):
            return await original(await _parsed(parse, request), context)

    return behaviour


def _streaming(
    original: _Behaviour | None, around: Around, parse: Callable[[Any], Any]
) -> _Behaviour:
    assert original is not None

    # grpc.aio tells the two kinds of streaming behaviour apart with isasyncgenfunction, so the
    # wrapper must itself be an async generator, whichever kind the original is.
    async def behaviour(request: Any, context: Context) -> AsyncIterator[Any]:
        async with around(context):
            parsed = await _parsed(parse, request)
            if inspect.isasyncgenfunction(original):
                async for response in original(parsed, context):
                    yield response
            else:  # a reader/writer-style method that writes through the context itself
                await original(parsed, context)

    return behaviour


async def _parsed(parse: Callable[[Any], Any], request: Any) -> Any:
    """A unary request's checked parse is a coroutine; a streamed one's an async iterator."""
    parsed = parse(request)
    return await parsed if inspect.isawaitable(parsed) else parsed


class AroundInterceptor(ServerInterceptor):
    """An interceptor that runs every guarded method inside :meth:`around`.

    Methods whose names start with one of ``open_prefixes`` (health checks) pass untouched.
    """

    def __init__(self, *, open_prefixes: tuple[str, ...]) -> None:
        self._open_prefixes = open_prefixes

    def around(self, method: str, context: Context) -> AbstractAsyncContextManager[None]:
        raise NotImplementedError

    def check(self, method: str) -> Check | None:
        """What checks ``method``'s request inside :meth:`around` (None: nothing)."""
        return None

    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED itself
            return None  # type: ignore[return-value]  # the stubs forget that None is allowed
        method = handler_call_details.method
        if method.startswith(self._open_prefixes):
            return handler
        return wrap_handler(handler, partial(self.around, method), self.check(method))
