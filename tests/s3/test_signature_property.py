"""Property: a signature binds exactly the request that runs.

Random requests (keys and query values full of reserved characters, sub-resources, listing
filters, empty values and names, duplicate parameters) are signed by botocore's own signers:
SigV4 header, SigV4 presigned, SigV2 header and SigV2 presigned, path-style and
virtual-hosted. Each goes through the S3 door's real preflight (target parse, router,
authentication), in process:

- signed as generated, it runs exactly the operation, bucket, key and parameters it was
  built for (a request with a parameter given twice is refused instead: no signature can say
  which copy was meant);
- changed in any one byte of its target or of a signed header, it is refused, or it runs
  exactly what the original ran (``%2f`` for ``%2F``, say, names the same key).

SigV2 signs no listing filter (``prefix``, ``max-keys``...) and not ``list-type``: that is
AWS's definition of it, so for SigV2 those parameters are left out of what "the same request"
compares, and ListObjects and ListObjectsV2 of one bucket count as the same operation (an
unsigned filter can swallow ``&list-type=2``; either lists the same keys the same key may read).

``make test`` runs a few hundred requests; ``make soak`` (LIGHTNINGSTOR_SOAK=1) thousands.
"""

from __future__ import annotations

import asyncio
import os
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp.test_utils import make_mocked_request
from botocore.auth import HmacV1Auth, HmacV1QueryAuth, S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightningstor.auth.credentials import Credential
from lightningstor.errors import StorageError
from lightningstor.model import Owner
from lightningstor.objects.store import ObjectStore
from lightningstor.offload import Offloader
from lightningstor_server.ratelimit import FailedAuthLimiter
from lightningstor_server.s3.app import S3App, make_gateway
from lightningstor_server.s3.presign import AUTH_QUERY_PARAMETERS, V2_UNSIGNED_PARAMETERS

KEY_ID, SECRET = "AKIDPROPERTYTEST0001", "property-test-secret-0001"
DOMAIN = "vh.example.test"
BUCKETS = ("alpha", "beta-1")
SOAK = os.environ.get("LIGHTNINGSTOR_SOAK") == "1"
CASES = settings(
    max_examples=4000 if SOAK else 250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MUTATIONS = 12 if SOAK else 6
# What SigV2 leaves unsigned by AWS's definition (presign.py); SigV4 signs every parameter.
V2_UNSIGNED = V2_UNSIGNED_PARAMETERS


async def _lookup(key_id: str) -> Credential | None:
    if key_id != KEY_ID:
        return None
    return Credential(
        access_key_id=KEY_ID, secret_access_key=SECRET, name="prop", admin=True, active=True
    )


@dataclass(frozen=True)
class Operation:
    method: str
    level: str  # "service", "bucket" or "object"
    selects: tuple[tuple[str, str], ...]  # the parameters that pick the operation
    name: str
    filters: tuple[str, ...] = ()  # parameters that modify it


_LISTING = ("prefix", "delimiter", "marker", "max-keys", "encoding-type")
OPERATIONS = [
    Operation("GET", "service", (), "ListBuckets"),
    Operation("GET", "bucket", (), "ListObjects", _LISTING),
    Operation("GET", "bucket", (("list-type", "2"),), "ListObjectsV2", ("prefix", "start-after")),
    Operation("HEAD", "bucket", (), "HeadBucket"),
    Operation("GET", "bucket", (("location", ""),), "GetBucketLocation"),
    Operation("GET", "bucket", (("uploads", ""),), "ListMultipartUploads", ("prefix",)),
    Operation("GET", "bucket", (("versions", ""),), "ListObjectVersions", ("prefix",)),
    Operation("GET", "bucket", (("versioning", ""),), "GetBucketVersioning"),
    Operation("GET", "object", (), "GetObject", ("response-content-type",)),
    Operation("HEAD", "object", (), "HeadObject"),
    Operation("DELETE", "object", (), "DeleteObject"),
    Operation("PUT", "object", (), "PutObject"),
    Operation("GET", "object", (("acl", ""),), "GetObjectAcl"),
    Operation("GET", "object", (("tagging", ""),), "GetObjectTagging"),
    Operation("GET", "object", (("uploadId", "u-1"),), "ListParts", ("max-parts",)),
    Operation("DELETE", "object", (("uploadId", "u-1"),), "AbortMultipartUpload"),
    Operation("PUT", "object", (("partNumber", "3"), ("uploadId", "u-1")), "UploadPart"),
    Operation("POST", "object", (("uploads", ""),), "CreateMultipartUpload"),
    Operation("POST", "object", (("uploadId", "u-1"),), "CompleteMultipartUpload"),
]
RESERVED = "/?#&=+%;:@!$'()*,[]{}|^`\"<>\\ ~\t\n"
text = st.text(
    alphabet=st.sampled_from(string.ascii_letters + string.digits + RESERVED + "é€😀-_."),
    max_size=24,
)
NUMERIC = frozenset({"max-keys", "max-parts"})
numbers = st.integers(0, 5000).map(str)
keys = text.filter(lambda k: (bool(k) and k[0] != "/") or len(k) > 1)


@dataclass(frozen=True)
class Case:
    operation: Operation
    bucket: str
    key: str
    params: tuple[tuple[str, str], ...]  # decoded, in the order sent
    signer: str  # v4-header, v4-query, v2-header, v2-query
    virtual: bool

    @property
    def query(self) -> str:
        return "&".join(
            percent_encode(name) + (f"={percent_encode(value)}" if value or name == "" else "")
            for name, value in self.params
        )

    @property
    def signed_params(self) -> tuple[tuple[str, str], ...]:
        """The parameters botocore signs: its SigV4 presigner keeps the first of repeated ones
        (parse_qs, then a dict); the other signers sign the query as it is."""
        if self.signer != "v4-query":
            return self.params
        parsed = parse_qs(self.query, keep_blank_values=True)
        return tuple((name, values[0]) for name, values in parsed.items())


@st.composite
def cases(draw: st.DrawFn) -> Case:
    operation = draw(st.sampled_from(OPERATIONS))
    params = list(operation.selects)
    if operation.filters:
        filters = draw(st.lists(st.sampled_from(operation.filters), unique=True, max_size=3))
        # A count that is not a number is refused by the router (nothing runs), so counts
        # are numbers here; the mutations still turn them into anything.
        params.extend((name, draw(numbers if name in NUMERIC else text)) for name in filters)
    if draw(st.integers(0, 9)) == 0:
        params.append(("", draw(text)))  # an empty parameter name selects nothing: refused
    if params and draw(st.integers(0, 9)) == 0:
        params.append(draw(st.sampled_from(params)))  # the same parameter twice
    params = draw(st.permutations(params))
    level = operation.level
    signer = draw(st.sampled_from(["v4-header", "v4-query", "v2-header", "v2-query"]))
    return Case(
        operation=operation,
        bucket="" if level == "service" else draw(st.sampled_from(BUCKETS)),
        key=draw(keys) if level == "object" else "",
        params=tuple(params),
        signer=signer,
        virtual=level != "service" and draw(st.booleans()),
    )


@dataclass(frozen=True)
class Wire:
    method: str
    target: str
    headers: dict[str, str]


def signed(case: Case) -> Wire:
    """The request as botocore's signer for ``case.signer`` makes it."""
    path = "/" + percent_encode(case.key, safe="/~")
    if case.bucket and not case.virtual:
        path = f"/{case.bucket}" + (path if case.key else "")
    host = f"{case.bucket}.{DOMAIN}" if case.virtual else "s3.local.test"
    url = f"http://{host}{path}" + (f"?{case.query}" if case.query else "")
    request = AWSRequest(method=case.operation.method, url=url, headers={})
    credentials = Credentials(KEY_ID, SECRET)
    if case.signer.startswith("v2"):
        # botocore signs the path-style resource, a bucket's own as "/bucket/".
        bucket_path = f"/{case.bucket}/" if case.bucket else "/"
        request.auth_path = bucket_path + percent_encode(case.key, safe="/~")
    if case.signer == "v4-header":
        request.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
        S3SigV4Auth(credentials, "s3", "us-east-1").add_auth(request)
    elif case.signer == "v4-query":
        S3SigV4QueryAuth(credentials, "s3", "us-east-1", expires=600).add_auth(request)
    elif case.signer == "v2-header":
        HmacV1Auth(credentials).add_auth(request)
    else:
        HmacV1QueryAuth(credentials, expires=600).add_auth(request)
    final = request.url.split(host, 1)[1]
    headers = {k: v if isinstance(v, str) else v.decode() for k, v in request.headers.items()}
    return Wire(case.operation.method, final, {**headers, "Host": host})


Executed = tuple[str, str, str, str, tuple[tuple[str, str], ...]]


@pytest.fixture(scope="module")
def door(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[S3App, asyncio.AbstractEventLoop]]:
    loop = asyncio.new_event_loop()
    offloader = Offloader(workers=2)
    store = ObjectStore.open(Path(tmp_path_factory.mktemp("prop")), offloader=offloader)
    for bucket in BUCKETS:
        loop.run_until_complete(store.create_bucket(bucket, owner=Owner(KEY_ID)))
    app = make_gateway(
        store,
        offloader=offloader,
        region="us-east-1",
        lookup=_lookup,
        virtual_host_domains=(DOMAIN,),
        limiter=FailedAuthLimiter(failures=0),  # every mutation fails: none may be SlowDown
    )
    yield app, loop
    store.close()
    offloader.shutdown()
    loop.close()


def run(door: tuple[S3App, Any], wire: Wire, v2: bool) -> Executed | None:
    """What the door would run for ``wire``, or None if it refuses it."""
    app, loop = door
    try:
        request = make_mocked_request(wire.method, wire.target, headers=wire.headers)
    except ValueError:
        return None  # a target no HTTP parser accepts ("//[0") never reaches the door
    try:
        endpoint, _ = loop.run_until_complete(app.preflight(request))
    except StorageError:
        return None
    target = app.target(request)
    ignored = AUTH_QUERY_PARAMETERS | (V2_UNSIGNED if v2 else frozenset())
    params = tuple(sorted(p for p in target.params if p[0] not in ignored))
    operation = endpoint.operation
    if v2 and operation == "ListObjectsV2":
        operation = "ListObjects"
    return (wire.method, operation, endpoint.bucket, endpoint.key, params)


def _mutations(wire: Wire, signer: str, seed: int) -> Iterator[Wire]:
    """``wire`` with one byte of its target, or of a signed header's value, changed."""
    rng = random.Random(seed)
    signed_headers = ["Host", "X-Amz-Date", "X-Amz-Content-SHA256", "Authorization"]
    if signer == "v2-header":
        signed_headers = ["Host", "Date", "Authorization"]
    elif signer.endswith("query"):
        signed_headers = ["Host"]
    for _ in range(MUTATIONS):
        byte = chr(rng.randrange(0x21, 0x7F))
        where = rng.choice(["target", "target", "header"])
        if where == "target":
            at = rng.randrange(len(wire.target))
            if wire.target[at] == byte:
                continue
            yield Wire(wire.method, wire.target[:at] + byte + wire.target[at + 1 :], wire.headers)
            continue
        name = rng.choice([h for h in signed_headers if h in wire.headers])
        value = wire.headers[name]
        at = rng.randrange(len(value))
        if value[at] == byte:
            continue
        changed = value[:at] + byte + value[at + 1 :]
        yield Wire(wire.method, wire.target, {**wire.headers, name: changed})


@CASES
@given(case=cases(), seed=st.integers(0, 2**32))
def test_a_signature_binds_exactly_what_runs(
    door: tuple[S3App, Any], case: Case, seed: int
) -> None:
    v2 = case.signer.startswith("v2")
    wire = signed(case)
    executed = run(door, wire, v2)
    params = case.signed_params
    names = [name for name, _ in params]
    if len(set(names)) != len(names) or "" in names:
        assert executed is None, wire  # refused: a repeated or nameless parameter
        return
    ignored = V2_UNSIGNED if v2 else frozenset()
    expected_params = tuple(sorted(p for p in params if p[0] not in ignored))
    name = case.operation.name
    assert executed == (
        case.operation.method,
        "ListObjects" if v2 and name == "ListObjectsV2" else name,
        case.bucket,
        case.key,
        expected_params,
    ), wire
    for mutated in _mutations(wire, case.signer, seed):
        outcome = run(door, mutated, v2)
        assert outcome is None or outcome == executed, (wire, mutated, outcome)
