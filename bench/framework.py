"""The benchmark framework's contract: what a scenario hands back, the ratios derived from it,
and the helpers scenarios share.

A scenario is a module ``bench/scenarios/<name>.py`` with ``NAME``, ``TITLE`` and
``run(quick: bool) -> Scenario``. It measures Echo and its peers in the same process run and
hands back raw samples (one value per run); everything derived (median, min, max, ratios,
whether a target is met) is computed here, the same way for every scenario. Running the
scenarios and writing ``results.json`` is ``bench/runner.py``'s job, the printed tables
``bench/tables.py``'s and ``results.png`` ``bench/chart.py``'s.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import math
import os
import shutil
import statistics
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Comparison",
    "Row",
    "Scenario",
    "Target",
    "comparisons",
    "package_version",
    "redis_url",
    "scratch_dir",
    "unique_prefix",
]

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
"""Where a run writes (ignored by git): measuring never dirties a clone."""
ROLES = ("echo", "peer", "ceiling", "baseline")


# --- the contract scenarios code against ------------------------------------------------------


@dataclass
class Row:
    subject: str  # "Echo, journal everysec" / "LangChain FileChatMessageHistory" / ...
    metric: str  # unit: "messages/s", "ms", "MiB"
    samples: list[float]  # one value per run
    role: str = "echo"  # "echo" | "peer" | "ceiling" | "baseline"
    higher_is_better: bool = True
    group: str = ""  # rows are compared only within the same group + metric

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else math.nan

    @property
    def min(self) -> float:
        return min(self.samples) if self.samples else math.nan

    @property
    def max(self) -> float:
        return max(self.samples) if self.samples else math.nan

    @property
    def n(self) -> int:
        return len(self.samples)


@dataclass
class Target:
    label: str  # "recording vs FileChatMessageHistory"
    measured: float
    goal: float
    higher_is_better: bool  # met if measured >= goal (or <= goal)
    unit: str = ""  # "x", "%", "ms", ...

    @property
    def met(self) -> bool:
        if self.measured is None or math.isnan(self.measured):
            return False
        return self.measured >= self.goal if self.higher_is_better else self.measured <= self.goal


@dataclass
class Scenario:
    name: str  # the --only NAME
    title: str
    rows: list[Row]
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- ratios ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One Echo row against one peer, ceiling or baseline row of the same group and metric.

    ``value`` is oriented so that a larger number is better for Echo: for a peer or a
    baseline it is a ratio (2.0: Echo is twice as good), for a ceiling the percentage of the
    ceiling Echo reaches.
    """

    subject: str
    against: str
    against_role: str
    group: str
    metric: str
    value: float

    @property
    def kind(self) -> str:
        return "% of ceiling" if self.against_role == "ceiling" else "x"

    def text(self) -> str:
        if math.isnan(self.value):
            return f"n/a vs {self.against}"
        if self.against_role == "ceiling":
            return f"{self.value:.0f}% of {self.against}"
        return f"{_ratio(self.value)} vs {self.against}"


def comparisons(scenario: Scenario) -> list[Comparison]:
    """Every Echo row against every non-Echo row of the same group + metric (medians)."""
    out: list[Comparison] = []
    for row in scenario.rows:
        if row.role != "echo":
            continue
        for other in scenario.rows:
            if other.role == "echo" or (other.group, other.metric) != (row.group, row.metric):
                continue
            value = _oriented(row.median, other.median, row.higher_is_better)
            if other.role == "ceiling":
                value *= 100.0
            out.append(
                Comparison(row.subject, other.subject, other.role, row.group, row.metric, value)
            )
    return out


def _oriented(echo: float, other: float, higher_is_better: bool) -> float:
    num, den = (echo, other) if higher_is_better else (other, echo)
    if math.isnan(num) or math.isnan(den) or den == 0:
        return math.nan
    return num / den


def _ratio(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    return f"{value:.2f}x"


# --- helpers for scenarios -------------------------------------------------------------------


def package_version(distribution: str) -> str | None:
    """The installed version of a distribution, or None if it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def unique_prefix(name: str) -> str:
    """A Redis key prefix no other process uses: ``echo-bench:<name>:<pid>-<random>:``."""
    return f"echo-bench:{name}:{os.getpid()}-{uuid.uuid4().hex[:8]}:"


@contextlib.contextmanager
def scratch_dir(name: str) -> Iterator[Path]:
    """A fresh temporary folder, removed afterwards whatever happens."""
    path = Path(tempfile.mkdtemp(prefix=f"echo-bench-{name}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
