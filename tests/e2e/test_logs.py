"""What an operator reads (issue 20, item 6): JSON logs with a key per field, access lines
that keep the operation and the caller on refusals, and a download the client closes early
logged as the ordinary event it is, with the bytes that went out."""

from __future__ import annotations

import http.client
import json
import os
import time

from tests.daemon import Daemon, boto3_client
from tests.e2e.test_access import admin_cli, s3_as
from tests.signing import sign

BIG = os.urandom(20 << 20)


def access_lines(daemon: Daemon) -> list[dict[str, object]]:
    entries = [json.loads(line) for line in daemon.log_text().splitlines() if line.startswith("{")]
    return [e for e in entries if e.get("logger") == "lightningstor.s3" and "op" in e]


def test_json_access_lines_and_an_early_close(fresh_daemon: Daemon) -> None:
    fresh_daemon.extra_env["LIGHTNINGSTOR_LOG_FORMAT"] = "json"
    fresh_daemon.start()
    s3 = boto3_client(fresh_daemon)
    s3.create_bucket(Bucket="logged")
    s3.put_object(Bucket="logged", Key="big", Body=BIG)
    # A key that may do nothing here is refused, and its line still names it and the operation.
    made = admin_cli(fresh_daemon, "create", "nobody-special")
    other = s3_as(fresh_daemon, made["access_key_id"], made["secret_access_key"])
    try:
        other.get_object(Bucket="logged", Key="big")
    except other.exceptions.ClientError as refused:
        assert refused.response["Error"]["Code"] == "AccessDenied"
    # The client reads 1 MiB of 20 and hangs up, as s3fs and `curl | head` do.
    headers = sign("GET", f"{fresh_daemon.endpoint}/logged/big")
    conn = http.client.HTTPConnection("127.0.0.1", fresh_daemon.s3_port, timeout=30)
    conn.request("GET", "/logged/big", headers=headers)
    reply = conn.getresponse()
    assert reply.status == 200 and len(reply.read(1 << 20)) == 1 << 20
    conn.close()
    deadline = time.monotonic() + 30  # the server sees the close at its next write
    while '"code": "ClientGone"' not in fresh_daemon.log_text():
        assert time.monotonic() < deadline, "no access line for the closed download"
        time.sleep(0.1)
    s3.head_object(Bucket="logged", Key="big")  # and serves on
    assert fresh_daemon.stop() == 0
    lines = access_lines(fresh_daemon)
    (denied,) = [e for e in lines if e["code"] == "AccessDenied"]
    assert (denied["op"], denied["status"], denied["key_id"]) == (
        "GetObject", 403, made["access_key_id"]
    )  # fmt: skip
    (closed,) = [e for e in lines if e["code"] == "ClientGone"]
    assert (closed["op"], closed["status"]) == ("GetObject", 200)
    assert 1 << 20 <= int(str(closed["bytes_sent"])) < len(BIG)
    assert all(isinstance(e["ms"], str) and e["request"] for e in lines)
    entries = [
        json.loads(line) for line in fresh_daemon.log_text().splitlines() if line.startswith("{")
    ]
    assert not [e for e in entries if e["level"] == "error"], "an early close is no error"
    assert any("client closed the download of big" in e["message"] for e in entries)
