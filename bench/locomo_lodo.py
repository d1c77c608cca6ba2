"""Leave one dialogue out: recall figures that tuning cannot flatter.

Every setting of recall that was tuned (passage size and stride, the field weights, the
coverage weight, the phrase pairs, the kinds, the timed coverage) is chosen
on all dialogues but one, from the same grid of candidates, and scored on the dialogue left
out; once per dialogue. The held-out figures
are what a setting chosen this way does on a conversation it was not chosen on: the gap to the
all-dialogues figures is how much the tuning overstates.

An index is built once per passage shape; the weights of a candidate apply at query time, so
each candidate only reopens that index with its weights.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from memory.recall import RecallIndex, RecallSettings
from memory.records.memories import MemoryRecord
from memory.records.models import Conversation

if TYPE_CHECKING:
    from bench.locomo_echo import Question

__all__ = ["CATEGORY_NAMES", "Fold", "candidates", "held_out", "outcomes", "table"]

CATEGORY_NAMES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}

# (hit@1, hit@5) of one question.
Outcome = tuple[bool, bool]


def candidates() -> list[tuple[str, RecallSettings]]:
    """The grid tuning chooses from: one setting moved at a time around the default."""
    d = RecallSettings()
    grid: list[tuple[str, RecallSettings]] = [("default", d)]
    for window, stride in ((1, 1), (3, 1), (4, 2), (5, 3), (5, 5), (8, 4)):
        if (window, stride) == (d.window, d.stride):
            continue
        grid.append((f"passages {window}/{stride}", replace(d, window=window, stride=stride)))
    for name, value in (
        ("dates_weight", 0.0),
        ("dates_weight", 1.0),
        ("dates_weight", 4.0),
        ("memory_weight", 0.0),
        ("memory_weight", 1.0),
        ("names_weight", 0.0),
        ("names_weight", 1.0),
        ("coverage_weight", 0.0),
        ("coverage_weight", 0.25),
        ("coverage_weight", 1.0),
        ("phrase_pairs", False),
        ("phrase_pairs_when", True),
        ("kinds", False),
        ("verb_forms", False),
        ("timed_weight", 0.0),
        ("timed_weight", 0.5),
        ("timed_weight", 1.0),
    ):
        shown = str(value).lower() if isinstance(value, bool) else f"{value:g}"
        grid.append((f"{name} {shown}", replace(d, **{name: value})))
    return grid


def outcomes(
    questions: Sequence[Question],
    items: list[tuple[Conversation, MemoryRecord | None]],
    grid: list[tuple[str, RecallSettings]],
    work: Path,
) -> dict[str, list[Outcome]]:
    """Per candidate, each question's (hit@1, hit@5), in the order of ``questions``."""
    results: dict[str, list[Outcome]] = {}
    built: dict[str, Path] = {}
    try:
        for name, settings in grid:
            shape = settings.fingerprint()
            folder = built.get(shape)
            if folder is None:
                folder = work / f"lodo-{shape}"
                shutil.rmtree(folder, ignore_errors=True)
                with RecallIndex(folder, settings=settings) as index:
                    index.rebuild(items)
                built[shape] = folder
            with RecallIndex(folder, settings=settings) as index:
                found: list[Outcome] = []
                for q in questions:
                    ranked = [h.thread_id for h in index.search(q.guild_id, q.text, limit=5)]
                    found.append(
                        (
                            bool(ranked) and ranked[0] in q.evidence,
                            any(t in q.evidence for t in ranked),
                        )
                    )
            results[name] = found
    finally:
        for folder in built.values():
            shutil.rmtree(folder, ignore_errors=True)
    return results


@dataclass(frozen=True)
class Fold:
    held_out: str  # the guild (dialogue) left out
    chosen: str  # the candidate chosen on the others


def held_out(
    groups: Sequence[str], results: dict[str, list[Outcome]]
) -> tuple[list[Outcome], list[Fold]]:
    """Each question's outcome under the candidate chosen without its dialogue.

    ``groups[i]`` is question i's dialogue. A candidate is chosen by hit@1 + hit@5 on the
    other dialogues' questions; a tie goes to the earlier candidate (the default first).
    """
    names = list(results)
    chosen_for: dict[str, str] = {}
    folds: list[Fold] = []
    for group in dict.fromkeys(groups):
        others = [i for i, g in enumerate(groups) if g != group]

        def merit(name: str, others: list[int] = others) -> int:
            return sum(results[name][i][0] + results[name][i][1] for i in others)

        best = max(names, key=lambda n: (merit(n), -names.index(n)))
        chosen_for[group] = best
        folds.append(Fold(group, best))
    return [results[chosen_for[g]][i] for i, g in enumerate(groups)], folds


def _rate(found: list[Outcome], picks: list[int]) -> tuple[float, float]:
    n = len(picks) or 1
    return (
        round(sum(found[i][0] for i in picks) / n, 3),
        round(sum(found[i][1] for i in picks) / n, 3),
    )


def table(
    categories: Sequence[int], all_dev: list[Outcome], held: list[Outcome]
) -> tuple[str, dict[str, dict[str, float]]]:
    """Per category and overall: the default on every dialogue beside the held-out figures."""
    lines = [
        f"{'category':14} {'n':>4}  {'all hit@1':>9} {'all hit@5':>9}  {'held hit@1':>10}"
        f" {'held hit@5':>10}"
    ]
    data: dict[str, dict[str, float]] = {}
    groups = [(f"{c} {CATEGORY_NAMES.get(c, '?')}", c) for c in sorted(set(categories))]
    for label, cat in [*groups, ("all", None)]:
        picks = [i for i, c in enumerate(categories) if cat is None or c == cat]
        a1, a5 = _rate(all_dev, picks)
        h1, h5 = _rate(held, picks)
        data[label] = {"n": len(picks), "hit1": a1, "hit5": a5, "held_hit1": h1, "held_hit5": h5}
        lines.append(f"{label:14} {len(picks):4d}  {a1:9.3f} {a5:9.3f}  {h1:10.3f} {h5:10.3f}")
    return "\n".join(lines), data
