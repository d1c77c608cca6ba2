"""Running the scenarios: each in turn, its table printed, and ``results.json`` and
``results.png`` written, with the machine and its load beside the figures.

A scenario that is missing, fails to import or raises is reported and the others still run;
``python -m bench`` is the command line around ``run_scenarios``.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.chart import draw_chart
from bench.framework import BENCH_DIR, Scenario, comparisons, package_version
from bench.tables import format_scenario

__all__ = ["PEER_PACKAGES", "machine_info", "run_scenarios", "scenario_json"]

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
