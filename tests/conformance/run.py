"""``make conformance``: the public Ceph S3 conformance suite against a throwaway daemon.

Starts a daemon on free ports (its own data directory, its metrics port too) with a second,
non-admin key for the suite's "alt" user, runs a selection of ceph/s3-tests through the
suite's own runner (``s3tests-run`` in the conformance kit), prints its ``N passed, N failed``
and leaves a JUnit report. With ``--ratchet FILE`` it fails when any test listed in FILE did
not pass, and lists the tests that pass but are not listed yet (``--update`` adds them: the
list only grows).

The kit (ceph/s3-tests at a pinned commit, the core and extended selections and the runner) is
``../shared/conformance`` in this workplace; elsewhere get ceph/s3-tests from GitHub at commit
8f0ae7b and point ``--suite`` (make: ``CONFORMANCE=``) at a folder holding it as ``s3-tests/``
beside ``s3tests-run``, ``core.txt`` and ``extended.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from lightningstor.client.admin import AdminClient
from lightningstor.testing import ACCESS_KEY, SECRET_KEY, Daemon

SELECTIONS = ("core", "extended")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.conformance.run", description=__doc__)
    parser.add_argument("--suite", type=Path, default=Path("../shared/conformance"))
    parser.add_argument(
        "--select",
        action="append",
        choices=(*SELECTIONS, "all"),
        help="core (default), extended or all; repeat to run several as one",
    )
    parser.add_argument("--junit", type=Path, default=Path("var/conformance/junit.xml"))
    parser.add_argument("--ratchet", type=Path, help="test ids that must pass, one per line")
    parser.add_argument("--update", action="store_true", help="add newly passing tests to it")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression, to run a few tests")
    args = parser.parse_args(argv)
    runner = args.suite / "s3tests-run"
    if not runner.is_file():
        print(
            f"conformance: no suite at {args.suite} (want s3tests-run, core.txt, extended.txt "
            "and s3-tests/: ceph/s3-tests on GitHub, commit 8f0ae7b); set CONFORMANCE=",
            file=sys.stderr,
        )
        return 2
    selections = args.select or ["core"]
    # The daemon's data and log stay beside the report until the next run, for a look.
    work = args.junit.parent / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    selection = None if "all" in selections else _combined(args.suite, selections, work)
    passed = _run(runner, selection, args.junit, args.keyword, work)
    if passed is None:
        return 2
    if args.ratchet is None:
        return 0
    return _check_ratchet(args.ratchet, passed, update=args.update)


def _combined(suite: Path, selections: Iterable[str], work: Path) -> Path:
    combined = work / "selection.txt"
    combined.write_text(
        "".join((suite / f"{name}.txt").read_text(encoding="utf-8") for name in selections)
    )
    return combined


def _run(
    runner: Path, selection: Path | None, junit: Path, keyword: str | None, work: Path
) -> set[str] | None:
    """The ids of the tests that passed, or None when the suite could not run."""
    daemon = Daemon(work / "data", extra_env=PERMISSIVE | SUITE_LIFECYCLE_DAY).start()
    try:
        (main_key, main_secret), (alt_key, alt_secret) = asyncio.run(_suite_keys(daemon))
        command = [str(runner), "--host", "127.0.0.1", "--port", str(daemon.s3_port)]
        command += ["--access", main_key, "--secret", main_secret]
        command += ["--alt-access", alt_key, "--alt-secret", alt_secret, "--junit", str(junit)]
        if selection is not None:
            command += ["--select", str(selection)]
        if keyword:
            command += ["-k", keyword]
        done = subprocess.run(command, check=False)
    finally:
        daemon.stop()
    if done.returncode == 2 or not junit.is_file():
        print("conformance: the suite did not run (see above)", file=sys.stderr)
        return None
    print(f"conformance: JUnit report in {junit}; daemon log in {daemon.log_path}")
    return passing_tests(junit)


async def _suite_keys(daemon: Daemon) -> tuple[tuple[str, str], tuple[str, str]]:
    """The suite's main and alt users: two keys that are not admin (each owns what it creates,
    as two AWS accounts do), named as the suite's configuration names them: the tests compare
    owners' ids and names."""
    async with AdminClient(
        daemon.grpc_target, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
    ) as admin:
        made = [
            await admin.create(name, canonical_id=name) for name in ("s3tests-main", "s3tests-alt")
        ]
    main, alt = ((m.key.access_key_id, m.secret_access_key) for m in made)
    return main, alt


# The suite assumes a server on which ACLs and public access can be turned on, as on RGW; our
# defaults are AWS's (closed). These two operator settings open it (README "Conformance").
PERMISSIVE = {
    "LIGHTNINGSTOR_BLOCK_PUBLIC_ACCESS": "false",
    "LIGHTNINGSTOR_LEGACY_BUCKET_DEFAULTS": "true",
}


# The suite's lifecycle tests count a rule's day as lc_debug_interval seconds (10 unless its
# configuration says otherwise, and s3tests-run sets nothing), as RGW's rgw_lc_debug_interval
# does; the worker then makes a pass every second so that a due action is at most a second
# late against sleeps of 2-10 such days.
SUITE_LIFECYCLE_DAY = {
    "LIGHTNINGSTOR_LIFECYCLE_DAY_SECONDS": "10",
    "LIGHTNINGSTOR_LIFECYCLE_INTERVAL_SECONDS": "1",
}


def passing_tests(junit: Path) -> set[str]:
    """Test ids that passed every phase (a teardown error fails a test, as s3tests-run says)."""
    outcome: dict[str, bool] = {}
    for case in ET.parse(junit).iter("testcase"):
        module = case.get("classname", "").replace(".", "/")
        nodeid = f"{module}.py::{case.get('name')}"
        ok = not any(child.tag in ("failure", "error", "skipped") for child in case)
        outcome[nodeid] = outcome.get(nodeid, True) and ok
    return {nodeid for nodeid, ok in outcome.items() if ok}


def _check_ratchet(path: Path, passed: set[str], *, update: bool) -> int:
    listed = {line.strip() for line in path.read_text().splitlines() if line.strip()}
    lost = sorted(listed - passed)
    gained = sorted(passed - listed)
    for nodeid in lost:
        print(f"conformance: REGRESSION, listed but not passing: {nodeid}")
    for nodeid in gained:
        print(f"conformance: passes, not yet listed: {nodeid}")
    if update and gained:
        path.write_text("".join(f"{n}\n" for n in sorted(listed | passed)))
        print(f"conformance: added {len(gained)} tests to {path}")
    print(f"conformance: ratchet {len(listed) - len(lost)}/{len(listed)} listed tests pass")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
