"""Extractive summaries: what a conversation said, picked from its own sentences.

Used when no model is available (the offline ``echo`` provider) and as the fallback when a
model fails, so that rolling summaries and /summarize always produce something true. It
scores sentences by how many of the conversation's frequent content words they carry
(Luhn's method) and keeps the best in their original order.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import NamedTuple

from memory.records.models import Message, MessageType

__all__ = [
    "FIRST_PERSON",
    "FIRST_PERSON_WEIGHT",
    "MIN_WORDS",
    "NOVELTY_POWER",
    "SPECIFIC_WEIGHT",
    "STOPWORDS",
    "Told",
    "extractive_summary",
    "most_telling",
    "name_words",
    "naming_boost",
    "sentences",
    "specifics",
    "telling_sentences",
    "words",
]

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

# A sentence in which a person tells of themselves ("I started surfing five years ago", "my
# kids love it") is what is worth remembering; the rest of a chat is mostly reactions to the
# other person ("Wow, that's great!") and questions. Such a sentence counts this many times
# its score. Measured on LoCoMo's dev dialogues (bench/README.md, "Distillation").
FIRST_PERSON_WEIGHT = 10.0
# Case matters only for "US" (the country), not "us".
FIRST_PERSON = re.compile(r"\b(?:[Ii]|[Mm]e|[Mm]y|[Mm]ine|[Mm]yself|[Ww]e|us|[Oo]ur|[Oo]urs)\b")
# A chat says the same thing many times over ("the pottery class", "my pottery", "that pottery
# bowl"): a sentence's score is weighed by the share of its words not yet kept, to this power.
# Powers 1 to 4 measure about the same (bench/README.md, "Distillation").
NOVELTY_POWER = 2
# A sentence that names something (a person, a place, a title, a number: "we saw Wicked in
# London", "I ran 10 miles") holds what people later ask about, though it may name it once,
# while Luhn's method weighs only the words that recur. Each such word, up to SPECIFIC_MOST,
# adds SPECIFIC_WEIGHT times the sentence's score. Measured on LoCoMo's dev dialogues
# (bench/README.md, "Distillation").
SPECIFIC_WEIGHT = 2.0
SPECIFIC_MOST = 3
# Distinct content words a sentence needs to be worth keeping: "Wow!", "Thanks, Mel!", "Anything
# new?" say nothing to remember.
MIN_WORDS = 3

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def words(text: str) -> list[str]:
    """Lower-case content words (stopwords removed), apostrophes folded."""
    found = (w.replace("'", "") for w in _WORD.findall(text.lower()))
    return [w for w in found if w not in STOPWORDS and len(w) > 1]


def specifics(sentence: str, names: Collection[str] = ()) -> int:
    """How many words of ``sentence`` name something: a number, or a capitalised word that
    does not begin the sentence (the case it is written in tells a name; "I" aside). The
    people of the conversation (``names``, lower-case) are no such thing: they are in all of
    it ("Thanks, Caroline!")."""
    count = 0
    for n, token in enumerate(_WORD.findall(sentence)):
        word = token.split("'")[0]  # "Caroline's", "I'm"
        if word[0].isdigit() or (
            n and word[0].isupper() and word != "I" and word.lower() not in names
        ):
            count += 1
    return count


def name_words(names: Mapping[str, str]) -> set[str]:
    """The words of the people's names (``names``: display name by id), as ``words`` gives
    them: "Mary Ann" -> {"mary", "ann"}."""
    return {part for name in names.values() for part in words(name)}


def naming_boost(sentence: str, people: Collection[str], weight: float = SPECIFIC_WEIGHT) -> float:
    """What a person's sentence's score is multiplied by for the words in it that name
    something (``specifics``, at most ``SPECIFIC_MOST`` of them); ``people``: ``name_words``."""
    return 1 + weight * min(specifics(sentence, people), SPECIFIC_MOST)


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
    chosen = telling_sentences(messages, names, max_chars=max_chars, echo_name=echo_name)
    return "\n".join(f"{told.speaker}: {told.sentence}" for told in chosen)


class Told(NamedTuple):
    """A sentence kept: who said it, the sentence, the message it is from."""

    speaker: str
    sentence: str
    message: Message


def telling_sentences(
    messages: Iterable[Message],
    names: Mapping[str, str] | None = None,
    *,
    max_chars: int = 1200,
    echo_name: str = "Echo",
    first_person_weight: float = 1.0,
    specific_weight: float = 0.0,
) -> list[Told]:
    """The sentences ``extractive_summary`` keeps, in their order.

    A sentence scores by how many of the conversation's recurring words it carries (Luhn's
    method), Echo's restatements less, and one in which a person tells of themselves
    ``first_person_weight`` times as much (a memory's summary is about the people:
    ``FIRST_PERSON_WEIGHT``), and one naming something more by ``specific_weight`` for each
    such word (``specifics``). One of fewer than ``MIN_WORDS`` content words says nothing to
    keep. Sentences are then taken best first, each valued by its score times its share of
    words not yet taken (``most_telling``), as long as they fit in ``max_chars``: a summary
    that says several things, not one thing in several ways.
    """
    names = names or {}
    candidates: list[tuple[str, str, Message]] = []
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
            candidates.append((speaker, sentence, message))
    if not candidates:
        return []
    said = [words(sentence) for _, sentence, _ in candidates]
    found = [frozenset(content) for content in said]
    frequency = Counter(w for words_of in found for w in words_of)
    # Luhn's significant words: those that recur. A conversation too short for any word to
    # recur falls back to all of them.
    frequent = {w for w, n in frequency.most_common(40) if n > 1} or set(frequency)
    people = name_words(names)

    def score(n: int) -> float:
        speaker, sentence, message = candidates[n]
        content = said[n]
        # "Wow!", "Thanks, Mel!": too few words to say anything worth keeping.
        if len(found[n]) < MIN_WORDS:
            return 0.0
        hits = sum(1 for w in content if w in frequent)
        # People's own words matter more than Echo's restatements of them.
        value = (0.6 if speaker == echo_name else 1.0) * hits * hits / len(content)
        person = message.message_type is MessageType.CHAT and message.requester is not None
        if person and FIRST_PERSON.search(sentence):
            value *= first_person_weight
        if person and specific_weight:  # a tool's output is all names and numbers
            value *= naming_boost(sentence, people, specific_weight)
        return value

    used = 0

    def fits(n: int) -> bool:
        nonlocal used
        size = len(candidates[n][0]) + len(candidates[n][1]) + 3  # "speaker: sentence\n"
        if used + size > max_chars:
            return False
        used += size
        return True

    chosen = most_telling([score(n) for n in range(len(candidates))], found, accept=fits)
    if not chosen:  # nothing says enough: the conversation's first sentences, as they fit
        chosen = [n for n in range(len(candidates)) if fits(n)]
    return [Told(*candidates[n]) for n in sorted(chosen)]


def most_telling(
    values: Sequence[float],
    found: Sequence[frozenset[str]],
    *,
    limit: int | None = None,
    accept: Callable[[int], bool] | None = None,
) -> list[int]:
    """The indices of sentences chosen one by one (at most ``limit``, each one ``accept``
    agrees to), best first: each valued by its score (``values``) times the share of its
    words (``found``) not in those chosen before, to the power
    ``NOVELTY_POWER``. A sentence of no value is never chosen; ties go to the earlier one.

    A sentence's value only falls as others are chosen, so the heap holds each one's last
    value as a bound: the top is taken once its value, brought up to date, still leads (the
    "lazy greedy" of submodular selection), rather than every sentence being valued again at
    every step.
    """
    seen: set[str] = set()
    heap = [(-value, n, -1) for n, value in enumerate(values) if value > 0]
    heapq.heapify(heap)
    chosen: list[int] = []
    while heap and (limit is None or len(chosen) < limit):
        _, n, valued_at = heapq.heappop(heap)
        if valued_at == len(chosen):
            if accept is None or accept(n):
                chosen.append(n)
                seen.update(found[n])
            continue
        words_of = found[n]
        novel = len(words_of - seen) / len(words_of) if words_of else 0.0
        value = values[n] * novel**NOVELTY_POWER
        if value > 0:
            heapq.heappush(heap, (-value, n, len(chosen)))
    return chosen
