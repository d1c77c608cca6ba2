"""What of a question recall searches for: its words as FTS5 terms, never FTS5 syntax."""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import pairwise

from memory.longterm.summarizer import STOPWORDS
from memory.recall.temporal import TIME_MARK

__all__ = ["match_expression", "phrase_pairs", "query_terms"]

# A query is bounded: more terms than this add cost, not recall.
_MAX_TERMS = 64

# The tokenizer splits "didn't" into "didn" and "t": those halves say nothing either.
_QUERY_STOPWORDS = STOPWORDS | frozenset(
    "didn doesn don isn wasn aren weren won wouldn couldn shouldn haven hasn hadn ve ll re".split()
)
_TOKEN = re.compile(r"[^\W_]+")


def query_terms(query: str) -> list[str]:
    """The words of a query that can match: stopwords dropped, each once, at most 64.

    Only runs of letters and digits survive, so FTS5 syntax in user input (quotes, ``*``,
    ``NEAR``, ``col:``, ``AND``/``OR``/``NOT``, ``-``, parentheses) is never syntax: each term
    is then quoted as an FTS5 string.
    """
    seen: dict[str, None] = {}
    for word in _TOKEN.findall(query.lower()):
        if word in _QUERY_STOPWORDS or word == TIME_MARK or (len(word) < 2 and not word.isdigit()):
            continue
        seen.setdefault(word, None)
        if len(seen) >= _MAX_TERMS:
            break
    return list(seen)


def phrase_pairs(query: str, terms: Iterable[str]) -> list[str]:
    """Each two words next to each other in ``query`` that are both ``terms``, as one phrase
    ("support group" from "the LGBTQ support group"), each once.

    BM25 scores words apart: a passage that says "support" here and "group" there scores as
    well as one that says "support group". Searched as phrases too, the pairs make the words'
    order count, as a sequential dependence model does; a pair said nowhere adds nothing.
    """
    wanted = set(terms)
    pairs = pairwise(_TOKEN.findall(query.lower()))
    return list(dict.fromkeys(f"{a} {b}" for a, b in pairs if a in wanted and b in wanted))


def match_expression(terms: Iterable[str]) -> str:
    """Terms OR-ed as quoted FTS5 strings: any term may match, BM25 ranks by all of them. A
    term of several words is a phrase: its words must be said in that order, together."""
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
