"""Irregular verbs: a question asked in one form of a verb is covered where another form was
said ("did Nate win" by "I won"; memory.recall.verbs, memory.recall.coverage)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from memory.recall import RecallSettings
from memory.recall.coverage import coverage_order, speech_words
from memory.recall.verbs import other_forms

from .recall_helpers import ranked
from .test_recall_coverage import OTHERS, talk

QUESTION = "Did Melanie win the pottery contest?"
# Where she told she won it.
WON = talk(
    "21",
    ("Melanie", "Guess what, I won the pottery contest!"),
    ("Caroline", "Congrats, Melanie! All that practice paid off."),
)
# Where the contest is named, in fewer words: BM25's favourite.
NAMED = talk(
    "22",
    ("Melanie", "The pottery contest was such fun, with all those bowls."),
    ("Caroline", "Sounds great!"),
)


def test_an_irregular_verbs_forms_are_one_another() -> None:
    assert other_forms("win") == ("won",)
    assert other_forms("won") == ("win",)
    assert set(other_forms("went")) == {"go", "gone"}
    assert set(other_forms("bought")) == {"buy"}
    # A regular verb is Porter's (and the suffix folding's) business; a form that means
    # something else as well ("a bit", "a rose") is no verb here.
    assert other_forms("play") == ()
    assert other_forms("bit") == other_forms("rose") == ()


def test_coverage_counts_a_verb_asked_where_another_form_was_said() -> None:
    terms = ["melanie", "win", "pottery", "contest"]
    speech = [speech_words(NAMED), speech_words(WON)]
    # As asked, "win" is said nowhere: both cover "pottery contest"; BM25 decides.
    order, relevance = coverage_order(terms, [1.0, 0.9], speech, 0.5, verb_forms=False)
    assert order == [0, 1]
    assert relevance == [1.0 + 0.5 * 2 / 3, 0.9 + 0.5 * 2 / 3]
    # With the verb's forms, "won" covers "win": where she told of it covers all three.
    order, relevance = coverage_order(terms, [1.0, 0.9], speech, 0.5, verb_forms=True)
    assert order == [1, 0]
    assert relevance == [0.9 + 0.5, 1.0 + 0.5 * 2 / 3]


def test_search_finds_where_the_person_told_it_in_another_form(tmp_path: Path) -> None:
    talks = [WON, NAMED, *OTHERS]
    without = replace(RecallSettings(), verb_forms=False)
    assert ranked(tmp_path / "without", talks, QUESTION, without)[0] == "22"
    assert ranked(tmp_path / "with", talks, QUESTION, RecallSettings())[0] == "21"
