"""Scenario 7, recall: search latency over 10,000 and 100,000 conversations and their memories,
index build time, and LoCoMo dev-split quality beside the plain BM25 baseline.

* Corpus (latency): the synthetic conversations of ``bench.locomo_scale``: six chat
  messages each of 6-20 words drawn Zipf-like from 20,000 made-up words (a few words are in
  most passages, as in chat), one guild, and each conversation's memory (its first message as
  the summary, three of its words as topics). Queries: five words each, 30% of them from the
  200 most common words (as in the scale run that measured the 125 ms p95 before).
* Echo: ``RecallIndex.search`` (five results with snippets), index built with ``upsert_many``.
* Baseline "exact ranking": the same index and queries, with FTS5's bm25() scoring every
  passage the query matches (how Echo ranked every query before; it still ranks so any query
  matching at most 2,000 passages). The rows "same top-1 / top-5 as the exact ranking (words
  only)" say how often Echo's answer is exactly that one, both ranking the query's words alone:
  Echo leaves a question's phrase pairs out of the "common terms" ranking, so that is what it
  approximates.
* Peer: rank_bm25 (``BM25Okapi``, the data README's baseline) over the same conversations, one
  document per conversation, in memory; build = tokenising and ``BM25Okapi(corpus)``.
* Quality: the LoCoMo dev split (760 questions), hit@1 / hit@5 of Echo's default index beside
  rank_bm25 over raw session text (``bench.locomo``; data read from ../shared/data).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.framework import Row, Scenario, Target, scratch_dir
from memory import Conversation
from memory.longterm.summarizer import STOPWORDS
from memory.recall import RecallIndex, RecallSettings
from memory.records.memories import MemoryData, MemoryRecord

NAME = "recall"
TITLE = "Recall search, index build and LoCoMo quality"

GUILD_BASE = 1_000_000_000_000_000_000
WORDS = 20_000
CHUNK = 5_000
LIMIT = 5
P95_GOAL_MS = 20.0
TARGET_SIZE = 100_000


def _vocabulary() -> list[str]:
    rng = random.Random(7)
    return [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9)))
        for _ in range(WORDS)
    ]


def _queries(vocabulary: list[str], count: int) -> list[str]:
    rng = random.Random(11)
    return [
        " ".join(rng.choice(vocabulary[: 200 if rng.random() < 0.3 else WORDS]) for _ in range(5))
        for _ in range(count)
    ]


def _with_memory(conversation: Conversation) -> tuple[Conversation, MemoryRecord]:
    first = conversation.history[0].message_content
    memory = MemoryRecord(
        thread_id=conversation.thread_id,
        guild_id=conversation.guild_id,
        requester=conversation.requester,
        memory_data=MemoryData(summary=first, topics=first.split()[:3]),
        source_updated_at=conversation.updated_at,
        conversation_created_at=conversation.created_at,
    )
    return conversation, memory


def _chunks(size: int, guild: str, vocabulary: list[str]) -> Iterator[list[Any]]:
    from bench.locomo_scale import synthetic

    rng = random.Random(size)
    made = synthetic(size, guild, int(guild) + 1, rng, vocabulary)
    while chunk := list(itertools.islice(made, CHUNK)):
        yield [_with_memory(c) for c in chunk]


_TOKEN = re.compile(r"[a-z0-9]+")


def _tokens(text: str) -> list[str]:
    return [w for w in _TOKEN.findall(text.lower()) if w not in STOPWORDS]


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[round(fraction * (len(ordered) - 1))] * 1000


def _timed(search: Callable[[str], Any], queries: list[str]) -> tuple[list[float], list[Any]]:
    """(p50, p95, p99 in ms), and the answers."""
    latencies: list[float] = []
    answers: list[Any] = []
    for query in queries:
        start = time.perf_counter()
        answers.append(search(query))
        latencies.append(time.perf_counter() - start)
    ordered = sorted(latencies)
    return [_percentile(ordered, f) for f in (0.5, 0.95, 0.99)], answers


def _exact(index: RecallIndex, guild: str) -> Callable[[str], Any]:
    import memory.recall.ranking as recall

    def search(query: str) -> Any:
        saved = recall._EXACT_MATCHES
        recall._EXACT_MATCHES = 1 << 60
        try:
            return index.search(guild, query, limit=LIMIT)
        finally:
            recall._EXACT_MATCHES = saved

    return search


def _scale(
    size: int, folder: Path, vocabulary: list[str], queries: list[str], runs: int, quick: bool
) -> tuple[list[Row], dict[str, float]]:
    group = f"{size:,} conversations"
    guild = str(GUILD_BASE + size)
    built = 0.0
    docs: list[list[str]] = []
    threads: list[str] = []
    with RecallIndex(folder) as index:
        for chunk in _chunks(size, guild, vocabulary):
            start = time.perf_counter()
            index.upsert_many(chunk)
            built += time.perf_counter() - start
            for conversation, _ in chunk:
                docs.append(" ".join(m.message_content for m in conversation.history))
                threads.append(conversation.thread_id)
    index_mib = sum(p.stat().st_size for p in folder.glob(f"{guild}.sqlite3*")) / 2**20

    echo: list[list[float]] = [[], [], []]  # p50, p95, p99 per run
    exact_ms: list[list[float]] = [[], [], []]
    same1 = same5 = 0
    exact_runs = 1 if quick or size > 20_000 else runs
    with RecallIndex(folder) as index:
        index.search(guild, "warm")  # opens the guild's file: not a search's cost
        for run in range(runs):
            ms, _ = _timed(lambda q: index.search(guild, q, limit=LIMIT), queries)
            for k in range(3):
                echo[k].append(ms[k])
            if run < exact_runs:
                ms, _ = _timed(_exact(index, guild), queries)
                for k in range(3):
                    exact_ms[k].append(ms[k])
    # How close the "common terms" ranking comes to the exact one: both of the words alone,
    # since phrase pairs are left out of that ranking (see memory/recall/ranking.py).
    with RecallIndex(folder, settings=RecallSettings(phrase_pairs=False)) as words:
        exact_search = _exact(words, guild)
        for query in queries:
            ours = [h.thread_id for h in words.search(guild, query, limit=LIMIT)]
            best = [h.thread_id for h in exact_search(query)]
            same1 += ours[:1] == best[:1]
            same5 += set(ours) == set(best)

    # rank_bm25 over the same conversations, in memory.
    bm: list[list[float]] = [[], [], []]
    bm_build: list[float] = []
    try:
        import numpy
        from rank_bm25 import BM25Okapi
    except ImportError:
        BM25Okapi = None
    if BM25Okapi is not None:
        start = time.perf_counter()
        bm25 = BM25Okapi([_tokens(d) for d in docs])
        bm_build.append(time.perf_counter() - start)
        del docs

        def bm_search(query: str) -> list[str]:
            scores = bm25.get_scores(_tokens(query))
            return [threads[i] for i in numpy.argsort(scores)[::-1][:LIMIT]]

        # rank_bm25 reads every document for every query word: at 100,000 a third of the
        # queries, once, keeps the run short.
        bm_queries = queries if size <= 20_000 else queries[: max(50, len(queries) // 3)]
        for _ in range(1 if size > 20_000 else runs):
            ms, _ = _timed(bm_search, bm_queries)
            for k in range(3):
                bm[k].append(ms[k])

    exact_name = "exact ranking: FTS5 bm25() over every matching passage"
    peer = "rank_bm25 BM25Okapi (in memory)"
    rows: list[Row] = []
    for k, metric in enumerate(("p50 ms", "p95 ms", "p99 ms")):
        rows.append(Row("Echo RecallIndex.search", metric, echo[k], "echo", False, group))
        rows.append(Row(exact_name, metric, exact_ms[k], "baseline", False, group))
        if bm[k]:
            rows.append(Row(peer, metric, bm[k], "peer", False, group))
    rows += [
        Row("Echo index build (upsert_many)", "s", [built], higher_is_better=False, group=group),
        Row("Echo index build (upsert_many)", "conversations/s", [size / built], group=group),
        Row("Echo index file", "MiB", [index_mib], higher_is_better=False, group=group),
        Row(
            "Echo: same top-1 as the exact ranking (words only)",
            "% of queries",
            [100.0 * same1 / len(queries)],
            group=group,
        ),
        Row(
            "Echo: same top-5 set as the exact ranking (words only)",
            "% of queries",
            [100.0 * same5 / len(queries)],
            group=group,
        ),
    ]
    if bm_build:
        rows.append(
            Row(
                "rank_bm25 build (tokenise + BM25Okapi)",
                "s",
                bm_build,
                "peer",
                higher_is_better=False,
                group=group,
            )
        )
    return rows, {"p95": statistics.median(echo[1]), "p50": statistics.median(echo[0])}


def _locomo(work: Path) -> tuple[list[Row], list[str]]:
    from bench import locomo_data, locomo_echo, locomo_score
    from memory.recall import RecallSettings

    try:
        # $ECHO_BENCH_LOCOMO names a local copy; else the dev split beside the checkout, else
        # the public file (cached, or downloaded once).
        named = os.environ.get("ECHO_BENCH_LOCOMO")
        dev = locomo_data.LOCAL_DEV
        local = Path(named) if named else dev if dev.is_file() else None
        records = locomo_data.load(local).select("dev").records
    except locomo_data.DataError as exc:
        return [], [f"LoCoMo not measured: {exc}"]
    qs = locomo_echo.questions(records)
    folder = work / "locomo"
    asyncio.run(locomo_echo.write_data_folder(folder, records, captions=True))
    asyncio.run(locomo_echo.generate_memories(folder))
    items = asyncio.run(locomo_echo.load_folder(folder))
    echo = locomo_score.recall_variant(
        "default", qs, items, RecallSettings(), work, memories=True, note=""
    )
    group = f"LoCoMo dev ({len(qs)} questions)"
    rows = [
        Row("Echo recall (default index)", "hit@1", [echo.hit1], group=group),
        Row("Echo recall (default index)", "hit@5", [echo.hit5], group=group),
    ]
    notes = []
    base = locomo_score.baseline(records, qs)
    if base is not None:
        name = "rank_bm25 over raw session text"
        rows += [
            Row(name, "hit@1", [base.hit1], "baseline", group=group),
            Row(name, "hit@5", [base.hit5], "baseline", group=group),
        ]
    else:
        notes.append("rank_bm25 is not installed: no LoCoMo baseline (pip install rank-bm25)")
    if echo.leaks:
        notes.append(f"LoCoMo: {echo.leaks} result(s) from another guild")
    return rows, notes


def run(quick: bool) -> Scenario:
    sizes = (10_000,) if quick else (10_000, TARGET_SIZE)
    runs = 2 if quick else 3
    vocabulary = _vocabulary()
    queries = _queries(vocabulary, 200 if quick else 300)
    rows: list[Row] = []
    targets: list[Target] = []
    notes = [
        "latency corpus: synthetic Zipf-worded conversations of 6 messages, each with a memory, "
        "one guild; 5-word queries, 30% of words among the 200 most common; five results "
        "with snippets per search",
        "a query matching over 2,000 passages is ranked over the passages of its rarest words "
        "(scored with every word); the exact-ranking rows score every match",
        "a query made only of words each in over 2,000 passages and not found together in "
        "five conversations is ranked exactly: that is the tail (p99, max)",
    ]
    with scratch_dir("recall") as work:
        locomo_rows, locomo_notes = _locomo(work)
        rows += locomo_rows
        notes += locomo_notes
        measured: dict[int, dict[str, float]] = {}
        for size in sizes:
            size_rows, measured[size] = _scale(
                size, work / f"index-{size}", vocabulary, queries, runs, quick
            )
            rows += size_rows
    if TARGET_SIZE in measured:
        targets.append(
            Target(
                f"search p95 at {TARGET_SIZE:,} conversations",
                measured[TARGET_SIZE]["p95"],
                P95_GOAL_MS,
                higher_is_better=False,
                unit=" ms",
            )
        )
    else:
        biggest = max(measured)
        notes.append(
            f"quick run: {biggest:,} conversations at most; the {TARGET_SIZE:,} target is "
            "measured by the full run"
        )
        targets.append(
            Target(
                f"search p95 at {biggest:,} conversations (goal set for {TARGET_SIZE:,})",
                measured[biggest]["p95"],
                P95_GOAL_MS,
                higher_is_better=False,
                unit=" ms",
            )
        )
    return Scenario(NAME, TITLE, rows, targets, notes)
