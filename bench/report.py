"""One shape for every benchmark figure, the table ``make bench`` prints and the JSON it keeps.

Each workload is run ``rounds`` times per system, alternating the systems so they see the same
machine state; a :class:`Figure` keeps every sample and reports the median with min-max.
Ratios compare medians measured in the same run, never figures from different runs.
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Figure:
    workload: str  # e.g. "1 KiB PUT c16", "256 MiB GET"
    system: str  # "lightningstor-s3", "lightningstor-grpc", "moto", "limit"
    unit: str  # "ops/s", "MiB/s", "ms"
    samples: list[float] = field(default_factory=list)
    idle_rss_mib: float | None = None
    peak_rss_mib: float | None = None
    errors: int = 0  # failed requests seen while measuring (must be 0 to count)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    @property
    def rss_growth_mib(self) -> float | None:
        if self.idle_rss_mib is None or self.peak_rss_mib is None:
            return None
        return self.peak_rss_mib - self.idle_rss_mib

    def to_json(self) -> dict[str, object]:
        return {
            **asdict(self),
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "rss_growth_mib": self.rss_growth_mib,
        }


@dataclass
class Ratio:
    name: str  # what is compared, e.g. "1 KiB PUT c16: lightningstor-s3 / moto"
    value: float
    goal: float | None = None  # the figure the ratio must reach, when an issue sets one

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.value >= self.goal


class Report:
    def __init__(self) -> None:
        self.figures: list[Figure] = []
        self.ratios: list[Ratio] = []
        self.started = time.time()

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def find(self, workload: str, system: str) -> Figure | None:
        for figure in self.figures:
            if figure.workload == workload and figure.system == system:
                return figure
        return None

    def ratio(
        self,
        name: str,
        top: tuple[str, str],
        bottom: tuple[str, str],
        goal: float | None = None,
        *,
        lower_is_better: bool = False,
    ) -> None:
        """Add median(top) / median(bottom) (inverted for times), if both were measured."""
        a, b = self.find(*top), self.find(*bottom)
        if a is None or b is None or not a.samples or not b.samples:
            return
        value = b.median / a.median if lower_is_better else a.median / b.median
        self.ratios.append(Ratio(name, value, goal))

    def table(self) -> str:
        lines = [
            f"{'workload':28s} {'system':20s} {'median':>10s} {'min-max':>21s} {'unit':6s} "
            f"{'RSS peak (+idle)':>17s}",
        ]
        for f in self.figures:
            rss = ""
            if f.peak_rss_mib is not None and f.rss_growth_mib is not None:
                rss = f"{f.peak_rss_mib:.0f} (+{f.rss_growth_mib:.0f})"
            spread = f"{_num(f.low)}-{_num(f.high)}"
            errors = f"  {f.errors} errors" if f.errors else ""
            lines.append(
                f"{f.workload:28s} {f.system:20s} {_num(f.median):>10s} {spread:>21s} "
                f"{f.unit:6s} {rss:>17s}{errors}"
            )
        lines.append("")
        for r in self.ratios:
            verdict = ""
            if r.goal is not None:
                verdict = f"  goal >= {r.goal:.2f}: {'met' if r.met else 'MISSED'}"
            lines.append(f"{r.name:60s} {r.value:7.2f}x{verdict}")
        return "\n".join(lines)

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "commit": _commit(),
            "started": self.started,
            "machine": {"cpus": _cpus(), "python": platform.python_version()},
            "figures": [f.to_json() for f in self.figures],
            "ratios": [{**asdict(r), "met": r.met} for r in self.ratios],
        }
        path.write_text(json.dumps(document, indent=2) + "\n")


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _cpus() -> int:
    import os  # noqa: PLC0415

    return len(os.sched_getaffinity(0))


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()
