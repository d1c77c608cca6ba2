"""Who said it, when a file does not say: a name for a person whose messages carry none.

Echo records the name each person wrote under (``meta.author_name``). A file written by another
tool may say who wrote a message by its Discord id alone (``meta.requester``), and recall needs
names: a question names the person it is about ("What did Caroline paint?"), coverage
(``memory.recall.coverage``) measures it against what that person said, and passages carry the
names of who spoke in them.

In a conversation between two people, each addresses the other by name ("Hey Caroline!",
"Thanks, Mel!"): the name a person is addressed by most often is taken as theirs, a short
form counting for the full name it begins. With more people, who is addressed cannot be told,
and no name is inferred. A name written down always wins over one inferred, and a person who
wrote under a name on some messages (a file merged from several sources, a message recorded
before Echo kept names) has that name on the others too.

Measured on LoCoMo's dev dialogues written without names (``python -m bench.locomo``, the row
"speakers' names left out"): of the 256 people of its sessions, 251 get their name, 3 none
and 2 another ("Jo" twice, where Joanna is never called Joanna); recall does as
well as with the names written down (``bench/README.md``). A short name is no loss to a question
naming the person in full: coverage takes "Joanna" for a "Jo" (``memory.recall.coverage``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from memory.longterm.summarizer import STOPWORDS

__all__ = ["names_by_requester"]

# A name is a capitalised word: after a greeting that opens the message ("Hey Caroline!",
# "Thanks, Mel.") or after a comma at the end of a sentence ("That's great, Jon!"). Not after
# a greeting that ends its sentence: "Thanks! Exciting times ahead!" names no one.
_OPENING = re.compile(
    r"^\W*(?i:hey|hi|hello|heya|hiya|thanks|thank you|wow|oh|aw+|congrats|congratulations"
    r"|sorry|yeah|yes|yep|ok|okay|good morning|good evening|good afternoon|dear|welcome back"
    r"|whoa|omg),?\s+([A-Z][a-z]+)\b(?!['\u2019])"
)
_CLOSING = re.compile(r",\s*([A-Z][a-z]+)\s*[!.?]")
# Capitalised words that open or close a sentence as often as a name does.
_NOT_NAMES = STOPWORDS | frozenset(
    "wow yeah thanks cool absolutely sounds appreciate cheers woohoo congrats congratulations "
    "awesome great nice sure ok okay yes no yep nope hey hi hello oh aw omg haha lol totally "
    "definitely indeed exactly true right sorry dear man dude buddy friend everyone guys".split()
)


def names_by_requester(
    said: Iterable[tuple[str, str, str | None]],
) -> dict[str, str]:
    """The name of each person, for their messages that carry none; from ``said``: (requester
    id, text, author name or None) of each person's message. A person who wrote under a name
    has the latest one; a person who never did, in a conversation of two people, the name the
    other addressed them by; a person with neither is left out."""
    messages = list(said)
    written = {requester: name for requester, _, name in messages if name}
    people = list(dict.fromkeys(requester for requester, _, _ in messages))
    if len(people) != 2 or written.keys() >= set(people):  # Echo's own files: every name written
        return written
    addressed: dict[str, Counter[str]] = {p: Counter() for p in people if p not in written}
    for requester, text, _ in messages:
        other = people[1] if requester == people[0] else people[0]
        if other in written:
            continue
        for pattern in (_OPENING, _CLOSING):
            for found in pattern.finditer(text):
                name = found[1]
                if name.lower() not in _NOT_NAMES:
                    addressed[other][name] += 1
    inferred = {person: _most_used(counts) for person, counts in addressed.items() if counts}
    return written | inferred


def _most_used(counts: Counter[str]) -> str:
    """The name used most, a short form counting for the full one it begins ("Mel" for
    "Melanie"): a question names a person in full more often than not."""
    full: Counter[str] = Counter()
    for name, count in counts.items():
        longer = [n for n in counts if len(n) > len(name) and n.startswith(name)]
        full[max(longer, key=counts.__getitem__) if longer else name] += count
    return full.most_common(1)[0][0]
