"""``python -m bench.report [results.json]``: the tables of a run as Markdown, for the README.

Reads what ``python -m bench`` wrote (default: ``bench/out/results.json``, else the published
``bench/results.json``) and prints, per scenario, the table, its targets and its notes, in the
form bench/README.md's "Every table" block uses.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.tables import fmt

_HERE = Path(__file__).resolve().parent
# The latest run (bench/out, ignored by git), else the published results.
DEFAULT = next(
    (p for p in (_HERE / "out" / "results.json", _HERE / "results.json") if p.exists()),
    _HERE / "results.json",
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _compared(scenario: dict[str, Any], row: dict[str, Any]) -> str:
    parts = []
    for ratio in scenario.get("ratios", []):
        key = (ratio["subject"], ratio.get("group"), ratio["metric"])
        if key != (row["subject"], row.get("group"), row["metric"]):
            continue
        if ratio["kind"] == "% of ceiling":
            parts.append(f"{ratio['value']:.0f}% of {ratio['against']}")
        else:
            parts.append(f"{fmt(ratio['value'])}x vs {ratio['against']}")
    return "; ".join(parts)


def scenario_markdown(scenario: dict[str, Any]) -> str:
    """One scenario of ``results.json`` as a Markdown table with its targets and notes."""
    out = [f"**{scenario['title']}** (`{scenario['name']}`)", ""]
    if scenario.get("status") not in (None, "ok"):
        out.append(f"not measured: {scenario.get('status')}")
    rows = scenario.get("rows", [])
    if rows:
        out.append("| group | subject | unit | median | min | max | n | compared (same run) |")
        out.append("|---|---|---|---:|---:|---:|---:|---|")
        for row in rows:
            subject = f"**{row['subject']}**" if row["role"] == "echo" else row["subject"]
            if row["role"] != "echo":
                subject += f" *({row['role']})*"
            cells = [
                row.get("group") or "",
                subject,
                row["metric"],
                fmt(row["median"]),
                fmt(row["min"]),
                fmt(row["max"]),
                str(row["n"]),
                _compared(scenario, row),
            ]
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if scenario.get("targets"):
        out.append("")
        for target in scenario["targets"]:
            sign = ">=" if target["higher_is_better"] else "<="
            mark = "met" if target["met"] else "**missed**"
            unit = target["unit"]
            out.append(
                f"- {mark}: {target['label']}: {fmt(target['measured'])}{unit} "
                f"(goal {sign} {fmt(target['goal'])}{unit})"
            )
    for note in scenario.get("notes", []):
        out.append(f"- note: {note}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("results", nargs="?", type=Path, default=DEFAULT)
    args = parser.parse_args(argv)
    try:
        data = json.loads(args.results.read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.results}: {exc} (run python -m bench first)", file=sys.stderr)
        return 2
    machine = data.get("machine", {})
    print(
        f"Run of {machine.get('date', '?')} ({data.get('mode', '?')}), "
        f"{machine.get('cpus_usable', '?')} cores, Python {machine.get('python', '?')}, "
        f"commit {machine.get('echo_commit', '?')}, load {machine.get('load_average', '?')}"
    )
    for scenario in data.get("scenarios", []):
        print()
        print(scenario_markdown(scenario))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
