"""``results.png``: one small bar chart per scenario, drawn from the scenarios' JSON.

It reads the JSON rather than ``Scenario`` objects so that ``--publish`` can draw the merged
results again, with scenarios from earlier runs beside this run's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.tables import fmt

__all__ = ["draw_chart"]

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
