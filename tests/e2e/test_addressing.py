"""Virtual-hosted-style addressing under configured domains; path style everywhere else."""

from __future__ import annotations

import hashlib
import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import Daemon, boto3_client
from tests.signing import sign

DOMAIN = "s3.lightningstor.test"


@pytest.fixture(scope="module")
def vhost_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(
        tmp_path_factory.mktemp("vhost") / "data",
        extra_env={"LIGHTNINGSTOR_VIRTUAL_HOST_DOMAINS": DOMAIN},
    ).start()
    yield d
    d.stop()


def _request(
    daemon: Daemon, method: str, host: str, path: str, body: bytes = b""
) -> tuple[int, bytes]:
    url = f"http://{host}:{daemon.s3_port}{path}"
    headers = sign(
        method,
        url,
        headers={"Content-Length": str(len(body))},
        payload_hash=hashlib.sha256(body).hexdigest(),
    )
    conn = http.client.HTTPConnection("127.0.0.1", daemon.s3_port, timeout=10)
    conn.request(method, path, body=body, headers={**headers, "Host": f"{host}:{daemon.s3_port}"})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def test_virtual_hosted_and_path_style_reach_the_same_objects(vhost_daemon: Daemon) -> None:
    s3 = boto3_client(vhost_daemon)
    s3.create_bucket(Bucket="vhosted")
    status, _ = _request(
        vhost_daemon, "PUT", f"vhosted.{DOMAIN}", "/dir/a b.txt".replace(" ", "%20"), b"via vhost"
    )
    assert status == 200
    assert s3.get_object(Bucket="vhosted", Key="dir/a b.txt")["Body"].read() == b"via vhost"
    status, listing = _request(vhost_daemon, "GET", f"vhosted.{DOMAIN}", "/?list-type=2")
    assert status == 200
    assert b"<Key>dir/a b.txt</Key>" in listing
    # The bare domain and other names stay path-style.
    status, _ = _request(vhost_daemon, "GET", DOMAIN, "/vhosted/dir/a%20b.txt")
    assert status == 200
    status, body = _request(vhost_daemon, "GET", f"missing.{DOMAIN}", "/x")
    assert (status, b"<Code>NoSuchBucket</Code>" in body) == (404, True)
    s3.close()


def test_unconfigured_domains_are_path_style(daemon: Daemon, tmp_path: Path) -> None:
    s3 = boto3_client(daemon)
    s3.create_bucket(Bucket="pathstyle")
    status, body = _request(daemon, "GET", f"pathstyle.{DOMAIN}", "/pathstyle?list-type=2")
    assert status == 200, body
    s3.close()
