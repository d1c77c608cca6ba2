"""Does a memory record hold the answer? Distillation measured on LoCoMo's questions.

For each question of categories 1-4, the answer's content words (lower-case, stopwords out)
are looked up in the memory records of its evidence conversations: their facts and summary
together, the summary alone (what a search result shows), and the line the model reads when
the memory is put in its context. Token recall is the share of the answer's words found there;
"whole" is the share of questions whose every answer word is found. The same measure over the
evidence conversations' full text is the ceiling (an answer inferred, not said, is not in the
text either).

The answers are read here only to score records, never given to Echo. So are LoCoMo's own
summaries of the sessions, written by people, against which a record's topics are scored
(``topics``): the share of its topic words the session's summary uses too (the two speakers'
names left out: every summary names them).
"""

from __future__ import annotations

import re
from typing import Any

from bot.agent.notes import memory_line
from memory.longterm.summarizer import words
from memory.recall.coverage import stem
from memory.records.memories import MemoryRecord
from memory.records.models import Conversation

__all__ = ["measure", "table", "topics"]

_EVIDENCE = re.compile(r"D:?(\d+):(\d+)")
_NAMES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}


def _thread(guild_index: int, session: int) -> str:
    return str((1000 + guild_index) * 1000 + session)


# What of a memory record each column reads: the whole record (facts and summary), the summary
# alone (what a search result, the recall tool and the conversation list show), and the line
# the model is given when the memory is put in its context (``bot.agent.notes.memory_line``:
# the summary's first 500 characters and the first four facts), beside the full text.
_VIEWS = ("record", "summary", "read", "text")


def _views(conversation: Conversation, memory: MemoryRecord | None) -> dict[str, set[str]]:
    text = " ".join(m.message_content for m in conversation.history)
    if memory is None:
        return {"record": set(), "summary": set(), "read": set(), "text": set(words(text))}
    data = memory.memory_data
    summary = set(words(data.summary))
    return {
        "record": summary.union(*(words(f.text) for f in data.facts)),
        "summary": summary,
        "read": set(words(memory_line(memory, None))),
        "text": set(words(text)),
    }


def measure(
    records: list[dict[str, Any]], items: list[tuple[Conversation, MemoryRecord | None]]
) -> dict[str, dict[str, float]]:
    """Per category: mean token recall of the answer, and the share of answers found whole, in
    each view of the records (``_VIEWS``) and in the full text."""
    views = {c.thread_id: _views(c, m) for c, m in items}
    sums: dict[str, dict[str, float]] = {}
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
            for key in (f"{category} {_NAMES[category]}", "all"):
                row = sums.setdefault(key, {"n": 0.0})
                row["n"] += 1
                for view in _VIEWS:
                    found = set().union(*(views[t][view] for t in threads if t in views))
                    recall = len(answer & found) / len(answer)
                    row[f"{view}_recall"] = row.get(f"{view}_recall", 0.0) + recall
                    row[f"{view}_whole"] = row.get(f"{view}_whole", 0.0) + (recall == 1.0)
    return {
        key: {"n": int(v["n"])} | {k: round(x / v["n"], 3) for k, x in v.items() if k != "n"}
        for key, v in sorted(sums.items(), key=lambda kv: (kv[0] == "all", kv[0]))
    }


def table(data: dict[str, dict[str, float]]) -> str:
    lines = [
        "distillation: the answer's words in the evidence conversations' memory records"
        " (recall / whole): the record (facts + summary), its summary alone, what the model"
        " reads of it (summary's first 500 characters + four facts), the full text",
        f"{'category':14} {'n':>4}  {'record':>13} {'summary':>13} {'read':>13} {'text':>13}",
    ]
    for key, v in data.items():
        cells = " ".join(f"{v[f'{view}_recall']:6.3f} {v[f'{view}_whole']:6.3f}" for view in _VIEWS)
        lines.append(f"{key:14} {v['n']:4d}  {cells}")
    return "\n".join(lines)


def topics(
    records: list[dict[str, Any]], items: list[tuple[Conversation, MemoryRecord | None]]
) -> dict[str, float]:
    """The share of the records' topic words that LoCoMo's summary of the same session uses
    (each word with a light suffix folding; the speakers' names out), and how many topics a
    record has."""
    found = total = records_scored = 0
    for conversation, memory in items:
        if memory is None:
            continue
        index, session = divmod(int(conversation.thread_id), 1000)
        record = records[index - 1000]
        summary = record.get("session_summary", {}).get(f"session_{session}_summary", "")
        if not summary:
            continue
        people = record["conversation"]
        names = {stem(w) for key in ("speaker_a", "speaker_b") for w in words(people[key])}
        summary_words = {stem(w) for w in words(summary)} - names
        topic_words = memory.memory_data.topics
        found += sum(1 for w in topic_words if stem(w) in summary_words)
        total += len(topic_words)
        records_scored += 1
    return {
        "records": records_scored,
        "topics_per_record": round(total / max(records_scored, 1), 2),
        "in_session_summary": round(found / max(total, 1), 3),
    }
