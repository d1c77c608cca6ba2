"""A scenario as a run prints it: one table of its rows and ratios, then its targets and notes.

``fmt`` is the one way a figure is written, so that the printed tables, the chart's labels
and the Markdown of ``bench/report.py`` show the same digits.
"""

from __future__ import annotations

import math

from bench.framework import Scenario, comparisons

__all__ = ["fmt", "format_scenario"]


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
