"""Conditional deletes through the in-process S3 door: If-Match, x-amz-if-match-size and
x-amz-if-match-last-modified-time, decided in the delete's own commit."""

from __future__ import annotations

from pathlib import Path

from tests.s3.test_handlers import Door, code_of
from tests.s3.test_tagging_handlers import run


def test_conditional_deletes_are_decided_with_the_delete(tmp_path: Path) -> None:
    async def scenario(d: Door) -> None:
        await d.call("PUT", "/cond")
        etag = (await d.call("PUT", "/cond/k", b"four"))[1]["ETag"]
        refusals = (
            {"If-Match": '"0123"'},
            {"x-amz-if-match-size": "5"},
            {"x-amz-if-match-last-modified-time": "Thu, 01 Jan 2015 00:00:00 GMT"},
        )
        for headers in refusals:
            status, _, body = await d.call("DELETE", "/cond/k", headers=headers)
            assert (status, code_of(body)) == (412, "PreconditionFailed")
            assert (await d.call("GET", "/cond/k"))[2] == b"four"
        status, _, body = await d.call("DELETE", "/cond/k", headers={"x-amz-if-match-size": "x"})
        assert (status, code_of(body)) == (400, "InvalidArgument")
        modified = (await d.call("HEAD", "/cond/k"))[1]["Last-Modified"]
        matching = {
            "If-Match": etag,
            "x-amz-if-match-size": "4",
            "x-amz-if-match-last-modified-time": modified,
        }
        assert (await d.call("DELETE", "/cond/k", headers=matching))[0] == 204
        assert (await d.call("GET", "/cond/k"))[0] == 404
        # Nothing to delete is no failure, conditional or not.
        assert (await d.call("DELETE", "/cond/k", headers={"If-Match": '"0123"'}))[0] == 204

    run(tmp_path, scenario)
