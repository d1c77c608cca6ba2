"""Does a memory record hold the answer? Distillation measured on LoCoMo's questions.

For each question of categories 1-4, the answer's content words (lower-case, stopwords out)
are looked up in the memory records of its evidence conversations: their facts and summary.
Token recall is the share of the answer's words found there; "whole" is the share of questions
whose every answer word is found. The same measure over the evidence conversations' full text
is the ceiling (an answer inferred, not said, is not in the text either).

The answers are read here only to score records, never given to Echo.
"""

from __future__ import annotations

import re
from typing import Any

from memory.longterm.summarizer import words
from memory.records.memories import MemoryRecord
from memory.records.models import Conversation

__all__ = ["measure", "table"]

_EVIDENCE = re.compile(r"D:?(\d+):(\d+)")
_NAMES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}


def _thread(guild_index: int, session: int) -> str:
    return str((1000 + guild_index) * 1000 + session)


def measure(
    records: list[dict[str, Any]], items: list[tuple[Conversation, MemoryRecord | None]]
) -> dict[str, dict[str, float]]:
    """Per category: mean token recall of the answer in the records and in the full text."""
    record_words: dict[str, set[str]] = {}
    text_words: dict[str, set[str]] = {}
    for conversation, memory in items:
        text_words[conversation.thread_id] = set(
            words(" ".join(m.message_content for m in conversation.history))
        )
        found: set[str] = set()
        if memory is not None:
            data = memory.memory_data
            found.update(words(data.summary))
            for fact in data.facts:
                found.update(words(fact.text))
        record_words[conversation.thread_id] = found
    sums: dict[str, list[float]] = {}
    for index, record in enumerate(records):
        for qa in record["qa"]:
            category = qa.get("category")
            if category not in _NAMES:
                continue
            raw = " ".join(str(e) for e in qa.get("evidence", []))
            threads = {_thread(index, int(s)) for s, _ in _EVIDENCE.findall(raw)}
            answer = set(words(str(qa.get("answer", ""))))
            if not threads or not answer:
                continue
            in_record = set().union(*(record_words.get(t, set()) for t in threads))
            in_text = set().union(*(text_words.get(t, set()) for t in threads))
            recall = len(answer & in_record) / len(answer)
            ceiling = len(answer & in_text) / len(answer)
            for key in (f"{category} {_NAMES[category]}", "all"):
                row = sums.setdefault(key, [0.0, 0.0, 0.0, 0.0, 0.0])
                row[0] += recall
                row[1] += recall == 1.0
                row[2] += ceiling
                row[3] += ceiling == 1.0
                row[4] += 1
    return {
        key: {
            "n": int(v[4]),
            "record_recall": round(v[0] / v[4], 3),
            "record_whole": round(v[1] / v[4], 3),
            "text_recall": round(v[2] / v[4], 3),
            "text_whole": round(v[3] / v[4], 3),
        }
        for key, v in sorted(sums.items(), key=lambda kv: (kv[0] == "all", kv[0]))
    }


def table(data: dict[str, dict[str, float]]) -> str:
    lines = [
        "distillation: the answer's words in the evidence conversations' memory records"
        " (facts + summary) / in their full text",
        f"{'category':14} {'n':>4}  {'record recall':>13} {'record whole':>12}"
        f"  {'text recall':>11} {'text whole':>10}",
    ]
    for key, v in data.items():
        lines.append(
            f"{key:14} {v['n']:4d}  {v['record_recall']:13.3f} {v['record_whole']:12.3f}"
            f"  {v['text_recall']:11.3f} {v['text_whole']:10.3f}"
        )
    return "\n".join(lines)
