"""Timed coverage: in a question asking when, what the person said near placing something in
time counts again (memory.recall.coverage), so the conversation that told of the thing as it
happened ranks above later ones naming it again."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from memory.recall import RecallSettings
from memory.recall.coverage import coverage_order, speech_words
from tests.memory.recall_helpers import ranked as search_ranked
from tests.memory.test_recall_coverage import OTHERS, talk

# Later, and BM25's favourite: Caroline names the support group often, never with a time;
# the time in it is Melanie's, about something else.
AGAIN = talk(
    "31",
    ("Caroline", "The support group has been great; our support group really helps me."),
    ("Melanie", "I went hiking last week."),
    ("Caroline", "That group is like family, the support is amazing."),
    ("Melanie", "Lovely."),
    started=datetime(2023, 7, 20, 12, tzinfo=UTC),
)
# Where she told of it as it happened.
TOLD = talk(
    "32",
    ("Caroline", "I went to a support group yesterday."),
    ("Melanie", "How was it?"),
    ("Caroline", "Powerful, honestly."),
    started=datetime(2023, 5, 8, 12, tzinfo=UTC),
)
WHEN = "When did Caroline go to the support group?"
WHAT = "What did Caroline say about the support group?"


def ranked(folder: Path, settings: RecallSettings, question: str) -> list[str]:
    return search_ranked(folder, [AGAIN, TOLD, *OTHERS], question, settings)


def test_a_when_question_finds_where_it_was_told_as_it_happened(tmp_path: Path) -> None:
    assert ranked(tmp_path / "a", replace(RecallSettings(), timed_weight=0.0), WHEN)[0] == "31"
    assert ranked(tmp_path / "b", RecallSettings(), WHEN)[0] == "32"


def test_other_questions_are_ranked_as_before(tmp_path: Path) -> None:
    assert ranked(tmp_path / "a", RecallSettings(), WHAT)[0] == "31"
    assert ranked(tmp_path / "b", replace(RecallSettings(), timed_weight=0.0), WHAT)[0] == "31"


def test_the_words_said_near_a_time_are_kept_per_speaker() -> None:
    conv = talk(
        "41",
        ("Caroline", "Painting again"),  # two messages before her time: near
        ("Melanie", "Pottery class went well"),  # near, but Melanie placed nothing in time
        ("Caroline", "I adopted a puppy last week"),
        ("Melanie", "Cute"),
        ("Caroline", "He loves walks"),  # two after: near
        ("Caroline", "Work is busy"),  # three after: not
    )
    timed = json.loads(speech_words(conv))["timed"]
    assert timed == {"caroline": timed["caroline"]}  # Melanie said nothing near her own time
    words = set(timed["caroline"].split())
    assert {"paint", "adopt", "puppy", "walk"} <= words
    assert not words & {"work", "busy", "pottery"}


def test_timed_coverage_counts_only_with_its_weight() -> None:
    speech = [speech_words(AGAIN), speech_words(TOLD)]
    terms = ["caroline", "support", "group"]
    order, relevance = coverage_order(terms, [1.0, 0.9], speech, 0.5)
    assert order == [0, 1] and relevance == [1.5, 1.4]  # both cover the question
    order, relevance = coverage_order(terms, [1.0, 0.9], speech, 0.5, timed_weight=0.25)
    assert order == [1, 0] and relevance == [1.65, 1.5]


def test_an_index_row_from_before_timed_coverage_ranks_without_it() -> None:
    old = json.loads(speech_words(TOLD))
    del old["timed"]
    order, relevance = coverage_order(
        ["support"], [1.0, 0.9], [speech_words(AGAIN), json.dumps(old)], 0.5, timed_weight=1.0
    )
    assert order == [0, 1] and relevance == [1.5, 1.4]
