"""Recall's timing at scale: one guild of many small synthetic conversations beside four others.

Quality needs LoCoMo; time does not, so the conversations here are made up (chat-like word
frequencies from a fixed seed) in numbers no real data set of dialogues reaches. The run
measures what a new process pays: opening the index, the guild file's first use, the first
search, then search latency in the big guild and in a small one.
"""

from __future__ import annotations

import itertools
import random
import shutil
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.locomo_score import percentile
from memory import Conversation, Message, MessageType
from memory.recall import RecallIndex

__all__ = ["scale_run", "synthetic"]


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
