"""``--publish``: a run's scenarios into the tracked ``bench/results.json`` and ``results.png``,
merged by scenario.

A run may measure only some scenarios (``--only``): publishing it replaces those scenarios in
the tracked results and keeps every other one as it was published, each with the date, mode,
commit and machine it was measured on (``run``), so a merged file never passes one run's
figures off as another's. Only the scenarios this run measured are taken from its
``results.json``: the ones it kept from an earlier run in ``bench/out`` are not published,
and neither is a scenario that failed or was skipped this time (the published figures of it
stay; the run's own output says what went wrong).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.chart import draw_chart

__all__ = ["merged", "provenance", "publish"]

# What says where and when a scenario's figures were measured; the rest of the machine info
# (package versions) stays with the document.
_RUN_KEYS = ("date", "echo_commit", "load_average", "cpus_usable", "python", "platform")


def provenance(entry: dict[str, Any], machine: dict[str, Any]) -> dict[str, Any]:
    """``entry`` with ``run`` set from ``machine`` (the document it was measured in), unless
    it already carries its own."""
    if "run" in entry:
        return entry
    return {**entry, "run": {key: machine.get(key) for key in _RUN_KEYS}}


def merged(
    tracked: dict[str, Any] | None, fresh: dict[str, Any], names: list[str], order: list[str]
) -> dict[str, Any]:
    """The tracked document with the scenarios ``names`` taken from ``fresh``."""
    taken = [
        provenance(entry, fresh.get("machine", {}))
        for entry in fresh.get("scenarios", [])
        if entry.get("name") in names and entry.get("status") == "ok"
    ]
    kept: list[dict[str, Any]] = []
    if tracked is not None:
        kept = [
            provenance(entry, tracked.get("machine", {}))
            for entry in tracked.get("scenarios", [])
            if entry.get("name") not in {e.get("name") for e in taken}
        ]
    rank = {name: index for index, name in enumerate(order)}
    scenarios = sorted([*kept, *taken], key=lambda e: rank.get(e.get("name"), len(rank)))
    modes = {entry.get("mode") for entry in scenarios}
    return {
        "machine": fresh.get("machine", {}),
        "mode": modes.pop() if len(modes) == 1 else "mixed",
        "seconds": fresh.get("seconds"),
        "scenarios": scenarios,
    }


def publish(
    out_dir: Path, to: Path, names: list[str], order: list[str]
) -> tuple[list[Path], list[str]]:
    """Merge the scenarios ``names`` of ``out_dir/results.json`` into ``to/results.json`` and
    draw ``to/results.png`` again from the merged document. Returns the paths written and the
    names not published (failed, skipped or absent from the run)."""
    source = out_dir / "results.json"
    target = to / "results.json"
    if not source.exists() or source.resolve() == target.resolve():
        return [], list(names)
    fresh = json.loads(source.read_text())
    document = merged(_read(target), fresh, names, order)
    published = {e.get("name") for e in fresh.get("scenarios", []) if e.get("status") == "ok"}
    left = [name for name in names if name not in published]
    if len(left) == len(names):
        return [], left
    target.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    written = [target]
    if draw_chart(document["scenarios"], to / "results.png"):
        written.append(to / "results.png")
    return written, left


def _read(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None
