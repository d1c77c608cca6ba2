"""Extractive summaries: what a conversation said, picked from its own sentences.

Used when no model is available (the offline ``echo`` provider) and as the fallback when a
model fails, so that rolling summaries and /summarize always produce something true. It
scores sentences by how many of the conversation's frequent content words they carry
(Luhn's method) and keeps the best in their original order.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping

from memory.records.models import Message, MessageType

__all__ = ["STOPWORDS", "extractive_summary", "sentences", "words"]

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    im ive id youre dont didnt doesnt cant wont isnt arent wasnt thats whats lets also yes yeah
    ok okay oh hi hello hey thanks thank please really like get got go going know think want
    one two well much many still even make made let say said""".split()
)

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def words(text: str) -> list[str]:
    """Lower-case content words (stopwords removed), apostrophes folded."""
    found = (w.replace("'", "") for w in _WORD.findall(text.lower()))
    return [w for w in found if w not in STOPWORDS and len(w) > 1]


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def extractive_summary(
    messages: Iterable[Message],
    names: Mapping[str, str] | None = None,
    *,
    max_chars: int = 1200,
    echo_name: str = "Echo",
) -> str:
    """A few of the conversation's most telling sentences, each with who said it.

    Only what people said and what tools returned counts; ``thinking`` never does.
    """
    names = names or {}
    candidates: list[tuple[int, str, str]] = []  # (order, speaker, sentence)
    for message in messages:
        if message.message_type not in (MessageType.CHAT, MessageType.TOOL_CALL_RESPONSE):
            continue
        if message.message_type is MessageType.TOOL_CALL_RESPONSE:
            speaker = f"tool {message.name or ''}".strip()
        elif message.requester is None:
            speaker = echo_name
        else:
            speaker = names.get(message.requester) or message.author_name or message.requester
        for sentence in sentences(message.message_content):
            if len(sentence) > 300:
                sentence = sentence[:297].rstrip() + "…"
            candidates.append((len(candidates), speaker, sentence))
    if not candidates:
        return ""
    frequency = Counter(w for _, _, s in candidates for w in set(words(s)))
    # Luhn's significant words: those that recur. A conversation too short for any word to
    # recur falls back to all of them.
    frequent = {w for w, n in frequency.most_common(40) if n > 1} or set(frequency)

    def score(item: tuple[int, str, str]) -> float:
        found = words(item[2])
        if not found:
            return 0.0
        hits = sum(1 for w in found if w in frequent)
        # People's own words matter more than Echo's restatements of them.
        weight = 0.6 if item[1] == echo_name else 1.0
        return weight * hits * hits / len(found)

    scored = [(score(item), item) for item in candidates]
    # A sentence with none of the recurring words says nothing about what was discussed.
    ranked = [item for value, item in sorted(scored, key=lambda p: (-p[0], p[1][0])) if value > 0]
    ranked = ranked or candidates
    chosen: list[tuple[int, str, str]] = []
    used = 0
    for item in ranked:
        line = f"{item[1]}: {item[2]}"
        if used + len(line) + 1 > max_chars:
            continue
        chosen.append(item)
        used += len(line) + 1
    chosen.sort()
    return "\n".join(f"{speaker}: {sentence}" for _, speaker, sentence in chosen)
