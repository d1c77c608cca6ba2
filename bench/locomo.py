"""Recall quality on LoCoMo (the public file or --data), and timing at 100,000 conversations.

```sh
.venv/bin/python -m bench.locomo                       # every variant + the scale run
.venv/bin/python -m bench.locomo --scale 0             # quality only
.venv/bin/python -m bench.locomo --cli                 # also through `python -m bot memories`
.venv/bin/python -m bench.locomo --data locomo-dev.json --dialogues dev
```

The data: ``--data PATH``, or LoCoMo's public ``locomo10.json``, downloaded once into
``~/.cache/echo-bench`` and checked by sha256 (``bench/locomo_data.py``). A run says which
dialogues it used; ``--dialogues dev|unseen|all|<ids>`` chooses.

What it does:

1. Writes the five dialogues into a fresh Echo data folder with the real ``JsonFileStore``:
   one guild per dialogue (ids 1000..1004), one conversation per session, created at the
   session's date read as UTC, one ``chat`` message per turn (``author_name`` = the speaker,
   requester = the speaker's id; speaker_a is the conversation's requester, both speakers are
   participants). A turn that shares an image carries LoCoMo's ``blip_caption`` as
   `` [shares a photo: <caption>]`` after its text: that is the turn as the dialogue shows it.
   Only the turns and the session dates are read: never ``observation``, ``session_summary``,
   ``event_summary`` or the QA answers.
2. Makes memories offline with the real batch job (``MemoryService`` + the extractive
   distiller), as ``memories generate`` does without a model.
3. For each variant, indexes every conversation into a fresh ``RecallIndex`` and searches the
   question's guild with every question of categories 1-4 that names an evidence session
   (``D:?(\\d+):(\\d+)``; 760 questions). hit@1: the top conversation is an evidence session;
   hit@5: one of the top five is. Every hit is also checked to belong to the guild searched.
4. The baseline of the data's README (rank_bm25 defaults over raw session text), when
   ``rank_bm25`` is installed (``pip install rank-bm25``; a bench-only dependency).
5. The semantic re-ranker beside the default, when its extra is installed: all dialogues,
   held out, cold and warm latency (``bench/locomo_semantic.py``).
6. Leave one dialogue out (not with ``--quick``): every tuned setting chosen on all dialogues
   but one and scored on the one left out (``bench/locomo_lodo.py``).
7. Distillation: does the memory record of a question's evidence conversation hold the
   answer's words (``bench/locomo_distill.py``)?
8. Timing at scale: 100,000 small conversations in one guild and 20,000 in four others;
   index open time, search p50/p95, index size.

Results go to ``bench/out/results-locomo.json`` (ignored by git, so a run never dirties the
clone); ``--publish`` also copies them to the tracked ``bench/results-locomo.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import locomo_data, locomo_distill, locomo_lodo, locomo_semantic
from memory import Conversation, InMemoryConversationManager, JsonFileStore, Message, MessageType
from memory.longterm.summarizer import STOPWORDS
from memory.recall import RecallIndex, RecallSettings, sync
from memory.records.memories import MemoryRecord

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = Path(__file__).resolve().parent / "results-locomo.json"
RESULTS = Path(__file__).resolve().parent / "out" / "results-locomo.json"
EVIDENCE = re.compile(r"D:?(\d+):(\d+)")
GUILD_BASE = 1000
CATEGORIES = (1, 2, 3, 4)


# --- the data, in Echo's format -------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    guild_id: str
    text: str
    evidence: frozenset[str]  # thread ids
    category: int


def session_date(text: str) -> datetime:
    """LoCoMo's "1:56 pm on 8 May, 2023", read as UTC."""
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def guild_of(index: int) -> str:
    return str(GUILD_BASE + index)


def thread_of(guild_id: str, session: int) -> str:
    return str(int(guild_id) * 1000 + session)


def sessions(record: dict[str, Any]) -> list[tuple[int, datetime, list[dict[str, Any]]]]:
    talk = record["conversation"]
    found = []
    for key in talk:
        match = re.fullmatch(r"session_(\d+)", key)
        if match:
            number = int(match[1])
            found.append((number, session_date(talk[f"{key}_date_time"]), talk[key]))
    return sorted(found, key=lambda s: s[0])


def conversations(
    records: list[dict[str, Any]], *, captions: bool = True
) -> Iterable[Conversation]:
    """Each session of each dialogue as an Echo conversation (turns and dates only)."""
    for index, record in enumerate(records):
        guild_id = guild_of(index)
        talk = record["conversation"]
        speakers = {talk["speaker_a"]: f"{guild_id}1", talk["speaker_b"]: f"{guild_id}2"}
        for number, started, turns in sessions(record):
            thread_id = thread_of(guild_id, number)
            conversation = Conversation(
                thread_id=thread_id,
                channel_id=f"{guild_id}9",
                created_at=started,
                updated_at=started,
                guild_id=guild_id,
                guild_name=f"LoCoMo {record.get('sample_id', index)}",
                requester=speakers[talk["speaker_a"]],
                participants=list(speakers.values()),
            )
            for turn_number, turn in enumerate(turns, start=1):
                text = turn["text"]
                if captions and turn.get("blip_caption"):
                    text = f"{text} [shares a photo: {turn['blip_caption']}]"
                speaker = turn["speaker"]
                requester = speakers.setdefault(speaker, f"{guild_id}{len(speakers) + 1}")
                conversation.add_message(
                    Message(
                        created_at=started + timedelta(seconds=30 * turn_number),
                        message_type=MessageType.CHAT,
                        message_content=text,
                        meta={
                            "requester": requester,
                            "message_id": f"{thread_id}{turn_number:04d}",
                            "author_name": speaker,
                        },
                    )
                )
            yield conversation


def questions(records: list[dict[str, Any]]) -> list[Question]:
    found: list[Question] = []
    for index, record in enumerate(records):
        guild_id = guild_of(index)
        for qa in record["qa"]:
            if qa.get("category") not in CATEGORIES:
                continue
            raw = " ".join(str(e) for e in qa.get("evidence", []))
            evidence = frozenset(thread_of(guild_id, int(s)) for s, _ in EVIDENCE.findall(raw))
            if evidence:  # two questions name no parseable evidence at all
                found.append(Question(guild_id, qa["question"], evidence, qa["category"]))
    return found


async def write_data_folder(folder: Path, records: list[dict[str, Any]], captions: bool) -> int:
    """The dialogues as Echo files, through the real store."""
    count = 0
    async with JsonFileStore(folder, fsync="no") as store:
        for conversation in conversations(records, captions=captions):
            await store.save(conversation)
            count += 1
    return count


async def generate_memories(folder: Path) -> int:
    """``memories generate`` offline: the batch job with the extractive distiller."""
    from memory.longterm import ExtractiveDistiller, MemoryService

    store = JsonFileStore(folder, fsync="no")
    async with InMemoryConversationManager(store=store) as manager:
        service = MemoryService(manager, ExtractiveDistiller(), inactivity=0)
        report = await service.generate()
    if report.failed:
        raise RuntimeError(f"memory generation failed: {report.line()} {report.failures}")
    return report.generated


async def load_folder(folder: Path) -> list[tuple[Conversation, MemoryRecord | None]]:
    """Every conversation and its memory, read back from the files."""
    loaded: list[tuple[Conversation, MemoryRecord | None]] = []
    async with JsonFileStore(folder, read_only=True) as store:
        for ref in sorted(await store.list_conversations(), key=lambda r: int(r.thread_id)):
            conversation = await store.load(ref.thread_id)
            assert conversation is not None, ref
            memory = await store.load_memory(ref.guild_id, ref.thread_id)
            loaded.append((conversation, memory))
    return loaded


# --- measuring ----------------------------------------------------------------------------------


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


# --- timing at scale ----------------------------------------------------------------------------


def synthetic(
    count: int, guild_id: str, start_thread: int, rng: random.Random, vocabulary: list[str]
) -> Iterable[Conversation]:
    # Zipf-like word choice: a few words everywhere, most words rare, as in chat.
    cumulative = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(vocabulary))))
    base = datetime(2024, 1, 1, tzinfo=UTC)
    for n in range(count):
        thread_id = str(start_thread + n)
        created = base + timedelta(minutes=7 * n)
        conversation = Conversation(
            thread_id=thread_id,
            channel_id="9",
            created_at=created,
            updated_at=created,
            guild_id=guild_id,
            requester="42",
        )
        for turn in range(6):
            words = rng.choices(vocabulary, cum_weights=cumulative, k=rng.randint(6, 20))
            conversation.add_message(
                Message(
                    created_at=created + timedelta(seconds=turn),
                    message_type=MessageType.CHAT,
                    message_content=" ".join(words),
                    meta={"requester": "42"} if turn % 2 == 0 else {},
                )
            )
        yield conversation


def scale_run(total: int, work: Path) -> dict[str, Any]:
    rng = random.Random(7)
    vocabulary = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9)))
        for _ in range(20_000)
    ]
    folder = work / "scale"
    shutil.rmtree(folder, ignore_errors=True)
    big, others = "1000000000000000001", [f"200000000000000000{i}" for i in range(1, 5)]
    started = time.perf_counter()
    with RecallIndex(folder) as index:
        for conversation in synthetic(total, big, 10**12, rng, vocabulary):
            index.upsert_conversation(conversation)
        for number, guild in enumerate(others):
            for conversation in synthetic(
                total // 20, guild, 10**13 * (number + 2), rng, vocabulary
            ):
                index.upsert_conversation(conversation)
    indexing_s = time.perf_counter() - started
    size = sum(f.stat().st_size for f in folder.iterdir())

    # Open time, as a new process sees it: open() reads no index file; the guild's file is
    # opened on first use (connect, schema, one count), then the first search.
    t0 = time.perf_counter()
    index = RecallIndex(folder).open()
    opened_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    rows = index.count(big)
    count_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    index.search(big, f"{vocabulary[3000]} {vocabulary[9000]}")
    first_search_ms = (time.perf_counter() - t0) * 1000
    other_rows = index.count() - rows

    queries: list[str] = []
    for _ in range(500):
        # A mix of common and rare words, like a question.
        queries.append(
            " ".join(
                rng.choice(vocabulary[: 200 if rng.random() < 0.3 else 20_000]) for _ in range(5)
            )
        )
    latencies: list[float] = []
    for guild in (big, others[0]):
        for query in queries:
            t0 = time.perf_counter()
            index.search(guild, query)
            latencies.append(time.perf_counter() - t0)
    index.close()
    big_lat, small_lat = latencies[: len(queries)], latencies[len(queries) :]
    result = {
        "conversations": {big: rows, "others": other_rows},
        "indexing_s": round(indexing_s, 1),
        "indexing_per_s": round((total + 4 * (total // 20)) / indexing_s, 1),
        "index_bytes": size,
        "open_ms": round(opened_ms, 3),
        "first_search_ms": round(first_search_ms, 2),
        "first_use_ms (open the guild file + count)": round(count_ms, 2),
        "search_big_guild_p50_ms": round(percentile(big_lat, 0.5) * 1000, 2),
        "search_big_guild_p95_ms": round(percentile(big_lat, 0.95) * 1000, 2),
        "search_small_guild_p50_ms": round(percentile(small_lat, 0.5) * 1000, 2),
        "search_small_guild_p95_ms": round(percentile(small_lat, 0.95) * 1000, 2),
    }
    shutil.rmtree(folder, ignore_errors=True)
    return result


# --- the run ------------------------------------------------------------------------------------

WHOLE = 1_000_000  # a window this wide makes the whole conversation one passage


def variants() -> list[tuple[str, RecallSettings, bool, str]]:
    """(name, settings, with memories, note). The first with memories is the default."""
    d = RecallSettings()
    nodates = replace(d, dates_weight=0.0)
    whole = replace(d, window=WHOLE, stride=WHOLE)
    return [
        (
            f"default: passages {d.window}/{d.stride}, dates x2, memory x0.5,"
            f" coverage x{d.coverage_weight:g}, pairs",
            d,
            True,
            "chosen",
        ),
        ("default without memories", d, False, ""),
        (
            "whole conversation, unicode61, no dates",
            replace(whole, tokenizer="unicode61 remove_diacritics 2", dates_weight=0.0),
            False,
            "~ the baseline, in FTS5",
        ),
        ("whole conversation, porter, no dates", replace(whole, dates_weight=0.0), False, ""),
        ("whole conversation, porter, dates x2", whole, False, ""),
        ("whole conversation, porter, dates x2, + memory", whole, True, ""),
        (f"passages {d.window}/{d.stride}, porter, no dates", nodates, False, ""),
        (
            f"passages {d.window}/{d.stride}, unicode61 (no stemming)",
            replace(d, tokenizer="unicode61 remove_diacritics 2"),
            True,
            "",
        ),
        ("passages 1/1 (one message)", replace(d, window=1, stride=1), True, ""),
        ("passages 3/1", replace(d, window=3, stride=1), True, ""),
        ("passages 4/2", replace(d, window=4, stride=2), True, ""),
        ("passages 5/3", replace(d, window=5, stride=3), True, ""),
        ("passages 5/5 (no overlap)", replace(d, window=5, stride=5), True, ""),
        ("passages 8/4", replace(d, window=8, stride=4), True, ""),
        ("dates x1", replace(d, dates_weight=1.0), True, ""),
        ("dates x4", replace(d, dates_weight=4.0), True, ""),
        ("memory x1", replace(d, memory_weight=1.0), True, ""),
        ("memory x2", replace(d, memory_weight=2.0), True, ""),
        ("names x0 (speaker names ignored)", replace(d, names_weight=0.0), True, ""),
        ("names x1", replace(d, names_weight=1.0), True, ""),
        ("coverage x0 (BM25's order alone)", replace(d, coverage_weight=0.0), True, ""),
        ("coverage x0.25", replace(d, coverage_weight=0.25), True, ""),
        ("coverage x1", replace(d, coverage_weight=1.0), True, ""),
        ("no phrase pairs (words apart only)", replace(d, phrase_pairs=False), True, ""),
        ("phrase pairs in questions asking when too", replace(d, phrase_pairs_when=True), True, ""),
    ]


def table(rows: list[Score]) -> str:
    lines = [
        f"{'variant':68} {'hit@1':>6} {'hit@5':>6} {'q/s':>8} {'p50 ms':>7} {'p95 ms':>7}"
        f" {'leaks':>5}"
    ]
    for r in rows:
        lines.append(
            f"{r.variant[:68]:68} {r.hit1:6.3f} {r.hit5:6.3f} {r.queries_per_s:8.1f}"
            f" {r.p50_ms:7.2f} {r.p95_ms:7.2f} {r.leaks:5d}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.locomo", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="a LoCoMo JSON file (default: the public locomo10.json, downloaded once into "
        f"{locomo_data.cache_dir()} and checked by sha256)",
    )
    parser.add_argument(
        "--dialogues",
        default="all",
        help="which dialogues: all (default), dev (the five the settings were developed on), "
        "unseen (the others), or sample ids (conv-26,conv-30)",
    )
    parser.add_argument("--url", default=locomo_data.LOCOMO_URL, help=argparse.SUPPRESS)
    parser.add_argument(
        "--scale", type=int, default=100_000, help="conversations in the big guild (0: skip)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the default variant and the baseline only (no variants, no leave-one-out)",
    )
    parser.add_argument("--cli", action="store_true", help="also run `python -m bot memories`")
    parser.add_argument("--keep", type=Path, help="write the Echo data folder here and keep it")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--publish", action="store_true", help="also write the tracked bench/results-locomo.json"
    )
    args = parser.parse_args(argv)

    try:
        dataset = locomo_data.load(args.data, url=args.url).select(args.dialogues)
    except locomo_data.DataError as exc:
        print(f"LoCoMo data: {exc}", file=sys.stderr)
        return 2
    records = dataset.records
    qs = questions(records)
    print(f"{dataset.path} (sha256 {dataset.sha256[:12]}...): {dataset.describe()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="echo-bench-"))
    try:
        folder = args.keep or work / "data"
        written = asyncio.run(write_data_folder(folder, records, captions=True))
        generated = asyncio.run(generate_memories(folder))
        items = asyncio.run(load_folder(folder))
        print(
            f"{len(records)} dialogues -> {written} conversations in {folder}; "
            f"{generated} memories generated offline; {len(qs)} questions (categories 1-4)",
            flush=True,
        )
        rows: list[Score] = []
        base = baseline(records, qs)
        if base is not None:
            rows.append(base)
        else:
            print("rank_bm25 is not installed: no baseline row (pip install rank-bm25)")
        chosen = variants()
        if args.quick:
            chosen = chosen[:2]
        for name, settings, memories, note in chosen:
            rows.append(
                recall_variant(name, qs, items, settings, work, memories=memories, note=note)
            )
            print(table(rows[-1:]).splitlines()[1], flush=True)
        rows.append(sync_variant(folder, qs, work))
        print(table(rows[-1:]).splitlines()[1], flush=True)
        semantic = semantic_variant(qs, items, work)
        if semantic is not None:
            rows.append(semantic[0])
        if not args.quick:
            plain = work / "plain"
            asyncio.run(write_data_folder(plain, records, captions=False))
            asyncio.run(generate_memories(plain))
            plain_items = asyncio.run(load_folder(plain))
            rows.append(
                recall_variant(
                    "default, photo captions left out",
                    qs,
                    plain_items,
                    RecallSettings(),
                    work,
                    memories=True,
                )
            )
        if args.cli:
            cli_folder = work / "cli"
            asyncio.run(write_data_folder(cli_folder, records, captions=True))
            try:
                rows.append(cli_variant(cli_folder, records, qs))
            except (RuntimeError, OSError) as exc:
                print(f"CLI not measured: {exc}")
        print()
        print(table(rows))
        lodo = None
        if not args.quick and len(records) > 1:
            lodo = leave_one_out(qs, items, work)
        distilled = locomo_distill.measure(records, items)
        print("\n" + locomo_distill.table(distilled))
        scale = None
        if args.scale > 0:
            print(
                f"\nscale: {args.scale:,} conversations in one guild,"
                f" {args.scale // 20:,} in each of 4 others ...",
                flush=True,
            )
            scale = scale_run(args.scale, work)
            if locomo_semantic.missing() is None:
                scale["semantic"] = locomo_semantic.at_scale(args.scale, work, synthetic)
            for key, value in scale.items():
                print(f"  {key}: {value}")
        results = {
            "data": str(dataset.path),
            "data_sha256": dataset.sha256,
            "dialogues": dataset.samples,
            "questions": len(qs),
            "settings": asdict(RecallSettings()),
            "rows": [asdict(r) for r in rows],
            "leave_one_dialogue_out": lodo,
            "semantic": semantic[1] if semantic is not None else None,
            "distillation": distilled,
            "scale": scale,
            "python": sys.version.split()[0],
            "sqlite": __import__("sqlite3").sqlite_version,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwritten: {args.out}")
        if args.publish:
            PUBLISHED.write_text(json.dumps(results, indent=2) + "\n")
            print(f"published: {PUBLISHED}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def semantic_variant(
    qs: list[Question], items: list[tuple[Conversation, MemoryRecord | None]], work: Path
) -> tuple[Score, dict[str, Any]] | None:
    """The default with the semantic re-ranker (``bench/locomo_semantic.py``), if installed."""
    why = locomo_semantic.missing()
    if why is not None:
        print(f"semantic re-ranker: not measured: {why}")
        return None
    guild_by_thread = {c.thread_id: c.guild_id for c, _ in items}
    return locomo_semantic.measure(
        qs,
        items,
        work,
        lambda reranker: score(
            "default + semantic re-ranker",
            qs,
            lambda q: [h.thread_id for h in reranker.search(q.guild_id, q.text, limit=5)],
            guild_by_thread.__getitem__,
            "ECHO_RECALL_RERANKER=semantic; warm: the vectors kept",
        ),
    )


def leave_one_out(
    qs: list[Question], items: list[tuple[Conversation, MemoryRecord | None]], work: Path
) -> dict[str, Any]:
    """The default on every dialogue beside settings chosen without the dialogue scored."""
    grid = locomo_lodo.candidates()
    print(f"\nleave one dialogue out: {len(grid)} candidate settings ...", flush=True)
    found = locomo_lodo.outcomes(qs, items, grid, work)
    held, folds = locomo_lodo.held_out([q.guild_id for q in qs], found)
    text, data = locomo_lodo.table([q.category for q in qs], found["default"], held)
    print(text)
    for fold in folds:
        print(f"  dialogue of guild {fold.held_out} held out: chose {fold.chosen}")
    return {"table": data, "folds": [asdict(f) for f in folds]}


if __name__ == "__main__":
    raise SystemExit(main())
