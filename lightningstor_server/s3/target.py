"""The request target, parsed once: what signatures are checked over is what is routed.

A signature binds a request only if the bytes it covers decide the operation, bucket and key
that run. So the target is parsed here, once, and everything downstream reads this parse: the
SigV4 canonical URI and query are rendered from it, SigV2's canonical resource too, the router
picks the operation from it and handlers read their parameters from it. Nothing reads aiohttp's
own ``request.path`` or ``request.query``, which are parsed by other rules (yarl drops a
fragment, for one).

What is refused here, before authentication (400 InvalidURI):

- a target that is not in origin form (``/path?query``, RFC 9112 section 3.2.1);
- any character RFC 3986 does not allow in a path or query (RFC 9112 section 3.2 requires a
  valid URI reference): ``#`` above all, which most parsers treat as the end of the target,
  but also spaces, controls, non-ASCII bytes, ``"<>\\^`{|}`` and ``[]``;
- a ``%`` not followed by two hex digits, or escapes that are not UTF-8;
- a query parameter given twice: a signature over the sorted query cannot say which copy
  was meant, so neither is executed.

Decoding follows S3: the path is percent-decoded once and ``+`` stays a plus; in the query,
``+`` is a space, as in HTML forms (so ``prefix=a+b`` lists ``a b``, and its canonical form is
``a%20b``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from multidict import MultiDict, MultiDictProxy

from lightningstor_server.s3.errors import InvalidURI

# RFC 3986: pchar = unreserved / pct-encoded / sub-delims / ":" / "@"; a path adds "/", a query
# adds "/" and "?". pct-encoded is checked separately (a "%" and two hex digits).
_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
_QUERY = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestTarget:
    """One request target, validated and decoded (see the module docstring)."""

    raw_path: str  # before "?", exactly as received
    raw_query: str  # after "?", exactly as received
    path: str  # raw_path percent-decoded once
    params: tuple[tuple[str, str], ...]  # decoded (name, value) pairs, in request order
    query: MultiDictProxy[str]  # the same pairs, for the router and handlers
    bucket_from_host: str = ""  # the bucket a virtual-hosted Host names, or ""

    @property
    def routed_path(self) -> str:
        """The path-style form: ``/bucket/key`` whichever addressing the client used."""
        return f"/{self.bucket_from_host}{self.path}" if self.bucket_from_host else self.path

    @property
    def routed_raw_path(self) -> str:
        """The raw path in path-style form (what SigV2's canonical resource starts with)."""
        if not self.bucket_from_host:
            return self.raw_path
        return f"/{self.bucket_from_host}{self.raw_path}"

    def without(self, name: str) -> tuple[tuple[str, str], ...]:
        """The parameters without ``name`` (a presigned URL's signature is not signed)."""
        return tuple(pair for pair in self.params if pair[0] != name)


def percent_decode(text: str) -> str:
    """``text`` with its %XX escapes decoded as UTF-8, which they must be.

    Decoding with replacement would give every invalid escape (``%FF``, ``%C3``) the canonical
    form of U+FFFD, so one signature would cover several different request targets.
    """
    if "%" not in text:
        return text
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise InvalidURI(
            "Couldn't parse the specified URI: a percent-encoded sequence in it is not UTF-8."
        ) from None


def parse_target(raw_target: str, *, bucket_from_host: str = "") -> RequestTarget:
    """Raises InvalidURI for anything the module docstring says is refused."""
    raw_path, mark, raw_query = raw_target.partition("?")
    if not _PATH.fullmatch(raw_path) or (mark and not _QUERY.fullmatch(raw_query)):
        raise InvalidURI(
            "Couldn't parse the specified URI: it must be an origin-form target (/path?query) "
            "of the characters RFC 3986 allows; '#', spaces and non-ASCII must be "
            "percent-encoded."
        )
    if _BAD_ESCAPE.search(raw_target):
        raise InvalidURI("Couldn't parse the specified URI: '%' must start a %XX escape.")
    params = _decode_query(raw_query)
    seen: set[str] = set()
    for name, _ in params:
        if name in seen:
            raise InvalidURI(
                f"Couldn't parse the specified URI: the query parameter {name!r} is given twice.",
                resource=name,
            )
        seen.add(name)
    return RequestTarget(
        raw_path=raw_path,
        raw_query=raw_query,
        path=percent_decode(raw_path),
        params=params,
        query=MultiDictProxy(MultiDict(params)),
        bucket_from_host=bucket_from_host,
    )


def _decode_query(raw_query: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in raw_query.split("&"):
        if not item:
            continue  # "a&&b": empty items name nothing, for the router and the signature alike
        name, _, value = item.partition("=")
        pairs.append(
            (percent_decode(name.replace("+", " ")), percent_decode(value.replace("+", " ")))
        )
    return tuple(pairs)


def bucket_from_host(host: str, domains: tuple[str, ...]) -> str:
    """The bucket a virtual-hosted request names: ``b.example.com`` -> ``b``, else "".

    Only Hosts under a configured domain select a bucket; IPs, ``localhost:port`` and every
    other name stay path-style (the SDKs' default for a custom endpoint).
    """
    name = host.rpartition(":")[0] if host.count(":") == 1 else host
    name = name.lower().rstrip(".")
    for domain in domains:
        if name.endswith("." + domain):
            return name[: -len(domain) - 1]
    return ""
