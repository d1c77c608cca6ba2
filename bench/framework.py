"""The benchmark framework: rows of samples, ratios against peers measured in the same run,
targets, one table per scenario, ``results.json`` and ``results.png``.

A scenario is a module ``bench/scenarios/<name>.py`` with ``NAME``, ``TITLE`` and
``run(quick: bool) -> Scenario``. It measures Echo and its peers in the same process run and
hands back raw samples (one value per run); everything derived (median, min, max, ratios,
whether a target is met) is computed here, the same way for every scenario.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "PEER_PACKAGES",
    "Comparison",
    "Row",
    "Scenario",
    "Target",
    "comparisons",
    "machine_info",
    "package_version",
    "redis_url",
    "run_scenarios",
    "scratch_dir",
    "unique_prefix",
]

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
"""Where a run writes (ignored by git): measuring never dirties a clone."""
ROLES = ("echo", "peer", "ceiling", "baseline")
# Packages whose versions go into results.json (those installed; the rest are "missing").
PEER_PACKAGES = (
    "langchain-community",
    "langchain-core",
    "langchain-redis",
    "redis",
    "pydantic",
    "rank-bm25",
    "matplotlib",
)


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


def machine_info() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "echo_commit": commit,
        "versions": {name: package_version(name) for name in PEER_PACKAGES},
    }


# --- formatting ------------------------------------------------------------------------------


def fmt(value: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude == 0:
        return "0"
    return f"{value:.3g}"


def _ratio(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    return f"{value:.2f}x"


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: list[str]) -> str:
        parts = [
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def format_scenario(scenario: Scenario) -> str:
    """The table of one scenario, its targets and notes, as printed."""
    comps = comparisons(scenario)
    has_groups = any(r.group for r in scenario.rows)
    headers = (["group"] if has_groups else []) + [
        "subject",
        "metric",
        "median",
        "min",
        "max",
        "n",
        "vs (medians, same run)",
    ]
    offset = 1 if has_groups else 0
    right = {offset + 2, offset + 3, offset + 4, offset + 5}
    body: list[list[str]] = []
    for row in scenario.rows:
        mine = [
            c.text()
            for c in comps
            if (c.subject, c.group, c.metric) == (row.subject, row.group, row.metric)
        ]
        role = "" if row.role == "echo" else f" [{row.role}]"
        cells = [
            row.subject + role,
            row.metric + ("" if row.higher_is_better else " (lower=better)"),
            fmt(row.median),
            fmt(row.min),
            fmt(row.max),
            str(row.n),
            "; ".join(mine),
        ]
        body.append(([row.group] if has_groups else []) + cells)
    out = [f"== {scenario.title} ({scenario.name}) ==", _table(headers, body, right)]
    if scenario.targets:
        out.append("targets:")
        for t in scenario.targets:
            sign = ">=" if t.higher_is_better else "<="
            mark = "met" if t.met else "MISSED"
            measured, goal = fmt(t.measured) + t.unit, fmt(t.goal) + t.unit
            out.append(f"  [{mark}] {t.label}: {measured} (goal {sign} {goal})")
    for note in scenario.notes:
        out.append(f"note: {note}")
    return "\n".join(out)


# --- JSON ------------------------------------------------------------------------------------


def _num(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def scenario_json(scenario: Scenario) -> dict[str, Any]:
    return {
        "name": scenario.name,
        "title": scenario.title,
        "status": "ok",
        "rows": [
            {
                "subject": r.subject,
                "metric": r.metric,
                "role": r.role,
                "group": r.group,
                "higher_is_better": r.higher_is_better,
                "samples": [_num(s) for s in r.samples],
                "median": _num(r.median),
                "min": _num(r.min),
                "max": _num(r.max),
                "n": r.n,
            }
            for r in scenario.rows
        ],
        "ratios": [
            {
                "subject": c.subject,
                "against": c.against,
                "against_role": c.against_role,
                "group": c.group,
                "metric": c.metric,
                "kind": c.kind,
                "value": _num(c.value),
            }
            for c in comparisons(scenario)
        ],
        "targets": [
            {
                "label": t.label,
                "measured": _num(t.measured),
                "goal": t.goal,
                "unit": t.unit,
                "higher_is_better": t.higher_is_better,
                "met": t.met,
            }
            for t in scenario.targets
        ],
        "notes": list(scenario.notes),
    }


# --- the chart -------------------------------------------------------------------------------

_COLOURS = {"echo": "#2b7bba", "peer": "#d9822b", "ceiling": "#7a7a7a", "baseline": "#b0b0b0"}


def draw_chart(results: list[dict[str, Any]], path: Path) -> bool:
    """One small horizontal bar chart per scenario (median, min-max whiskers). False if
    matplotlib is missing or there is nothing to draw."""
    drawable = [s for s in results if s.get("status") == "ok" and s.get("rows")]
    if not drawable:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    cols = 2 if len(drawable) > 1 else 1
    nrows = math.ceil(len(drawable) / cols)
    heights = []
    for s in drawable:
        metric = s["rows"][0]["metric"]
        heights.append(sum(1 for r in s["rows"] if r["metric"] == metric))
    fig, axes = plt.subplots(
        nrows,
        cols,
        figsize=(7.5 * cols, max(2.6, 0.42 * max(heights) + 1.4) * nrows),
        squeeze=False,
    )
    for ax, s in zip(axes.flat, drawable, strict=False):
        metric = s["rows"][0]["metric"]
        rows = [r for r in s["rows"] if r["metric"] == metric and r["median"] is not None]
        labels = [(f"{r['group']}: " if r["group"] else "") + r["subject"] for r in rows]
        medians = [r["median"] for r in rows]
        lo = [r["median"] - r["min"] for r in rows]
        hi = [r["max"] - r["median"] for r in rows]
        ys = list(range(len(rows)))[::-1]
        ax.barh(
            ys,
            medians,
            xerr=[lo, hi],
            color=[_COLOURS.get(r["role"], "#999999") for r in rows],
            capsize=3,
            height=0.6,
        )
        ax.set_yticks(ys, [_short(label) for label in labels], fontsize=7)
        positive = [m for m in medians if m and m > 0]
        if positive and max(positive) / min(positive) > 50:
            ax.set_xscale("log")
        for y, r in zip(ys, rows, strict=False):
            # Beside the whisker's end, so the number never sits on it.
            ax.annotate(
                fmt(r["median"]),
                (max(r["max"], r["median"]), y),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
        better = "higher is better" if rows and rows[0]["higher_is_better"] else "lower is better"
        ax.set_xlabel(f"{metric} ({better})", fontsize=8)
        ax.set_title(s["title"], fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.margins(x=0.15)
    for ax in list(axes.flat)[len(drawable) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _short(label: str, width: int = 52) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


# --- the runner ------------------------------------------------------------------------------


def _load(name: str) -> tuple[Any | None, str]:
    """The scenario module, or None and why it is skipped."""
    module_name = f"bench.scenarios.{name}"
    try:
        return importlib.import_module(module_name), ""
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None, f"not present (no module bench/scenarios/{name}.py)"
        return None, f"import failed: {type(exc).__name__}: {exc}"
    except Exception as exc:
        return None, f"import failed: {type(exc).__name__}: {exc}"


def run_scenarios(names: list[str], *, quick: bool, out_dir: Path, merge: bool = False) -> int:
    """Run the scenarios in order, print their tables, write results.json and results.png.

    ``merge``: keep the scenarios of an existing results.json that were not run this time
    (``--only``), each with the date and mode it was measured in. Returns the exit status:
    1 if a scenario failed or was skipped, else 0.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    mode = "quick" if quick else "full"
    print(
        f"Echo benchmarks ({mode}): {info['cpus_usable']} usable cores, Python {info['python']}, "
        f"{info['platform']}, load {_load_text(info['load_average'])}",
        flush=True,
    )
    results: list[dict[str, Any]] = []
    bad = 0
    started = time.perf_counter()
    for name in names:
        module, why = _load(name)
        load_before = _load_now()
        entry: dict[str, Any]
        if module is None:
            print(f"\n== {name}: SKIPPED, {why} ==", flush=True)
            entry = {"name": name, "title": name, "status": "skipped", "error": why}
            bad += 1
        else:
            title = getattr(module, "TITLE", name)
            print(f"\n-- running {name}: {title} --", flush=True)
            t0 = time.perf_counter()
            try:
                scenario = module.run(quick)
                if not isinstance(scenario, Scenario):
                    raise TypeError(f"run() returned {type(scenario).__name__}, not Scenario")
            except Exception as exc:
                elapsed = time.perf_counter() - t0
                trace = traceback.format_exc()
                print(trace, file=sys.stderr, flush=True)
                print(f"== {title} ({name}): FAILED after {elapsed:.1f}s: {exc!r} ==", flush=True)
                entry = {
                    "name": name,
                    "title": title,
                    "status": "failed",
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": trace,
                }
                bad += 1
            else:
                elapsed = time.perf_counter() - t0
                print(format_scenario(scenario), flush=True)
                print(f"({elapsed:.1f}s)", flush=True)
                entry = scenario_json(scenario)
            entry["seconds"] = round(elapsed, 2)
        entry["mode"] = mode
        entry["date"] = datetime.now(UTC).isoformat(timespec="seconds")
        # The machine's load around this scenario (1, 5, 15 min), before and after it.
        entry["load_average"] = {"before": load_before, "after": _load_now()}
        results.append(entry)
    total = time.perf_counter() - started

    if merge:
        previous = _read_previous(out_dir / "results.json")
        ran = {e["name"] for e in results}
        from bench.scenarios import SCENARIOS

        order = {n: i for i, n in enumerate(SCENARIOS)}
        kept = [e for e in previous if e.get("name") not in ran]
        results = sorted([*kept, *results], key=lambda e: order.get(e.get("name"), len(order)))

    document = {
        "machine": info,
        "mode": mode,
        "seconds": round(total, 1),
        "scenarios": results,
    }
    json_path = out_dir / "results.json"
    json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    png_path = out_dir / "results.png"
    drawn = draw_chart(results, png_path)
    print(f"\n{len(names)} scenario(s) in {total:.1f}s; wrote {json_path}", end="")
    print(f" and {png_path}" if drawn else " (no chart: matplotlib missing or nothing to draw)")
    for e in results:
        if e.get("status") != "ok":
            print(f"  {e['name']}: {e['status']}: {e.get('error', '')}")
    return 1 if bad else 0


def _read_previous(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
        return [e for e in data.get("scenarios", []) if isinstance(e, dict)]
    except (OSError, ValueError, AttributeError):
        return []


def _load_now() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _load_text(load: list[float] | None) -> str:
    return "n/a" if not load else " ".join(f"{x:.2f}" for x in load)
