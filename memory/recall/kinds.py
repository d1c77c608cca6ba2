"""What kind of thing a word names: "taekwondo" is a martial art, "Florida" a state.

A question often asks for a kind ("What martial arts has John done?", "What European countries
has Maria been to?") where the conversation that answers it names only an instance
("taekwondo", "Spain"). Coverage (``memory.recall.coverage``) therefore counts a question's
word as said in a conversation when a word said there is of that kind.

The lexicon (``data/kinds.txt.gz``) is derived from WordNet 3.0's nouns (Copyright 2006 by
Princeton University; its license is ``data/WORDNET-LICENSE``) by ``bench/wordnet_kinds.py``:
each noun with the words of its direct hypernyms, in its most frequent sense; nouns whose sense
cannot be told are left out. It is read once, on first use.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from functools import cache, lru_cache
from importlib.resources import files

__all__ = ["is_noun", "kinds_of"]

# Regular plurals are folded before a lookup; the irregular ones are keys of the lexicon.
_PLURALS = (("ies", "y"), ("es", ""), ("s", ""))


@cache
def _lexicon() -> dict[str, str]:
    data = files("memory.recall").joinpath("data", "kinds.txt.gz").read_bytes()
    lexicon: dict[str, str] = {}
    # Nouns of one hypernym share its words: one string for all of them, not one each.
    shared: dict[str, str] = {}
    for line in gzip.decompress(data).decode().splitlines():
        noun, _, kinds = line.partition(" ")
        lexicon[noun] = shared.setdefault(kinds, kinds)
    return lexicon


def kinds_of(words: Iterable[str]) -> set[str]:
    """The kinds the lower-case ``words`` name ("spain" -> "european", "country", "nation")."""
    found: set[str] = set()
    for word in words:
        kinds = _kinds_of_word(word)
        if kinds:
            found.update(kinds.split())
    return found


def is_noun(word: str) -> bool:
    """Whether the lower-case ``word`` is a noun of the lexicon (a plural folded): most often
    a thing, not a verb or an adjective ("painting", "trails": yes; "happened", "positive":
    no). A word the lexicon does not hold, a name or a new coinage, is not known as one."""
    return _kinds_of_word(word) is not None


# Indexing looks up every distinct word of every speaker of every conversation, and chat
# repeats its words: most lookups, and the plural folding of a word not in the lexicon, are
# answered from here.
@lru_cache(maxsize=1 << 14)
def _kinds_of_word(word: str) -> str | None:
    lexicon = _lexicon()
    kinds = lexicon.get(word)
    if kinds is None:
        for suffix, replacement in _PLURALS:
            if word.endswith(suffix):
                kinds = lexicon.get(word[: -len(suffix)] + replacement)
                if kinds is not None:
                    break
    return kinds
