"""Time in recall: relative dates resolved against when they were said, and "when" questions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from memory.recall import RecallIndex
from memory.recall.query import query_terms
from memory.recall.temporal import TIME_MARK, asks_for_time, time_words
from memory.records.models import Conversation, Message, MessageType
from tests.memory.recall_helpers import conversation, ids

MONDAY = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)  # Monday 8 May 2023


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I went to a support group yesterday", "Sunday 7 May 2023"),
        ("we went camping two weekends ago", "April 2023 Monday 24 April 2023"),
        ("I dyed my hair last week", "Monday 1 May 2023"),
        ("I went to a pride parade last Friday", "Friday 5 May 2023"),
        ("we had a blast last year", "2022"),
        ("I started it 3 months ago", "February 2023"),
        ("I'll come over tomorrow", "Tuesday 9 May 2023"),
        ("see you next month", "June 2023"),
        ("what about this weekend?", "Saturday 13 May 2023"),
        ("we met a couple of weeks ago", "April 2023 Monday 24 April 2023"),
        ("we met a couple weeks ago", "April 2023 Monday 24 April 2023"),
        ("I moved several months ago", "February 2023"),
        ("I went out last night", "Sunday 7 May 2023"),
        ("I ran this morning", "Monday 8 May 2023"),
        ("tonight we celebrate", "Monday 8 May 2023"),
        ("I finished it today", "Monday 8 May 2023"),
        ("see you this coming Monday", "Monday 15 May 2023"),
        ("we hiked this past weekend", "Saturday 6 May 2023"),
        # A day of the month alone: this month's or the last, whichever is nearer.
        ("I met my teammates on the 15th after the trip", "Monday 15 May 2023"),
        ("the rent was due by the 28th.", "Friday 28 April 2023"),
        # A date without its year: the nearest such day.
        ("see you on Aug 15th", "Tuesday 15 August 2023"),
        ("the party is on the 20th of June", "Tuesday 20 June 2023"),
        ("we flew out Dec. 28", "Wednesday 28 December 2022"),
        ("on 8th December, 2021 we read it", "Wednesday 8 December 2021"),
        ("May 5, 2022 was great", "Thursday 5 May 2022"),
        ("our Aug 15, 2023 trip was fun", "Tuesday 15 August 2023"),
        ("booked May 5, 2024 flights", "Sunday 5 May 2024"),
    ],
)
def test_relative_dates_resolve_against_the_day_they_were_said(text: str, expected: str) -> None:
    assert time_words(text, MONDAY) == f"{expected} {TIME_MARK}"


def test_text_that_places_nothing_in_time_has_no_time_words() -> None:
    assert time_words("I may paint a sunset, it relaxes me", MONDAY) == ""
    # A month, a year or a span says when without a day to resolve.
    assert time_words("back in March it was cold", MONDAY) == TIME_MARK
    assert time_words("I've known them for 4 years", MONDAY) == TIME_MARK
    for says_when in (
        "I have done it for two weeks",
        "I went there for a day",
        "I moved here in 2019",
        "I saw her the other day",
        "I have been painting since college",
        "I recently adopted a pup",
    ):
        assert time_words(says_when, MONDAY) == TIME_MARK, says_when
    # An ordinal that counts, a "may" that is no month: no date.
    assert time_words("on the 3rd time I won", MONDAY) == ""
    assert time_words("we live on the 2nd floor", MONDAY) == ""
    assert time_words("may 5 people come along?", MONDAY) == ""
    assert time_words("on the 31st", datetime(2023, 2, 10, tzinfo=UTC)) == (
        f"Tuesday 31 January 2023 {TIME_MARK}"
    )


def test_a_date_out_of_the_calendar_is_no_date() -> None:
    # Before year 1 or past 9999 there is no day to name: the text still says when.
    assert time_words("on the 45th, or on Feb 30", MONDAY) == ""
    assert time_words("Feb 29", MONDAY) == f"Thursday 29 February 2024 {TIME_MARK}"
    assert time_words("50000 months ago", MONDAY) == ""
    assert time_words("99999999999 days ago, for 9 years", MONDAY) == TIME_MARK
    assert time_words("see you tomorrow", datetime(9999, 12, 31, tzinfo=UTC)) == ""
    assert time_words("9999 days ago", MONDAY) == f"Friday 22 December 1995 {TIME_MARK}"


def test_counted_and_far_off_dates_neither_fail_indexing_nor_search(tmp_path: Path) -> None:
    said = conversation(
        "301", "we met a couple of weeks ago at the climbing gym", created_at=MONDAY
    )
    with RecallIndex(tmp_path / "recall") as index:
        index.upsert_many([(said, None)])
        found = index.search("1", "where did we meet a couple of weeks ago?", now=MONDAY)
        assert [h.thread_id for h in found] == ["301"]
        far = index.search("1", "the climbing gym 99999999999 days ago", now=MONDAY)
        assert [h.thread_id for h in far] == ["301"]


def test_questions_asking_for_a_time() -> None:
    assert asks_for_time("When did Caroline go to the support group?")
    assert asks_for_time("How long has Nate had his turtles?")
    assert asks_for_time("what year did John get Max")
    assert asks_for_time("Which week did Tim visit the UK?")
    assert asks_for_time("What weekend was the hike?")
    assert not asks_for_time("What did Caroline research?")
    assert not asks_for_time("Which weekly class does Tim take?")


def test_the_mark_cannot_be_typed() -> None:
    assert TIME_MARK not in query_terms(f"{TIME_MARK} support group")


def test_a_when_question_prefers_the_conversation_that_says_when(tmp_path: Path) -> None:
    later = datetime(2023, 7, 20, tzinfo=UTC)
    said_when = conversation(
        "101", "I went to a support group yesterday and it was powerful", created_at=MONDAY
    )
    mentioned = conversation(
        "102",
        "the support group is a big part of my life",
        "the group has been so supportive",
        created_at=later,
    )
    with RecallIndex(tmp_path / "recall") as index:
        index.upsert_many([(said_when, None), (mentioned, None)])
        asked = index.search("1", "When did Caroline go to the support group?")
        assert [h.thread_id for h in asked][:1] == ["101"]
        # Not asking when: the conversation about the group ranks first, as before.
        about = index.search("1", "Tell me about the support group")
        assert [h.thread_id for h in about][:1] == ["102"]
        # The snippet shows what was said, never the resolved dates or the mark.
        assert TIME_MARK not in asked[0].snippet and "Sunday" not in asked[0].snippet


def test_a_month_finds_what_was_said_about_it_later(tmp_path: Path) -> None:
    june = datetime(2023, 6, 9, tzinfo=UTC)
    said_in_june = conversation("201", "Last month I finished my screenplay", created_at=june)
    august = datetime(2023, 8, 2, tzinfo=UTC)
    said_in_august = conversation("202", "I finished my screenplay", created_at=august)
    with RecallIndex(tmp_path / "recall") as index:
        index.upsert_many([(said_in_june, None), (said_in_august, None)])
        found = index.search("1", "What did Joanna finish in May 2023?")
    assert [h.thread_id for h in found][:1] == ["201"]
    assert found[0].snippet == "Last month I finished my screenplay"


def test_a_relative_date_in_the_question_is_resolved_against_when_it_is_asked(
    tmp_path: Path,
) -> None:
    week_before = conversation(
        "401", "my screenplay needs a new ending", created_at=datetime(2023, 5, 1, tzinfo=UTC)
    )
    later = conversation(
        "402", "the screenplay is printed", created_at=datetime(2023, 5, 20, tzinfo=UTC)
    )
    with RecallIndex(tmp_path / "recall") as index:
        index.upsert_many([(week_before, None), (later, None)])
        asked = "what did I say about the screenplay last week?"
        assert [h.thread_id for h in index.search("1", asked, now=MONDAY)][:1] == ["401"]
        # Asked three weeks later, "last week" is another week.
        then = datetime(2023, 5, 27, tzinfo=UTC)
        assert [h.thread_id for h in index.search("1", asked, now=then)][:1] == ["402"]


def _said_on(conv: Conversation, day: datetime, text: str) -> None:
    conv.add_message(
        Message(
            created_at=day,
            message_type=MessageType.CHAT,
            message_content=text,
            meta={"requester": "42", "message_id": f"{conv.thread_id}9{day:%m%d}"},
        )
    )


def _first_found(tmp_path: Path, conv: Conversation, rival_day: datetime, question: str) -> str:
    """Which conversation a question finds first: ``conv``, or a rival that says "hiking" more
    and was held on ``rival_day`` ("60")."""
    rival = conversation("60", "we went hiking, a fine hiking trail", created_at=rival_day)
    with RecallIndex(tmp_path / "recall") as index:
        index.upsert_conversation(conv)
        index.upsert_conversation(rival)
        return ids(index.search("1", question))[0]


def test_a_conversation_is_found_by_every_day_it_was_held_on(tmp_path: Path) -> None:
    # Started in May, taken up again in June: June is a day it was held on too.
    resumed = conversation("51", "hello there", created_at=MONDAY)
    _said_on(resumed, datetime(2023, 6, 3, 10, tzinfo=UTC), "we went hiking")
    may_20 = datetime(2023, 5, 20, tzinfo=UTC)
    assert _first_found(tmp_path, resumed, may_20, "hiking in June") == "51"
    assert _first_found(tmp_path, resumed, may_20, "hiking on Saturday 20 May") == "60"


def test_a_file_dated_when_it_was_written_is_found_by_when_its_messages_were_said(
    tmp_path: Path,
) -> None:
    # A file another tool wrote (an import, a migration) may date the conversation by when
    # it was written; its messages still say when they were said.
    imported = conversation("53", created_at=datetime(2026, 12, 1, tzinfo=UTC))
    _said_on(imported, MONDAY, "we went hiking")
    march = datetime(2024, 3, 2, tzinfo=UTC)
    assert _first_found(tmp_path, imported, march, "hiking in May 2023") == "53"
    assert _first_found(tmp_path, imported, march, "hiking in March 2024") == "60"


def test_a_day_of_the_month_said_alone_is_found_by_its_date(tmp_path: Path) -> None:
    # "on the 8th", said on 20 December, is 8 December: a question naming that day finds it.
    eighth = conversation(
        "55", "we went hiking on the 8th, lovely", created_at=datetime(2023, 12, 20, tzinfo=UTC)
    )
    december_21 = datetime(2023, 12, 21, tzinfo=UTC)
    assert _first_found(tmp_path, eighth, december_21, "hiking on 8 December 2023") == "55"
    assert _first_found(tmp_path, eighth, december_21, "hiking on 21 December") == "60"
