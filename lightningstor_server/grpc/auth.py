"""Every call proves its caller before a servicer runs: the signed token of ``tokens.py``.

The interceptor wraps each method so that verification runs inside the call's own task (see
``wrapping.py``) and records the verified caller in a context variable, which servicers read
with :func:`current_caller`. Each call runs in a task of its own whose context dies with it, so
a caller never leaks into another call. Health checking stays open: load balancers and
orchestrators probe it without keys.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import grpc

from lightningstor.auth import access
from lightningstor.auth.credentials import Credential
from lightningstor.errors import (
    AccessDenied,
    AuthError,
    AuthorizationHeaderMalformed,
    InvalidAccessKeyId,
    MissingSecurityHeader,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
)
from lightningstor.model import Owner, key_owner
from lightningstor.objects.gatekeeper import Gatekeeper
from lightningstor.wire import (
    KEY_ID_HEADER,
    NONCE_HEADER,
    REPLAY_WINDOW_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_call,
)
from lightningstor_server.grpc.access import enforce
from lightningstor_server.grpc.wrapping import AroundInterceptor, Check, Context
from lightningstor_server.ratelimit import FailedAuthLimiter

# Health and reflection answer without credentials, as load balancers and generic tools expect;
# reflection tells only what the public .proto files already say.
OPEN_METHOD_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
# How many open streams (health Watch, reflection) may run at once: grpc_max_open_calls.
MAX_OPEN_CALLS = 32
_TOKEN_HEADERS = (KEY_ID_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
_NONCE_RE = re.compile(r"^[0-9a-f]{32}$")
_TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE_RE = re.compile(r"^[0-9a-f]{64}$")

CredentialLookup = Callable[[str], Awaitable[Credential | None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """Who a verified call comes from. Holds no secret, unlike Credential."""

    access_key_id: str
    admin: bool
    grants: Mapping[str, str] = field(default_factory=dict)
    canonical_id: str = ""  # "" = derived from the key id
    name: str = ""
    source_ip: str = ""  # where the call came from, for policies' aws:SourceIp
    secure: bool = False  # over TLS

    @property
    def owner(self) -> Owner:
        return key_owner(self.access_key_id, self.canonical_id, self.name)

    @property
    def core(self) -> access.Caller:
        """The caller as the core's authorization knows it."""
        return access.key_caller(
            access_key_id=self.access_key_id,
            canonical_id=self.canonical_id,
            name=self.name,
            admin=self.admin,
            grants=self.grants,
        )


_caller: ContextVar[Caller] = ContextVar("lightningstor_grpc_caller")


def current_caller() -> Caller:
    """The verified caller of the running call.

    Raises AccessDenied if none was verified: a servicer reached without the interceptor must
    fail closed, never act for nobody.
    """
    try:
        return _caller.get()
    except LookupError:
        raise AccessDenied("The call carries no verified identity.") from None


async def may_bypass_governance(
    asked: bool, gatekeeper: Gatekeeper | None, bucket: str, key: str
) -> bool:
    """Whether a call that asks to bypass GOVERNANCE retention (``bypass_governance_retention``)
    may: it holds s3:BypassGovernanceRetention, decided as in the S3 door (admins, the bucket's
    owner, a policy; never a grant). Asked by anyone else, the lock simply holds."""
    if not asked:
        return False
    caller = current_caller()
    if gatekeeper is None:
        return caller.admin
    return await gatekeeper.may_bypass_governance(caller.core, bucket, key)


def caller_key_id() -> str:
    """The verified caller's access key id, or "-" (for logs, which must not raise)."""
    caller = _caller.get(None)
    return "-" if caller is None else caller.access_key_id


def act_as(caller: Caller) -> None:
    """Record ``caller`` for the running task (the interceptor's job; tests call it directly)."""
    _caller.set(caller)


class ReplayGuard:
    """Nonces seen within the replay window (per daemon), so each token is accepted once.

    Memory is bounded by the call rate times the window: entries leave once the window in which
    their timestamp could still be accepted has passed.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._expiry: deque[tuple[float, tuple[str, str]]] = deque()

    def first_use(self, key_id: str, nonce: str, now: float) -> bool:
        while self._expiry and self._expiry[0][0] < now:
            self._seen.pop(self._expiry.popleft()[1], None)
        entry = (key_id, nonce)
        if entry in self._seen:
            return False
        until = now + 2 * REPLAY_WINDOW_SECONDS  # covers any accepted timestamp, both ways
        self._seen[entry] = until
        self._expiry.append((until, entry))
        return True


async def authenticate(
    method: str,
    metadata: Iterable[tuple[str, Any]],
    *,
    lookup: CredentialLookup,
    now: float,
    replays: ReplayGuard,
) -> Caller:
    """Check one call's token; raises the AuthError that names what is wrong."""
    # Binary ("-bin") values arrive as bytes; ours are text, so anything else counts as absent.
    token = {k: v for k, v in metadata if k in _TOKEN_HEADERS and isinstance(v, str) and v}
    key_id, timestamp, nonce, signature = (token.get(name) for name in _TOKEN_HEADERS)
    if key_id is None or timestamp is None or nonce is None or signature is None:
        raise MissingSecurityHeader(
            f"Every call must carry {KEY_ID_HEADER}, {TIMESTAMP_HEADER}, {NONCE_HEADER} and "
            f"{SIGNATURE_HEADER}."
        )
    if not _TIMESTAMP_RE.match(timestamp):
        raise AuthorizationHeaderMalformed(f"{TIMESTAMP_HEADER} must be unix seconds.")
    if not _NONCE_RE.match(nonce):
        raise AuthorizationHeaderMalformed(f"{NONCE_HEADER} must be 32 lowercase hex digits.")
    if abs(now - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        raise RequestTimeTooSkewed(
            f"The call was signed more than {REPLAY_WINDOW_SECONDS} s from the server's time."
        )
    credential = await lookup(key_id)
    if credential is None or not credential.active:
        # One answer for unknown and disabled keys: which keys exist is nobody's business.
        raise InvalidAccessKeyId(resource=key_id)
    # The format check keeps verify_call's constant-time compare on ASCII, which it requires.
    if not _SIGNATURE_RE.match(signature) or not verify_call(
        credential.secret_access_key, method, int(timestamp), nonce, signature
    ):
        raise SignatureDoesNotMatch(resource=key_id)
    if not replays.first_use(key_id, nonce, now):
        raise AccessDenied("This call token was used before; sign every call afresh.")
    return Caller(
        access_key_id=credential.access_key_id,
        admin=credential.admin,
        grants=credential.grants,
        canonical_id=credential.owner.id,
        name=credential.name,
    )


def _host_of(peer: str) -> str:
    """The address part of a grpc peer ("ipv4:127.0.0.1:5000" -> "127.0.0.1"): failures are
    counted per source address, not per connection."""
    _, _, address = peer.partition(":")
    return address.rpartition(":")[0] or peer


class AuthInterceptor(AroundInterceptor):
    """Verifies every guarded call's token, checks its access (``access.py``), and bounds the
    open (unauthenticated) streams.

    Health and reflection need no key, so anyone can hold their streams open (a health
    ``Watch`` lasts until the client leaves). Left alone, a thousand of them would take every
    slot of ``grpc_max_concurrent_calls`` from authenticated callers; so at most
    ``max_open_calls`` run at once, and the next is refused with RESOURCE_EXHAUSTED at once.
    A health ``Check`` answers at once and is not counted, so probes keep working.
    """

    def __init__(
        self,
        *,
        lookup: CredentialLookup,
        clock: Callable[[], float] = time.time,
        limiter: FailedAuthLimiter | None = None,
        max_open_calls: int = MAX_OPEN_CALLS,
        gatekeeper: Gatekeeper,
        secure: bool = False,
    ) -> None:
        super().__init__(open_prefixes=())
        self._gatekeeper = gatekeeper
        self._secure = secure
        self._lookup = lookup
        self._clock = clock
        self._replays = ReplayGuard()
        self._limiter = limiter or FailedAuthLimiter()
        self._max_open_calls = max_open_calls
        self._open_calls = 0

    def around(self, method: str, context: Context) -> AbstractAsyncContextManager[None]:
        if method == HEALTH_CHECK:
            return nullcontext()  # one quick answer: probes must work while streams are full
        if method.startswith(OPEN_METHOD_PREFIXES):
            return self._open(context)
        return self._verified(method, context)

    def check(self, method: str) -> Check | None:
        if method.startswith(OPEN_METHOD_PREFIXES):
            return None
        gatekeeper = self._gatekeeper
        return lambda message: enforce(method, current_caller(), message, gatekeeper)

    @asynccontextmanager
    async def _open(self, context: Context) -> AsyncIterator[None]:
        if self._max_open_calls and self._open_calls >= self._max_open_calls:
            # Aborted here: the error interceptor leaves open calls alone (see errors.py).
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"SlowDown: {self._open_calls} unauthenticated calls (health, reflection) are "
                "running, the most this server allows at once.",
            )
        self._open_calls += 1
        try:
            yield
        finally:
            self._open_calls -= 1

    @asynccontextmanager
    async def _verified(self, method: str, context: Context) -> AsyncIterator[None]:
        # Read before any await: grpc.aio's peer() is unsafe once the client may be gone.
        source = _host_of(context.peer() or "-")
        metadata = context.invocation_metadata() or ()
        try:
            caller = await authenticate(
                method, metadata, lookup=self._lookup, now=self._clock(), replays=self._replays
            )
        except AuthError as error:
            claimed = next((v for k, v in metadata if k == KEY_ID_HEADER), "")
            raise self._limiter.refuse(
                error,
                door="grpc",
                source=source,
                key_id=claimed if isinstance(claimed, str) else "",
            ) from error
        act_as(dataclasses.replace(caller, source_ip=source, secure=self._secure))
        yield
