"""Distillers: what turns one conversation into memory content.

A ``Distiller`` is a model or the extractive fallback, which needs no model at all: salient
sentences, keyword topics, and decisions, action items and questions found by their cue words.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from memory.longterm.summarizer import extractive_summary, sentences, words
from memory.recall.temporal import TIME_MARK, time_words
from memory.records.memories import Fact, MemoryData
from memory.records.models import Conversation, Message, MessageType

__all__ = ["Distiller", "ExtractiveDistiller", "extractive_memory"]

_DATED_BONUS = 1
# A sentence in which the speaker tells of themselves ("I started surfing five years ago", "my
# kids love it") is what a memory is for; the rest of a chat is mostly reactions to the other
# person ("Wow, that's great!") and questions. Such a sentence counts this many times its
# score, so facts told mostly come first and the rest fill what room is left. Measured on LoCoMo's
# dev dialogues (bench/README.md, "Distillation").
_FIRST_PERSON_WEIGHT = 10.0
# Case matters only for "US" (the country), not "us".
_FIRST_PERSON = re.compile(r"\b(?:[Ii]|[Mm]e|[Mm]y|[Mm]ine|[Mm]yself|[Ww]e|us|[Oo]ur|[Oo]urs)\b")
_MIN_FACTS = 12
_MAX_FACTS = 40
# A chat says the same thing many times over ("the pottery class", "my pottery", "that pottery
# bowl"): a sentence's score is weighed by the share of its words no fact chosen before holds,
# to this power, so the facts kept tell more things rather than one thing again. Powers 1 to 4
# measure about the same on LoCoMo's dev dialogues (bench/README.md, "Distillation").
_NOVELTY_POWER = 2

_DECISION = re.compile(
    r"\b(decided|decide|agreed|agree|let's|lets|we'll|we will|going to|settled|chose|choose"
    r"|plan(?:ned)? to)\b",
    re.I,
)
_ACTION = re.compile(
    r"\b(todo|to-do|need to|needs to|have to|has to|will|remind|don't forget|must|should)\b", re.I
)


class Distiller(Protocol):
    """Turns one conversation into memory content (a model, or the extractive fallback)."""

    name: str

    async def distil(self, conversation: Conversation) -> MemoryData: ...


def _source_messages(conversation: Conversation) -> list[Message]:
    """What memories are made from: what people said and what tools returned, never thinking."""
    return [
        m
        for m in conversation.history
        if (m.message_type is MessageType.CHAT and m.requester is not None)
        or m.message_type is MessageType.TOOL_CALL_RESPONSE
    ]


def extractive_memory(conversation: Conversation, *, max_facts: int | None = None) -> MemoryData:
    """A memory without a model: salient sentences, keyword topics, cue-word decisions.

    The facts are the sentences richest in the conversation's recurring words (Luhn's method),
    those in which the speaker tells of themselves counting ``_FIRST_PERSON_WEIGHT`` times as
    much. A long conversation holds more to remember: by default it keeps a fact for every two
    messages, 12 at least and 40 at most.
    """
    sources = _source_messages(conversation)
    if max_facts is None:
        max_facts = max(_MIN_FACTS, min(_MAX_FACTS, len(sources) // 2))
    names = conversation.author_names()
    summary = extractive_summary(sources, names, max_chars=600)
    counts = Counter(
        w for m in sources for w in set(words(m.message_content)) if not w.isdigit() and len(w) > 2
    )
    topics = [w for w, n in counts.most_common(8) if n > 1] or [w for w, _ in counts.most_common(5)]
    frequent = {w for w, n in counts.most_common(40)}

    scored: list[tuple[float, frozenset[str], Fact]] = []
    decisions: list[str] = []
    actions: list[str] = []
    questions: list[str] = []
    for message in sources:
        about = message.requester if message.message_type is MessageType.CHAT else None
        for sentence in sentences(message.message_content):
            found = words(sentence)
            if len(found) < 2:
                continue
            text = sentence if len(sentence) <= 300 else sentence[:297] + "…"
            hits = sum(1 for w in found if w in frequent)
            # "yesterday" means a day only beside the day it was said: the fact says which.
            dated = time_words(sentence, message.created_at).replace(TIME_MARK, "").strip()
            if dated:
                text = f"{text} ({dated})"
                hits += _DATED_BONUS
            ids = [message.message_id] if message.message_id else []
            value = hits * hits / len(found)
            if _FIRST_PERSON.search(sentence):
                value *= _FIRST_PERSON_WEIGHT
            scored.append(
                (value, frozenset(found), Fact(text=text, about=about, source_message_ids=ids))
            )
            if message.message_type is MessageType.CHAT:
                if text.endswith("?"):
                    questions.append(text)
                elif _DECISION.search(text):
                    decisions.append(text)
                elif _ACTION.search(text):
                    actions.append(text)
    chosen = _most_telling(scored, max_facts)
    facts = [scored[n][2] for n in sorted(chosen)]
    return MemoryData(
        summary=summary,
        topics=topics,
        facts=facts,
        decisions=decisions[:6],
        action_items=actions[:6],
        open_questions=questions[-5:],
    )


def _most_telling(scored: Sequence[tuple[float, frozenset[str], Fact]], count: int) -> list[int]:
    """The indices of ``count`` sentences chosen one by one, each the best by its score times
    the share of its words not in those chosen before (``_NOVELTY_POWER``); ties go to the
    earlier sentence.

    A sentence's value only falls as others are chosen, so the heap holds each one's last
    value as a bound: the top is taken once its value, brought up to date, still leads (the
    "lazy greedy" of submodular selection), rather than every sentence being valued again at
    every step.
    """
    heap = [(-value, n, 0) for n, (value, _, _) in enumerate(scored)]
    heapq.heapify(heap)
    covered: set[str] = set()
    chosen: list[int] = []
    while heap and len(chosen) < count:
        _, n, seen = heapq.heappop(heap)
        if seen == len(chosen):
            chosen.append(n)
            covered.update(scored[n][1])
            continue
        value, found, _ = scored[n]
        novel = len(found - covered) / len(found)
        heapq.heappush(heap, (-value * novel**_NOVELTY_POWER, n, len(chosen)))
    return chosen


class ExtractiveDistiller:
    """The offline distiller: works with no model at all."""

    name = "extractive"

    async def distil(self, conversation: Conversation) -> MemoryData:
        return extractive_memory(conversation)
