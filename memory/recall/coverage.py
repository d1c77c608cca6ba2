"""Coverage: how much of what a question asks about, the person it names said in a conversation.

BM25 ranks a conversation by its single best passage. A question often asks about several
things at once ("what does Melanie do with her family on hikes?"), or about one person's life
in a conversation where two people talk: the conversation that answers it is where *that
person* mentions *all* of it, perhaps across the whole conversation, not the one passage that
repeats one word. So BM25's best candidates are ordered again by

    score / best score + weight x coverage

where coverage is the share of the question's words (stopwords and names left out) found in
what the person it names said in that conversation; a question naming no one who spoke there
is measured against everything said in it. Each word counts once, however often it was said,
so coverage rewards breadth where BM25 rewards repetition.

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
from collections.abc import Iterable, Mapping, Sequence

from memory.longterm.summarizer import STOPWORDS
from memory.recall.passages import attachment_text
from memory.records.models import Conversation, MessageType

__all__ = ["DEPTH", "coverage_order", "speech_words", "stem"]

# How many of BM25's best conversations are ordered again.
DEPTH = 20

_TOKEN = re.compile(r"[^\W_]+")
_SUFFIXES = ("ing", "ed", "es", "s")
# Echo's own words are kept under this key: Echo is never the person a question names.
_ECHO = ""


def stem(word: str) -> str:
    """``word`` with one common English suffix folded away ("hikes", "hiking" -> "hik")."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _stems(text: str) -> set[str]:
    return {stem(w) for w in _TOKEN.findall(text.lower()) if w not in STOPWORDS}


def speech_words(conversation: Conversation, *, index_echo: bool = True) -> str:
    """What each speaker said in ``conversation``, as the distinct words of each (JSON:
    speaker's name, lowercased -> words); Echo's answers under the empty name."""
    said: dict[str, set[str]] = {}
    for message in conversation.history:
        kind = message.message_type
        if kind is MessageType.CHAT and message.requester is not None:
            speaker = (message.author_name or "").lower()
        elif index_echo and kind in (MessageType.CHAT, MessageType.TOOL_CALL_RESPONSE):
            speaker = _ECHO
        else:
            continue
        words = said.setdefault(speaker, set())
        words.update(_stems(message.message_content))
        words.update(_stems(attachment_text(message)))
    return json.dumps({k: " ".join(sorted(v)) for k, v in said.items() if v}, sort_keys=True)


def _read(stored: str) -> dict[str, set[str]]:
    try:
        raw = json.loads(stored) if stored else {}
    except ValueError:  # a damaged row ranks by BM25 alone
        return {}
    if not isinstance(raw, dict):
        return {}
    return {str(k): set(str(v).split()) for k, v in raw.items()}


def coverage_order(
    terms: Sequence[str], scores: Sequence[float], speech: Iterable[str], weight: float
) -> tuple[list[int], list[float]]:
    """The order (indices) of candidates by ``score / best + weight x coverage``, and each
    candidate's relevance in that order.

    ``terms`` are the question's search terms (``memory.recall.query.query_terms``); ``scores``
    the candidates' BM25 (higher is better), best first; ``speech`` their ``speech_words``.
    Ties keep BM25's order.
    """
    said = [_read(s) for s in speech]
    names = {
        part
        for speakers in said
        for speaker in speakers
        if speaker != _ECHO
        for part in _TOKEN.findall(speaker)
    }
    named = {t for t in terms if t in names}
    asked = {stem(t) for t in terms if t not in named}
    best = max(scores, default=0.0)
    best = best if best > 0 else 1.0
    relevance = [
        score / best + weight * _coverage(asked, named, speakers)
        for score, speakers in zip(scores, said, strict=True)
    ]
    order = sorted(range(len(relevance)), key=lambda i: -relevance[i])
    return order, [relevance[i] for i in order]


def _coverage(asked: set[str], named: set[str], speakers: Mapping[str, set[str]]) -> float:
    if not asked:
        return 0.0
    theirs = [
        words
        for speaker, words in speakers.items()
        if speaker != _ECHO and named.intersection(_TOKEN.findall(speaker))
    ]
    pool = set().union(*theirs) if theirs else set().union(*speakers.values())
    return len(asked & pool) / len(asked)
