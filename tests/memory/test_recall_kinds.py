"""Kinds: a word said says what kind of thing it names, so a question asking for the kind is
covered where the instance was said (memory.recall.kinds, memory.recall.coverage)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from memory.recall import RecallSettings
from memory.recall.coverage import coverage_order, speech_words
from memory.recall.kinds import kinds_of

from .recall_helpers import ranked
from .test_recall_coverage import OTHERS, talk

QUESTION = "What martial arts has Melanie done?"
# The answer: an instance of the kind asked for, and "done".
INSTANCE = talk(
    "21",
    ("Melanie", "I did taekwondo for years, then I was done with it."),
    ("Caroline", "Good for you, Melanie!"),
)
# One word of the question as well, in fewer words: BM25 prefers it, and so does coverage
# without kinds (a tie, one word each).
WORDS = talk("22", ("Melanie", "I love art."), ("Caroline", "Nice."))


def test_nouns_name_their_kinds() -> None:
    assert {"martial", "art"} <= kinds_of(["taekwondo"])
    assert "state" in kinds_of(["florida"])
    assert "country" in kinds_of(["spain"])
    assert "city" in kinds_of(["seattle"])
    # Plurals, regular and irregular.
    assert kinds_of(["countries"]) == kinds_of(["country"]) != set()
    assert "rodent" in kinds_of(["mice"])
    assert kinds_of(["taekwondo", "spain"]) == kinds_of(["taekwondo"]) | kinds_of(["spain"])


def test_words_without_a_sure_kind_have_none() -> None:
    assert kinds_of(["zqxv", "", "the"]) == set()
    # "turtle": a reptile or a sweater, and WordNet's tagged corpus counted neither sense.
    assert kinds_of(["turtle"]) == set()
    # "run" is more often a verb than a noun.
    assert kinds_of(["run"]) == set()


def test_kinds_are_kept_apart_from_what_was_said() -> None:
    stored = json.loads(speech_words(INSTANCE))
    assert "martial" not in stored["said"]["melanie"].split()
    assert {"martial", "art"} <= set(stored["kinds"]["melanie"].split())
    assert not {"martial", "art"} & set(stored["kinds"].get("caroline", "").split())


def test_coverage_counts_the_kind_asked_for_where_an_instance_was_said() -> None:
    terms = ["martial", "arts", "melanie", "done"]
    speech = [speech_words(WORDS), speech_words(INSTANCE)]
    # Plain coverage: "art" said in the first, "done" in the second; BM25 decides.
    order, relevance = coverage_order(terms, [1.0, 0.9], speech, 0.5, kinds=False)
    assert order == [0, 1]
    # With kinds, taekwondo covers "martial" and "art": the second covers all three words.
    order, relevance = coverage_order(terms, [1.0, 0.9], speech, 0.5)
    assert order == [1, 0]
    assert relevance == [0.9 + 0.5, 1.0 + 0.5 / 3]


def test_search_finds_the_instance_of_the_kind_asked_for(tmp_path: Path) -> None:
    talks = [INSTANCE, WORDS, *OTHERS]
    without = replace(RecallSettings(), kinds=False)
    assert ranked(tmp_path / "without", talks, QUESTION, without)[0] == "22"
    assert ranked(tmp_path / "with", talks, QUESTION, RecallSettings())[0] == "21"
