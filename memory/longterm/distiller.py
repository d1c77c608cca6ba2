"""Distillers: what turns one conversation into memory content.

A ``Distiller`` is a model or the extractive fallback, which needs no model at all: salient
sentences, keyword topics, and decisions, action items and questions found by their cue words.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import Protocol

from memory.longterm.summarizer import (
    FIRST_PERSON,
    FIRST_PERSON_WEIGHT,
    MIN_WORDS,
    SPECIFIC_WEIGHT,
    most_telling,
    name_words,
    naming_boost,
    sentences,
    telling_sentences,
    words,
)
from memory.recall.kinds import is_noun
from memory.recall.temporal import TIME_MARK, time_words
from memory.records.memories import Fact, MemoryData
from memory.records.models import Conversation, Message, MessageType

__all__ = ["Distiller", "ExtractiveDistiller", "extractive_memory"]

_DATED_BONUS = 1
_TOPICS = 8
# A topic is most often a thing: a word that is no known noun counts this much of a noun
# said as often ("trails, nature, hiking" before "happened, found").
_NOT_NOUN = 0.6

# Words people say about anything, never what a conversation is about: reactions ("great",
# "wow"), courtesy, hedges, and the commonest verbs, vague nouns and times. Without them the
# topics of a chat were "great, good, awesome, new" where they are "flavors, dairy, chocolate".
_NOT_TOPICS = frozenset(
    """
    amazing awesome bad beautiful best better big cool crazy excited exciting fantastic fine fun
    glad good great happy hard hope incredible interesting lovely nice proud sad special super
    sure tough wonderful wow yeah yes yep hey thanks thank sorry okay cheers congrats
    congratulations lol haha omg really totally definitely actually pretty lot lots something
    anything everything nothing thing things stuff way ways time times kind sort bit part sounds
    sound looks look seems seem feel feels felt keep kept try trying tried going gonna get got
    getting make made making know think thought want wanted need needed let lets tell told say
    said see saw seen come coming came take took give gave wait new last first next little much
    many lately recently today yesterday tomorrow week weeks day days month months year years
    ago soon
    """.split()
)
_MIN_FACTS = 12
_MAX_FACTS = 40

# What someone chose or means to do: "we decided to", "let's use", "we agreed on", "I chose",
# "I'm going to". Not "I agree!", "books to choose from", "art lets us" or "going to meetings
# has taught me": agreement, a verb that is no choice, a gerund.
_DECISION = re.compile(
    r"\b(?:decided|decide to|agreed (?:to|on|that)|agree (?:to|on)|let's|we'll|we will"
    r"|(?:i'm|i am|we're|we are) going to|settled on|chose|plan(?:ned)? to)\b",
    re.I,
)
# Something a person means to do, or asks to be done: "I'll send the link", "we need to book",
# "remind me to call", "you should try it". Not "it will be fun", "that must have been great"
# or "this reminds me of home": a prediction, a guess, a memory.
_ACTION = re.compile(
    r"\b(?:todo|to-do|don't forget to|do not forget to|remember to"
    r"|remind (?:me|us|you|him|her|them) to"
    r"|(?:i|we)(?:'ll| will| need to| have to| must(?! have\b| be\b|'ve\b)| should| gotta"
    r"|'m going to| am going to|'re going to| are going to)"
    r"|you (?:need to|have to|should))\b",
    re.I,
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


def _unanswered(conversation: Conversation) -> set[int]:
    """The chat messages (by ``id``) no one else spoke after: a question among them is open.
    Echo's answers count as answers."""
    open_ids: set[int] = set()
    later: set[str | None] = set()  # who spoke after, Echo as None
    for message in reversed(conversation.history):
        if message.message_type is not MessageType.CHAT:
            continue
        if not later - {message.requester}:
            open_ids.add(id(message))
        later.add(message.requester)
    return open_ids


def extractive_memory(conversation: Conversation, *, max_facts: int | None = None) -> MemoryData:
    """A memory without a model: salient sentences, keyword topics, cue-word decisions.

    The facts are the sentences richest in the conversation's recurring words (Luhn's method),
    those in which the speaker tells of themselves counting ``FIRST_PERSON_WEIGHT`` times as
    much. A long conversation holds more to remember: by default it keeps a fact for every two
    messages, 12 at least and 40 at most. They come most telling first: the model is shown a
    memory's first few (``bot.agent.notes.memory_line``).
    """
    sources = _source_messages(conversation)
    if max_facts is None:
        max_facts = max(_MIN_FACTS, min(_MAX_FACTS, len(sources) // 2))
    names = conversation.author_names()
    told = telling_sentences(
        sources,
        names,
        max_chars=600,
        first_person_weight=FIRST_PERSON_WEIGHT,
        specific_weight=SPECIFIC_WEIGHT,
    )
    # "yesterday" means a day only beside the day it was said: the memory says which.
    summary = "\n".join(f"{t.speaker}: {_dated(t.sentence, t.message.created_at)}" for t in told)
    counts = Counter(
        w for m in sources for w in set(words(m.message_content)) if not w.isdigit() and len(w) > 2
    )
    # The words of the people's names ("caroline"): no topic, nothing a fact names.
    parts = name_words(names)
    topics = _topics(counts, parts)
    frequent = {w for w, n in counts.most_common(40)}

    scored: list[tuple[float, frozenset[str], Fact]] = []
    decisions: list[str] = []
    actions: list[str] = []
    questions: list[str] = []
    unanswered = _unanswered(conversation)
    for message in sources:
        about = message.requester if message.message_type is MessageType.CHAT else None
        for sentence in sentences(message.message_content):
            found = words(sentence)
            if len(found) < 2:
                continue
            text = sentence if len(sentence) <= 300 else sentence[:297] + "…"
            hits = sum(1 for w in found if w in frequent)
            dated = _dated(text, message.created_at)
            if dated != text:
                text = dated
                hits += _DATED_BONUS
            ids = [message.message_id] if message.message_id else []
            value = hits * hits / len(found)
            if FIRST_PERSON.search(sentence):
                value *= FIRST_PERSON_WEIGHT
            if about is not None:  # a person's; a tool's output is all names and numbers
                value *= naming_boost(sentence, parts)
            if len(set(found)) >= MIN_WORDS:  # "Good to see you!" is nothing to remember
                fact = Fact(text=text, about=about, source_message_ids=ids)
                scored.append((value, frozenset(found), fact))
            if message.message_type is MessageType.CHAT:
                if text.endswith("?"):
                    if id(message) in unanswered:  # answered, it is no open question
                        questions.append(text)
                elif _DECISION.search(text):
                    decisions.append(text)
                elif _ACTION.search(text):
                    actions.append(text)
    chosen = most_telling(
        [value for value, _, _ in scored], [found for _, found, _ in scored], limit=max_facts
    )
    facts = [scored[n][2] for n in chosen]
    return MemoryData(
        summary=summary,
        topics=topics,
        facts=facts,
        decisions=decisions[:6],
        action_items=actions[:6],
        open_questions=questions[-5:],
    )


def _topics(counts: Counter[str], parts: set[str]) -> list[str]:
    """The words most messages said, nouns first (``_NOT_NOUN``); but not the words said of
    anything (``_NOT_TOPICS``), nor the people's own names or the short forms they were called
    by ("mel" for Melanie): a conversation between two people is not about them, each time.
    A noun that begins a name is still a topic ("art" beside Arthur). ``parts``: the words
    of the people's names."""
    kept: list[tuple[str, int, float]] = []
    for word, n in counts.most_common():
        if word in _NOT_TOPICS or word in parts:
            continue
        noun = is_noun(word)
        if not noun and any(part.startswith(word) for part in parts):
            continue
        kept.append((word, n, n if noun else n * _NOT_NOUN))
    kept.sort(key=lambda found: -found[2])
    return [w for w, n, _ in kept[:_TOPICS] if n > 1] or [w for w, _, _ in kept[:5]]


def _dated(sentence: str, said: datetime) -> str:
    """``sentence`` with the days its relative dates mean: "I went yesterday (Sunday 7 May
    2023)"; "yesterday" means a day only beside the day it was said."""
    dated = time_words(sentence, said).replace(TIME_MARK, "").strip()
    return f"{sentence} ({dated})" if dated else sentence


class ExtractiveDistiller:
    """The offline distiller: works with no model at all."""

    name = "extractive"

    async def distil(self, conversation: Conversation) -> MemoryData:
        return extractive_memory(conversation)
