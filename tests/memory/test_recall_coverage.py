"""Coverage: BM25's best conversations ordered again by how much of the question the person it
names said there (memory.recall.coverage)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory.recall import RecallIndex, RecallSettings
from memory.recall.coverage import coverage_order, speech_words, stem
from memory.records.models import Conversation, Message, MessageType

from .recall_helpers import ranked as search_ranked

T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
SPEAKERS = {"Melanie": "101", "Caroline": "102"}


def talk(
    thread_id: str, *turns: tuple[str, str], guild_id: str = "1", started: datetime = T0
) -> Conversation:
    """A conversation of (speaker, text) turns between two people."""
    conv = Conversation(
        thread_id=thread_id,
        channel_id="9",
        guild_id=guild_id,
        requester="101",
        created_at=started,
        updated_at=started,
    )
    for n, (speaker, text) in enumerate(turns):
        conv.add_message(
            Message(
                created_at=started + timedelta(seconds=n),
                message_type=MessageType.CHAT,
                message_content=text,
                meta={
                    "requester": SPEAKERS[speaker],
                    "message_id": f"{thread_id}{n:03d}",
                    "author_name": speaker,
                },
            )
        )
    return conv


# One passage says "hikes" often (BM25's favourite), but Caroline says it; the other
# conversation is where Melanie tells what her family does on hikes.
REPEATS = talk(
    "11",
    ("Caroline", "Family hikes, hikes, hikes! I love hikes. Do you like hikes, Melanie?"),
    ("Melanie", "Sure, sounds nice."),
    ("Caroline", "Hikes are the best, hikes every weekend with family."),
)
COVERS = talk(
    "12",
    ("Melanie", "We went on one of our hikes last weekend."),
    ("Caroline", "Sounds lovely!"),
    ("Melanie", "The whole family came along: we roast marshmallows and tell stories."),
    ("Caroline", "What a great family tradition, Melanie."),
)
QUESTION = "What does Melanie do with her family on hikes?"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "recall"


# Other talk, so that BM25's statistics are those of a guild, not of two conversations.
OTHERS = [
    talk(str(50 + n), ("Caroline", f"My {thing} needs fixing."), ("Melanie", "Oh no!"))
    for n, thing in enumerate(("bike", "roof", "car", "phone", "laptop", "sink"))
]


def ranked(folder: Path, settings: RecallSettings, question: str = QUESTION) -> list[str]:
    return search_ranked(folder, [REPEATS, COVERS, *OTHERS], question, settings)


def test_the_conversation_where_the_person_named_says_it_all_ranks_first(folder: Path) -> None:
    # Without coverage BM25's best passage wins; with it, Melanie's account of her family hikes.
    assert ranked(folder, replace(RecallSettings(), coverage_weight=0.0))[0] == "11"
    assert ranked(folder, RecallSettings())[0] == "12"


def test_scores_are_the_order_the_hits_come_in(folder: Path) -> None:
    with RecallIndex(folder) as index:
        index.rebuild([(REPEATS, None), (COVERS, None), *((c, None) for c in OTHERS)])
        hits = index.search("1", QUESTION)
    assert [h.thread_id for h in hits][:2] == ["12", "11"]
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and scores[1] > 0


def test_the_named_persons_words_count_not_the_other_speakers() -> None:
    # Both conversations hold every word of the question; in the second only Caroline said
    # "painting", so for a question about Melanie's painting the first covers more.
    hers = talk("21", ("Melanie", "my sunset painting"), ("Caroline", "lovely"))
    others = talk("22", ("Caroline", "my sunset painting"), ("Melanie", "lovely"))
    order, relevance = coverage_order(
        ["melanie", "sunset", "painting"],
        [1.0, 1.0],
        [speech_words(others), speech_words(hers)],
        0.5,
    )
    assert order == [1, 0]
    assert relevance == [1.5, 1.0]


def test_a_question_naming_no_speaker_is_measured_against_the_whole_conversation() -> None:
    conv = talk("31", ("Melanie", "pottery class"), ("Caroline", "with clay"))
    order, relevance = coverage_order(
        ["pottery", "clay"], [2.0, 1.5], [speech_words(talk("32")), speech_words(conv)], 0.5
    )
    assert order == [1, 0]  # 1.5 / 2 + 0.5 x 1 beats 2.0 / 2 + 0.5 x 0
    assert relevance == [1.25, 1.0]


def test_each_speakers_distinct_words_are_kept_with_echo_apart() -> None:
    conv = talk("41", ("Melanie", "Hiking hikes, and the hike!"), ("Caroline", "Hike on"))
    conv.add_message(
        Message(
            created_at=T0 + timedelta(minutes=1),
            message_type=MessageType.CHAT,
            message_content="Echo thinks hiking is healthy",
        )
    )
    words = json.loads(speech_words(conv))
    assert words["said"] == {
        "melanie": "hik hike",
        "caroline": "hike",
        "": "echo healthy hik think",
    }
    assert words["when"] == "2023 8 may monday"  # the conversation's date, for everyone
    assert stem("hikes") == stem("hiking") == "hik"


def test_the_conversations_date_and_the_dates_said_count_as_words() -> None:
    # "in August": the conversation of 14 August where Caroline says "last Friday" covers it;
    # the one of July, where she talks of the same parade, does not.
    july = talk(
        "61",
        ("Caroline", "That pride parade a few weeks ago was great"),
        started=datetime(2023, 7, 15, 12, tzinfo=UTC),
    )
    august = talk(
        "62",
        ("Caroline", "I went to a pride parade last Friday"),
        started=datetime(2023, 8, 14, 12, tzinfo=UTC),
    )
    terms = ["caroline", "pride", "parade", "august"]
    order, _ = coverage_order(terms, [1.0, 0.9], [speech_words(july), speech_words(august)], 0.5)
    assert order == [1, 0]
    friday = json.loads(speech_words(august))["said"]["caroline"].split()
    assert {"friday", "11", "august"} <= set(friday)  # last Friday: 11 August 2023


def test_a_damaged_speech_row_ranks_by_bm25_alone() -> None:
    order, relevance = coverage_order(["tea"], [1.0, 2.0], ["{not json", "[]"], 0.5)
    assert order == [1, 0] and relevance == [1.0, 0.5]


def test_only_the_first_candidates_are_ordered_again() -> None:
    # The third candidate covers the question, but lies beyond the depth re-ordered: it keeps
    # BM25's place, so asking for more results never changes the first ones.
    covering = speech_words(talk("71", ("Melanie", "sunset painting")))
    other = speech_words(talk("72", ("Melanie", "hello")))
    order, relevance = coverage_order(
        ["sunset", "painting"], [3.0, 2.0, 1.0], [other, other, covering], 0.5, depth=2
    )
    assert order == [0, 1, 2]
    assert relevance == sorted(relevance, reverse=True)
    order, _ = coverage_order(
        ["sunset", "painting"], [3.0, 2.0, 1.0], [other, other, covering], 0.5, depth=3
    )
    assert order == [0, 2, 1]  # 1/3 + 0.5 x 1 beats 2/3 + 0


def test_asking_for_more_results_keeps_the_first_ones(folder: Path) -> None:
    # Thirty conversations where Caroline says the question's words often (BM25's best, but
    # not what Melanie said), and one where Melanie says them once among other talk: it ranks
    # below the depth re-ordered, so it must not jump ahead when more results are asked for.
    loud = [
        talk(str(100 + n), ("Caroline", f"family hikes, hikes {n}"), ("Melanie", "nice weather"))
        for n in range(30)
    ]
    quiet = talk(
        "200",
        ("Melanie", "we went on hikes with the family"),
        *[("Caroline", f"unrelated chatter number {n}") for n in range(12)],
    )
    # Coverage weighs heavily here, so that the quiet one would lead wherever it is re-ordered.
    with RecallIndex(folder, settings=RecallSettings(coverage_weight=5.0)) as index:
        index.rebuild([(c, None) for c in [*loud, quiet]])
        five = [h.thread_id for h in index.search("1", QUESTION, limit=5)]
        forty = [h.thread_id for h in index.search("1", QUESTION, limit=40)]
    assert "200" not in five and "200" in forty
    assert forty[:5] == five
