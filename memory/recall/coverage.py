"""Coverage: how much of what a question asks about, the person it names said in a conversation.

BM25 ranks a conversation by its single best passage. A question often asks about several
things at once ("what does Melanie do with her family on hikes?"), or about one person's life
in a conversation where two people talk: the conversation that answers it is where *that
person* mentions *all* of it, perhaps across the whole conversation, not the one passage that
repeats one word. So BM25's best candidates are ordered again by

    score / best score + weight x coverage

where coverage is the share of the question's words (stopwords and names left out) found in
what the person it names said in that conversation, or on its date ("in August", "2022");
a question naming no one who spoke there is measured against everything said in it. The
dates said words refer to count as said ("last Friday" said on 14 August 2023 says
"August"). Each word counts once, however often it was said,
so coverage rewards breadth where BM25 rewards repetition. A word said also says what kind of
thing it names (``memory.recall.kinds``: "taekwondo" says "martial art"), so a question asking
for a kind is covered by the instance that answers it; the kinds are kept apart and count only
with ``RecallSettings.kinds``. A question's irregular verb is covered by any of its forms
(``memory.recall.verbs``: "did Nate win" by "I won"), with ``RecallSettings.verb_forms``.

**When.** A question asking when a thing happened is answered by the conversation where the
person told of it as it happened ("I went to a support group yesterday"), while later ones name
the thing again with no time ("the support group has been great"). So for such a question
(``memory.recall.temporal.asks_for_time``) a second share counts, with its own weight
(``RecallSettings.timed_weight``): the question's words found in what the person said within
``NEAR_TIME`` messages of one where they placed something in time (a resolved date, a month, a
year, "for four years", "recently": what carries ``TIME_MARK``).

Words are compared after a light suffix folding (``stem``), not FTS5's Porter stemmer: the
comparison is done here, in Python, on the words stored for each conversation
(``speech_words``), and only needs to be the same on both sides. The weight
(``RecallSettings.coverage_weight``) was chosen on LoCoMo's dev dialogues with every setting
held out by dialogue (``python -m bench.locomo``; the figures are in ``bench/README.md``); a
broad range around it does as well.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import NamedTuple

from memory.longterm.summarizer import STOPWORDS
from memory.recall.kinds import kinds_of
from memory.recall.passages import Said, held_on, said_in
from memory.recall.temporal import TIME_MARK
from memory.recall.verbs import other_forms
from memory.records.models import Conversation

__all__ = ["DEPTH", "NEAR_TIME", "coverage_order", "speech_of", "speech_words", "stem"]

# How many of BM25's best conversations are ordered again.
DEPTH = 20
# A person's message this close (in messages) to one where they placed something in time is
# taken as said about that time: people name the thing a message before or after saying when
# ("We adopted a puppy last week!" ... "Max loves the beach"). 1 to 4 measure about the same
# on LoCoMo's dev dialogues (bench/README.md).
NEAR_TIME = 2

_TOKEN = re.compile(r"[^\W_]+")
_SUFFIXES = ("ing", "ed", "es", "s")
# Echo's own words are kept under this key: Echo is never the person a question names.
_ECHO = ""


# Indexing folds every word of every message (chat repeats its words: most calls are
# answered from the cache).
@lru_cache(maxsize=1 << 14)
def stem(word: str) -> str:
    """``word`` with one common English suffix folded away ("hikes", "hiking" -> "hik")."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _words(text: str) -> set[str]:
    return set(_TOKEN.findall(text.lower())).difference(STOPWORDS)


def _stems(text: str) -> set[str]:
    return {stem(w) for w in _words(text)}


def speech_words(conversation: Conversation, *, index_echo: bool = True) -> str:
    """``speech_of`` the messages of ``conversation`` that recall indexes."""
    said = said_in(conversation, index_echo=index_echo)
    return speech_of(said, held_on(said, conversation.created_at))


def speech_of(said: Iterable[Said], days: Iterable[str]) -> str:
    """What each speaker said, as the distinct words of each, with the dates they referred to
    (resolved, as in the passages); and the ``days`` the conversation was held on
    (``held_on``), which count for every speaker. JSON: ``{"when": words, "said": {speaker:
    words}}``, each speaker by name, lowercased; Echo's answers under the empty name. And the
    kinds of things each named (``memory.recall.kinds``), not said themselves: ``"kinds":
    {speaker: words}``; and the words each said near placing something in time
    (``NEAR_TIME``): ``"timed": {speaker: words}``."""
    messages = list(said)
    speakers = [_ECHO if m.speaker is None else m.speaker.lower() for m in messages]
    placed = [TIME_MARK in m.times.split() for m in messages]
    said_words: dict[str, set[str]] = {}
    timed_words: dict[str, set[str]] = {}
    for n, message in enumerate(messages):
        speaker = speakers[n]
        spoken = _words(message.text) | _words(message.times)
        said_words.setdefault(speaker, set()).update(spoken)
        near = range(max(0, n - NEAR_TIME), min(len(messages), n + NEAR_TIME + 1))
        if any(placed[i] and speakers[i] == speaker for i in near):
            timed_words.setdefault(speaker, set()).update(spoken)
    # Folded once per distinct word, not once per message it was said in.
    words = {k: {stem(w) for w in v} for k, v in said_words.items()}
    timed = {k: {stem(w) for w in v} for k, v in timed_words.items()}
    kinds = {k: {stem(w) for w in kinds_of(v)} - words[k] for k, v in said_words.items()}
    when = _stems(" ".join(days))
    return json.dumps(
        {
            "when": " ".join(sorted(when)),
            "said": {k: " ".join(sorted(v)) for k, v in words.items() if v},
            "kinds": {k: " ".join(sorted(v)) for k, v in kinds.items() if v},
            "timed": {k: " ".join(sorted(v)) for k, v in timed.items() if v},
        },
        sort_keys=True,
    )


class _Speech(NamedTuple):
    """A conversation's stored words, each a string of words between spaces. Strings, not
    sets: a question asks about a few words, and looking for each in a string costs less than
    making a set of every word said."""

    when: str  # the conversation's date
    said: dict[str, str]  # by speaker, with the kinds of what they named (if asked for)
    timed: dict[str, str]  # by speaker, what they said near placing something in time


def _read(stored: str, kinds: bool) -> _Speech:
    """What ``speech_of`` stored; nothing from a damaged row, which then ranks by BM25 alone."""
    try:
        raw = json.loads(stored) if stored else {}
    except ValueError:
        return _Speech("", {}, {})
    said = raw.get("said") if isinstance(raw, dict) else None
    if not isinstance(said, dict):
        return _Speech("", {}, {})
    named = raw.get("kinds") if kinds else None
    named = named if isinstance(named, dict) else {}
    timed = raw.get("timed")
    timed = timed if isinstance(timed, dict) else {}
    return _Speech(
        f" {raw.get('when', '')} ",
        {str(k): f" {v} {named.get(k, '')} " for k, v in said.items()},
        {str(k): f" {v} " for k, v in timed.items()},
    )


def coverage_order(
    terms: Sequence[str],
    scores: Sequence[float],
    speech: Sequence[str],
    weight: float,
    depth: int = DEPTH,
    *,
    kinds: bool = True,
    verb_forms: bool = False,
    timed_weight: float = 0.0,
) -> tuple[list[int], list[float]]:
    """The order (indices) of candidates by ``score / best + weight x coverage + timed_weight
    x timed coverage``, and each candidate's relevance in that order.

    ``terms`` are the question's search terms (``memory.recall.query.query_terms``); ``scores``
    the candidates' BM25 (higher is better), best first; ``speech`` their ``speech_words``.
    Only the first ``depth`` are ordered again; the others follow in BM25's order with their
    relevance ``score / best``, so asking for more results never changes the first ones.
    Ties keep BM25's order. With ``kinds``, a word the question asks is covered by a word of
    that kind said ("martial" and "art" by "taekwondo"). The timed coverage counts only what
    was said near placing something in time: give it a weight for a question asking when.
    A name the question asks about stands, in a conversation where no one of that name spoke,
    for a speaker known there by a shorter form of it ("Joanna" for a "Jo").
    """
    head = min(depth, len(scores))
    read = [_read(s, kinds) for s in speech[:head]]
    names = {
        part
        for words in read
        for speaker in words.said
        if speaker != _ECHO
        for part in _TOKEN.findall(speaker)
    }
    named = {t for t in terms if t in names}
    # Each word asked, as the stems that say it: its own, and with ``verb_forms`` those of the
    # other forms of its verb ("win": "won").
    asked = {
        frozenset({stem(t), *(stem(f) for f in (other_forms(t) if verb_forms else ()))})
        for t in terms
        if t not in named
    }
    best = max(scores, default=0.0)
    best = best if best > 0 else 1.0
    relevance: list[float] = []
    for score, words in zip(scores[:head], read, strict=True):
        theirs = _theirs(words, named)
        value = score / best + weight * _share(asked, [words.when, *map(words.said.get, theirs)])
        if timed_weight:
            value += timed_weight * _share(asked, [words.timed.get(k, "") for k in theirs])
        relevance.append(value)
    order = sorted(range(head), key=lambda i: -relevance[i])
    tail = range(head, len(scores))
    return [*order, *tail], [*(relevance[i] for i in order), *(scores[i] / best for i in tail)]


def _theirs(words: _Speech, named: set[str]) -> list[str]:
    """Whose words in this conversation are measured: the speakers the question names; if
    none of them spoke here, the ones known here by a shorter form of a name it asks about
    (Joanna, whom Nate called "Jo" where the file names no one: ``memory.recall.speakers``);
    failing that, everyone."""
    speakers = [s for s in words.said if s != _ECHO]
    theirs = [s for s in speakers if named.intersection(_TOKEN.findall(s))]
    if not theirs:
        theirs = [
            s
            for s in speakers
            if any(len(p) >= 2 and t.startswith(p) for p in _TOKEN.findall(s) for t in named)
        ]
    return theirs or list(words.said)


def _share(asked: set[frozenset[str]], pool: Sequence[str | None]) -> float:
    """The share of ``asked`` (each word as the stems that say it) found in any of ``pool``
    (strings of words between spaces)."""
    if not asked:
        return 0.0
    covered = sum(
        1
        for word in asked
        if any(words and any(f" {form} " in words for form in word) for words in pool)
    )
    return covered / len(asked)
