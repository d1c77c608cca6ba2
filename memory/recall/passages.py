"""What recall indexes of a conversation and its memory, and how it is cut and weighed.

Each choice was measured on the LoCoMo dev split with ``python -m bench.locomo`` (the results
are in ``bench/README.md``):

- **Passages, not whole conversations.** A conversation is indexed as overlapping passages of
  ``window`` messages (every ``stride`` messages), and ranked by its best passage. An answer
  usually sits in two or three messages; BM25 over a whole long conversation dilutes them.
- **Its dates, in words.** Every passage carries the day the conversation started and the
  days its own messages were said ("Monday 8 May 2023"), in a column of its own with a higher
  weight: questions say "in May 2023". The memory passage carries every day the conversation
  was held on. Both dates count because a conversation goes on over days, and because a file
  another tool wrote may date either the conversation or its messages by when it was written.
- **The dates its words mean.** "yesterday", "last Friday", "two weeks ago" are resolved
  against the message's date and go in the dates column as words too, with a mark on any
  passage that places something in time; a question asking when adds the mark, so the passage
  that says when ranks first (``memory.recall.temporal``). Relative dates in a question are
  resolved against the time of asking.
- **Its memory.** The memory record (summary, topics, facts, decisions, action items, open
  questions) and the conversation's rolling summary are one more passage of the conversation.
- **People over Echo.** What people said, and Echo's own answers and tool results, are
  separate columns; Echo's weigh less (they restate). Thinking and tool calls are not indexed.
- **Coverage.** What each person said is kept as their distinct words, so BM25's best
  conversations can be ordered again by how much of the question the person it names said
  there (``memory.recall.coverage``).
- **Words in order.** Two neighbouring words of a question ("support group") are searched
  for as a phrase as well as apart, except in a question asking when: there the conversation
  that said when it happened is wanted, not the later ones that name the thing again in the
  same words (measured: phrases help the other questions, and cost those).
- **Kinds.** What a person said also says what kind of thing they named ("taekwondo": a
  martial art), from a lexicon derived from WordNet, for coverage: a question asking for the
  kind is covered where the instance was said (``memory.recall.kinds``).
- **Verbs.** A question asking "did Nate win" is covered where Nate said "I won": the forms of
  irregular verbs count as one word for coverage (``memory.recall.verbs``).
- **Said when.** In a question asking when, coverage counts again by what the person said
  near a message where they placed something in time: the conversation that told of the thing
  as it happened, not a later one naming it again (``memory.recall.coverage``).
- **Porter stemming** (``porter unicode61 remove_diacritics 2``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache

from memory.recall.speakers import names_by_requester
from memory.recall.temporal import time_words
from memory.records.memories import MemoryRecord
from memory.records.models import Conversation, Message, MessageType

__all__ = [
    "MAX_PASSAGES",
    "PASSAGE_BITS",
    "SCHEMA_VERSION",
    "Passage",
    "RecallSettings",
    "Said",
    "attachment_text",
    "conversation_passages",
    "date_words",
    "held_on",
    "iso",
    "memory_columns",
    "memory_text",
    "passages_of",
    "said_in",
]

SCHEMA_VERSION = 7

# Passage rowids are ``conversation id << PASSAGE_BITS | n``: all passages of a conversation
# are one rowid range, which FTS5 deletes without scanning. Passage 0 is the memory.
PASSAGE_BITS = 20
MAX_PASSAGES = (1 << PASSAGE_BITS) - 1
# Attachment text is indexed, up to this much per message.
_MAX_ATTACHMENT_CHARS = 20_000


@dataclass(frozen=True)
class RecallSettings:
    """How conversations are cut and weighed. Measured defaults; see the module docstring.

    ``window``, ``stride`` and ``tokenizer`` shape the stored index: opening a guild file made
    with other values resets it (it is rebuildable from the conversation files). The weights,
    the phrase pairs, the kinds and the timed coverage apply at query time.
    """

    window: int = 4
    stride: int = 2
    tokenizer: str = "porter unicode61 remove_diacritics 2"
    people_weight: float = 1.0
    echo_weight: float = 0.5
    memory_weight: float = 0.5
    names_weight: float = 0.5
    dates_weight: float = 2.0
    # BM25's best conversations ordered again by their coverage of the question, this much.
    coverage_weight: float = 0.5
    # The question's neighbouring words searched as phrases too (``query.phrase_pairs``); for
    # a question asking when, only with ``phrase_pairs_when``.
    phrase_pairs: bool = True
    phrase_pairs_when: bool = False
    # Coverage counts a kind as said where an instance of it was (``memory.recall.kinds``).
    kinds: bool = True
    # In a question asking when, coverage by what the person said near placing something in
    # time counts again, this much (``memory.recall.coverage``).
    timed_weight: float = 0.25
    # Coverage counts a question's irregular verb as said in any of its forms ("win" where
    # "won" was; ``memory.recall.verbs``).
    verb_forms: bool = True
    index_echo: bool = True

    def __post_init__(self) -> None:
        if self.window < 1 or not 1 <= self.stride <= self.window:
            raise ValueError("need window >= 1 and 1 <= stride <= window")

    def fingerprint(self) -> str:
        shape = f"v{SCHEMA_VERSION}|{self.window}|{self.stride}|{self.tokenizer}|{self.index_echo}"
        return hashlib.sha256(shape.encode()).hexdigest()[:16]

    @property
    def weights(self) -> tuple[float, ...]:
        # In the column order of the passages table.
        return (
            self.people_weight,
            self.echo_weight,
            self.memory_weight,
            self.names_weight,
            self.dates_weight,
        )


@dataclass(frozen=True, slots=True)
class Passage:
    people: str
    echo: str
    names: str
    days: tuple[str, ...]  # the days its messages were said, in words (``date_words``)
    times: str  # the dates its messages refer to, resolved (see memory.recall.temporal)


def attachment_text(message: Message) -> str:
    """The indexed text of a message's attachments (names, descriptions, extracted text)."""
    attachments = (message.other_meta or {}).get("attachments")
    if not isinstance(attachments, list):
        return ""
    parts: list[str] = []
    for item in attachments:
        if not isinstance(item, dict):
            continue
        for key in ("filename", "description", "text"):
            value = item.get(key)
            if isinstance(value, str) and value:
                parts.append(value[:_MAX_ATTACHMENT_CHARS])
    return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class Said:
    """One message recall indexes: who said it (``None``: Echo, its answer or a tool's result),
    its text with its attachments' text, the day it was said (``date_words``) and the dates it
    refers to (resolved)."""

    speaker: str | None
    text: str
    day: str
    times: str


def said_in(conversation: Conversation, *, index_echo: bool = True) -> list[Said]:
    """The messages that carry words people can ask about: what people said and, with
    ``index_echo``, Echo's answers and tool results. Thinking and tool calls are left out.
    A message without its writer's name gets the one they wrote under elsewhere in the
    conversation or, failing that, the one the other person addressed them by
    (``memory.recall.speakers``)."""
    people = [
        (m.requester, m.message_content, m.author_name)
        for m in conversation.history
        if m.message_type is MessageType.CHAT and m.requester is not None
    ]
    names = names_by_requester(people)
    said: list[Said] = []
    for message in conversation.history:
        kind = message.message_type
        text = message.message_content
        extra = attachment_text(message)
        if extra:
            text = f"{text}\n{extra}" if text else extra
        if not text.strip():
            continue
        when = message.created_at or conversation.created_at
        if kind is MessageType.CHAT and message.requester is not None:
            name = message.author_name or names.get(message.requester, "")
            said.append(Said(name, text, date_words(when), time_words(text, when)))
        elif index_echo and kind in (MessageType.CHAT, MessageType.TOOL_CALL_RESPONSE):
            said.append(Said(None, text, date_words(when), time_words(text, when)))
    return said


def conversation_passages(conversation: Conversation, settings: RecallSettings) -> list[Passage]:
    """Overlapping windows over the messages that carry words people can ask about."""
    return passages_of(said_in(conversation, index_echo=settings.index_echo), settings)


def passages_of(said: list[Said], settings: RecallSettings) -> list[Passage]:
    """Overlapping windows of ``settings.window`` messages, every ``settings.stride``."""
    if not said:
        return []
    window, stride = settings.window, settings.stride
    starts = list(range(0, max(1, len(said) - window + stride), stride))
    if len(starts) > MAX_PASSAGES:  # more than a million passages: widen the last one
        starts = starts[:MAX_PASSAGES]
    passages: list[Passage] = []
    for number, start in enumerate(starts):
        end = len(said) if number == len(starts) - 1 else start + window
        chunk = said[start:end]
        names = dict.fromkeys(s.speaker for s in chunk if s.speaker)
        days = dict.fromkeys(s.day for s in chunk if s.day)
        times = dict.fromkeys(w for s in chunk for w in s.times.split())
        passages.append(
            Passage(
                people="\n".join(s.text for s in chunk if s.speaker is not None),
                echo="\n".join(s.text for s in chunk if s.speaker is None),
                names=" ".join(names),
                days=tuple(days),
                times=" ".join(times),
            )
        )
    return passages


def memory_columns(memory: MemoryRecord) -> tuple[str, str, str]:
    """(searchable text, summary, topics) of a memory record."""
    text = "\n".join(str(value) for value in memory.searchable_text().values() if value)
    data = memory.memory_data
    return text, data.summary, " ".join(data.topics)


def memory_text(conversation_summary: str, memory: str) -> str:
    """Passage 0: the conversation's rolling summary and its memory record."""
    return "\n".join(part for part in (conversation_summary, memory) if part)


def held_on(said: Iterable[Said], created_at: datetime | None) -> tuple[str, ...]:
    """The days a conversation was held on, in words: the day it was created, then the days its
    messages were said."""
    days = dict.fromkeys([date_words(created_at), *(s.day for s in said)])
    return tuple(day for day in days if day)


def date_words(moment: datetime | None) -> str:
    """A day as people say it: "Monday 8 May 2023"."""
    if moment is None:
        return ""
    return _day_words(moment.astimezone(UTC).date())


# Every message of a conversation is dated, and most share their day with the one before.
@lru_cache(maxsize=4096)
def _day_words(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B} {day.year}"


def iso(moment: datetime | None) -> str | None:
    """A moment as the index stores it (and compares it with the store's)."""
    return moment.astimezone(UTC).isoformat() if moment is not None else None
