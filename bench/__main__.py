"""``make bench``: every workload of the performance issue in one run, one table, one JSON file.

``python -m bench [--quick] [--only NAME ...] [--json PATH]``; ``--quick`` shrinks sizes and
durations to check the harness itself, its figures are not the ones to quote.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import large_object, lifecycle, limits, listing, multipart, smallops
from bench.common import ASYNCIO, GRPC, LIMIT, MOTO, OURS
from bench.report import Report
from lightningstor_server.cli import tune_malloc

SUITES = {
    "limits": limits.run,
    "smallops": smallops.run,
    "large": large_object.run,
    "multipart": multipart.run,
    "listing": listing.run,
    "lifecycle": lifecycle.run,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", choices=sorted(SUITES), default=None)
    parser.add_argument("--json", type=Path, default=Path("bench/results/latest.json"))
    args = parser.parse_args()
    # The gRPC workloads' client is the shipped Python Client, in this process. It gets the
    # daemon's allocator settings, as any process streaming GB/s through Python bytes should:
    # untuned, its 2 MiB messages were faulted in page by page and the client, not the daemon,
    # set the gRPC GET rate (256 MiB: 610-724 MiB/s untuned, 1,118-1,409 tuned, same VM).
    tune_malloc()
    report = Report()
    for name, run in SUITES.items():
        if args.only is None or name in args.only:
            print(f"== {name}", flush=True)
            run(report, quick=args.quick)
    add_goal_ratios(report)
    print(report.table())
    report.write_json(args.json)
    print(f"JSON: {args.json}")


def add_goal_ratios(report: Report) -> None:
    """The issue's goals, each a ratio of two medians from this run."""
    ours, grpc_, moto, limit = OURS, GRPC, MOTO, LIMIT  # the names the suites report under
    for c in (1, 16, 64):
        for op in ("PUT", "GET", "HEAD", "DELETE"):
            goal = {("PUT", 16): 5.0, ("GET", 16): 10.0}.get((op, c))
            work = f"1 KiB {op} c{c}"
            report.ratio(f"{work}: S3 / moto", (work, ours), (work, moto), goal)
            report.ratio(f"{work}: gRPC / S3", (work, grpc_), (work, ours))
            report.ratio(f"{work}: uvloop / asyncio", (work, ours), (work, ASYNCIO))
    for size in ("256 MiB", "1 GiB"):
        report.ratio(
            f"{size} PUT: S3 / single-core MD5+SHA-256",
            (f"{size} PUT", ours),
            ("MD5+SHA-256 one core", limit),
            0.7 if size == "256 MiB" else None,
        )
        report.ratio(
            f"{size} GET (verified): S3 / loopback TCP",
            (f"{size} GET", ours),
            ("loopback TCP", limit),
            0.5 if size == "256 MiB" else None,
        )
        for op in ("PUT", "GET"):
            work = f"{size} {op}"
            report.ratio(f"{work}: gRPC / S3", (work, grpc_), (work, ours), 1 / 1.5)
            report.ratio(f"{work}: S3 / moto", (work, ours), (work, moto))
            report.ratio(f"{work}: uvloop / asyncio", (work, ours), (work, ASYNCIO))
    multipart = "multipart 8x parallel"
    report.ratio(f"{multipart}: S3 / moto", (multipart, ours), (multipart, moto))
    for work in ("list 100k flat page", "list 100k delimiter page"):
        report.ratio(f"{work}: moto time / ours", (work, ours), (work, moto), lower_is_better=True)
    versions = "list 100k versions page"
    report.ratio(
        f"{versions}: 100 ms budget / ours",
        (versions, ours),
        (versions, limit),
        1.0,
        lower_is_better=True,
    )
    report.ratio(
        f"{versions}: flat page time / versions page",
        (versions, ours),
        ("list 100k flat page", ours),
        lower_is_better=True,
    )
    # Issue 19: a lifecycle pass (expiring 100,000 objects, default pacing) and small GETs.
    without = ("1 KiB GET c16 no pass", ours)
    report.ratio(
        "1 KiB GET c16 during a lifecycle pass / without",
        ("1 KiB GET c16 in pass", ours),
        without,
        0.8,
    )
    report.ratio(
        "1 KiB GET c16 during an unpaced lifecycle pass / without",
        ("1 KiB GET c16 in fast pass", ours),
        without,
    )
    report.ratio(
        "lifecycle expiry during 1 KiB GET c16 / without GETs",
        ("expired/s in pass", ours),
        ("expired/s, no GETs", ours),
    )


if __name__ == "__main__":
    main()
