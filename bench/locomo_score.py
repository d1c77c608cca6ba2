"""Scoring recall on LoCoMo's questions: hit@1, hit@5, latency and leaks for one way of searching.

``score`` runs every question through a search and counts a hit when a returned conversation
is one of the question's evidence sessions; a result from another guild is a leak. The ways
measured here: a fresh ``RecallIndex`` with given settings, the index ``sync`` builds from the
files, the data README's rank_bm25 baseline and the ``python -m bot memories`` CLI.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.locomo_echo import Question, guild_of, sessions, thread_of
from memory import Conversation, JsonFileStore
from memory.longterm.summarizer import STOPWORDS
from memory.recall import RecallIndex, RecallSettings, sync
from memory.records.memories import MemoryRecord

__all__ = [
    "Score",
    "baseline",
    "cli_variant",
    "percentile",
    "recall_variant",
    "score",
    "sync_variant",
]

# The checkout, where the CLI variant runs ``python -m bot``.
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Score:
    variant: str
    hit1: float
    hit5: float
    questions: int
    queries_per_s: float
    p50_ms: float
    p95_ms: float
    leaks: int = 0
    by_category: dict[str, tuple[float, float]] | None = None
    note: str = ""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def score(
    variant: str,
    qs: list[Question],
    search: Callable[[Question], list[str]],
    guild_of_thread: Callable[[str], str] | None = None,
    note: str = "",
) -> Score:
    hit1 = hit5 = leaks = 0
    per_cat: dict[int, list[int]] = {}
    latencies: list[float] = []
    started = time.perf_counter()
    for q in qs:
        t0 = time.perf_counter()
        ranked = search(q)
        latencies.append(time.perf_counter() - t0)
        top1 = bool(ranked) and ranked[0] in q.evidence
        top5 = any(t in q.evidence for t in ranked[:5])
        hit1 += top1
        hit5 += top5
        if guild_of_thread is not None:
            leaks += sum(1 for t in ranked if guild_of_thread(t) != q.guild_id)
        cat = per_cat.setdefault(q.category, [0, 0, 0])
        cat[0] += top1
        cat[1] += top5
        cat[2] += 1
    elapsed = time.perf_counter() - started
    n = len(qs)
    return Score(
        variant=variant,
        hit1=round(hit1 / n, 3),
        hit5=round(hit5 / n, 3),
        questions=n,
        queries_per_s=round(n / elapsed, 1),
        p50_ms=round(percentile(latencies, 0.5) * 1000, 3),
        p95_ms=round(percentile(latencies, 0.95) * 1000, 3),
        leaks=leaks,
        by_category={
            str(c): (round(v[0] / v[2], 3), round(v[1] / v[2], 3))
            for c, v in sorted(per_cat.items())
        },
        note=note,
    )


def recall_variant(
    name: str,
    qs: list[Question],
    items: list[tuple[Conversation, MemoryRecord | None]],
    settings: RecallSettings,
    work: Path,
    *,
    memories: bool,
    note: str = "",
) -> Score:
    folder = work / f"index-{abs(hash((name, settings))) % 10**8}"
    shutil.rmtree(folder, ignore_errors=True)
    guild_by_thread = {c.thread_id: c.guild_id for c, _ in items}
    with RecallIndex(folder, settings=settings) as index:
        index.rebuild((c, m if memories else None) for c, m in items)
    # Searches go through a freshly opened index, as a CLI process would.
    with RecallIndex(folder, settings=settings) as index:
        result = score(
            name,
            qs,
            lambda q: [h.thread_id for h in index.search(q.guild_id, q.text, limit=5)],
            guild_by_thread.__getitem__,
            note,
        )
    shutil.rmtree(folder, ignore_errors=True)
    return result


def sync_variant(folder: Path, qs: list[Question], work: Path) -> Score:
    """The default index built the way a CLI process catches up: ``sync`` from the files."""
    index_folder = work / "index-sync"
    shutil.rmtree(index_folder, ignore_errors=True)

    async def build() -> None:
        async with JsonFileStore(folder, read_only=True) as store:
            with RecallIndex(index_folder) as index:
                await sync(index, store)

    asyncio.run(build())
    with RecallIndex(index_folder) as index:
        result = score(
            "default, indexed by sync() from the data folder",
            qs,
            lambda q: [h.thread_id for h in index.search(q.guild_id, q.text, limit=5)],
            lambda thread: str(int(thread) // 1000),
            "the files -> index path of a CLI process",
        )
    shutil.rmtree(index_folder, ignore_errors=True)
    return result


_BASELINE_TOKEN = re.compile(r"[a-z0-9]+")


def baseline(records: list[dict[str, Any]], qs: list[Question]) -> Score | None:
    """The data README's baseline: rank_bm25 defaults over raw session text."""
    try:
        from rank_bm25 import BM25Okapi
    except ImportError:
        return None

    def tokens(text: str) -> list[str]:
        return [w for w in _BASELINE_TOKEN.findall(text.lower()) if w not in STOPWORDS]

    rankers: dict[str, tuple[Any, list[str]]] = {}
    for index, record in enumerate(records):
        guild_id = guild_of(index)
        found = sessions(record)
        docs = [tokens(" ".join(t["text"] for t in turns)) for _, _, turns in found]
        rankers[guild_id] = (BM25Okapi(docs), [thread_of(guild_id, n) for n, _, _ in found])

    def search(q: Question) -> list[str]:
        bm25, threads = rankers[q.guild_id]
        scores = bm25.get_scores(tokens(q.text))
        order = sorted(range(len(threads)), key=lambda i: -scores[i])
        return [threads[i] for i in order[:5]]

    return score(
        "baseline: rank_bm25 over raw session text",
        qs,
        search,
        note="data README: 0.633 / 0.875 (its stopword list differs slightly)",
    )


def cli_variant(folder: Path, records: list[dict[str, Any]], qs: list[Question]) -> Score:
    """The same questions through ``python -m bot memories generate`` / ``search --json -``."""
    env = {**os.environ, "ECHO_DATA_DIR": str(folder), "LLM_PROVIDER": "echo"}
    cmd = [sys.executable, "-m", "bot", "memories"]
    generated = subprocess.run(
        [*cmd, "generate"], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if generated.returncode != 0:
        raise RuntimeError(f"memories generate failed: {generated.stderr.strip()}")
    ranked: dict[tuple[str, str], list[str]] = {}
    started = time.perf_counter()
    for index in range(len(records)):
        guild_id = guild_of(index)
        texts = [q.text for q in qs if q.guild_id == guild_id]
        done = subprocess.run(
            [*cmd, "search", "--guild", guild_id, "--limit", "5", "--json", "-"],
            input="\n".join(texts) + "\n",
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"memories search failed: {done.stderr.strip()}")
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        if len(lines) != len(texts):
            raise RuntimeError(f"{len(texts)} queries, {len(lines)} answers")
        for text, answer in zip(texts, lines, strict=True):
            if answer["query"] != text:
                raise RuntimeError(f"answer for {answer['query']!r} where {text!r} was asked")
            if any(r["guild_id"] != guild_id for r in answer["results"]):
                raise RuntimeError(f"guild {guild_id}: a result from another guild")
            ranked[(guild_id, text)] = [r["thread_id"] for r in answer["results"]]
    elapsed = time.perf_counter() - started
    result = score(
        "CLI: memories generate + memories search --json -",
        qs,
        lambda q: ranked[(q.guild_id, q.text)],
        note=f"{len(records)} processes, {elapsed:.2f} s in all (includes process starts)",
    )
    return result
