"""Words in order: a question's neighbouring words are searched for as phrases too
(memory.recall.query.phrase_pairs), except in a question asking when."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from memory.recall import RecallSettings
from memory.recall.query import match_expression, phrase_pairs, query_terms

from .recall_helpers import ranked as search_ranked
from .test_recall_coverage import OTHERS, talk

# Both words often, never together: BM25 alone prefers it.
APART = talk(
    "21",
    ("Melanie", "I support the kids. The group of parents helps."),
    ("Caroline", "A group like that helps."),
    ("Melanie", "Yes, support matters."),
)
# The two words once, together.
TOGETHER = talk(
    "22",
    ("Melanie", "I went to a support group and it was powerful."),
    ("Caroline", "That's great, Melanie!"),
)


def ranked(folder: Path, settings: RecallSettings, question: str) -> list[str]:
    return search_ranked(folder, [APART, TOGETHER, *OTHERS], question, settings)


def test_pairs_are_neighbouring_search_terms_each_once() -> None:
    query = "Did the LGBTQ support group meet Melanie's support group?"
    assert phrase_pairs(query, query_terms(query)) == [
        "lgbtq support",
        "support group",
        "group meet",
        "meet melanie",
    ]
    # A stopword or a lone letter between two words breaks the pair.
    assert phrase_pairs("the group of parents", ["group", "parents"]) == []
    assert phrase_pairs("Melanie's kids", ["melanie", "kids"]) == []


def test_a_pair_is_searched_as_a_phrase_and_never_as_syntax() -> None:
    query = 'support" OR group NEAR(x'
    assert phrase_pairs(query, query_terms(query)) == ["group near"]
    assert match_expression(["group near"]) == '"group near"'


def test_the_conversation_that_says_the_words_together_ranks_first(tmp_path: Path) -> None:
    question = "What did Melanie think of the support group?"
    words_apart = ranked(tmp_path / "a", replace(RecallSettings(), phrase_pairs=False), question)
    assert words_apart[0] == "21"
    assert ranked(tmp_path / "b", RecallSettings(), question)[0] == "22"


def test_a_pair_said_nowhere_changes_nothing(tmp_path: Path) -> None:
    question = "What did Melanie say of group support?"
    assert ranked(tmp_path / "a", RecallSettings(), question) == ranked(
        tmp_path / "b", replace(RecallSettings(), phrase_pairs=False), question
    )


def test_a_question_asking_when_searches_words_apart_unless_told(tmp_path: Path) -> None:
    question = "When did Melanie go to the support group?"
    assert ranked(tmp_path / "a", RecallSettings(), question)[0] == "21"
    assert (
        ranked(tmp_path / "b", replace(RecallSettings(), phrase_pairs_when=True), question)[0]
        == "22"
    )
