"""The recall index: ranking, guild isolation, query safety, dates and what is indexed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory.recall import RecallIndex
from memory.recall.passages import date_words
from memory.recall.query import match_expression, query_terms
from memory.records.models import Message, MessageType
from tests.memory.recall_helpers import T0, conversation, ids, memory_of


def test_the_conversation_that_talked_about_it_ranks_first(index: RecallIndex) -> None:
    index.upsert_conversation(conversation("11", "We planned the garden: tomatoes and basil."))
    index.upsert_conversation(conversation("12", "My bike needs new brakes before the race."))
    index.upsert_conversation(conversation("13", "Brakes? I'd rather plant more tomatoes."))

    hits = index.search("1", "what did we say about the bike brakes", limit=5)
    assert ids(hits)[0] == "12"
    assert set(ids(hits)) == {"12", "13"}
    assert hits[0].score > hits[1].score > 0
    assert hits[0].guild_id == "1" and hits[0].requester == "42"
    assert hits[0].created_at == T0.isoformat()
    assert "brakes" in hits[0].snippet.lower()


def test_passages_rank_a_focused_mention_above_scattered_words(index: RecallIndex) -> None:
    # Both conversations say the same words, as often, in as many messages: one in two
    # adjacent messages, the other far apart. Whole-conversation BM25 cannot tell them apart.
    filler = [f"chatting about topic number {n} today" for n in range(40)]
    focused = [*filler[:20], "the lighthouse trip", "lighthouse keeper story", *filler[20:]]
    scattered = [
        "the lighthouse trip",
        *filler[:20],
        "lighthouse keeper",
        *filler[20:],
        "story",
    ]
    index.upsert_conversation(conversation("21", *scattered))
    index.upsert_conversation(conversation("22", *focused))
    assert ids(index.search("1", "lighthouse keeper trip story"))[:2] == ["22", "21"]


@pytest.mark.parametrize("other", ["12", "123"])
def test_a_guild_never_sees_another_guilds_conversations(tmp_path: Path, other: str) -> None:
    with RecallIndex(tmp_path / "recall") as index:
        index.upsert_conversation(conversation("100", "marmalade recipe", guild_id="1"))
        index.upsert_conversation(conversation("200", "secret zeppelin plans", guild_id=other))
        assert index.search("1", "zeppelin plans") == []
        assert ids(index.search(other, "zeppelin plans")) == ["200"]
        assert index.search(other, "marmalade") == []
        assert index.count("1") == 1 and index.count(other) == 1
        with pytest.raises(ValueError):
            index.search("../1", "zeppelin")


def test_another_guilds_words_do_not_change_the_ranking_or_scores(index: RecallIndex) -> None:
    index.upsert_conversation(conversation("31", "apples and pears"))
    index.upsert_conversation(conversation("32", "apples apples oranges"))
    before = [(h.thread_id, h.score) for h in index.search("1", "apples oranges pears")]
    for n in range(30):  # a decoy guild where "pears" is everywhere and "oranges" nowhere
        index.upsert_conversation(conversation(str(900 + n), "pears " * 5, guild_id="2"))
    after = [(h.thread_id, h.score) for h in index.search("1", "apples oranges pears")]
    assert before == after


def test_delete_removes_the_conversation(index: RecallIndex) -> None:
    index.upsert_conversation(conversation("41", "quarterly budget review"))
    index.upsert_conversation(conversation("42", "budget for the party"))
    assert index.delete("41", "1") is True
    assert ids(index.search("1", "quarterly budget")) == ["42"]
    assert index.delete("42") is True  # without the guild: every guild is looked at
    assert index.search("1", "budget") == []
    assert index.delete("42") is False
    assert index.count() == 0


def test_reupsert_replaces_the_old_words(index: RecallIndex) -> None:
    conv = conversation("51", "the password hint is walrus")
    index.upsert_conversation(conv)
    assert ids(index.search("1", "walrus")) == ["51"]
    conv.edit_message("51000", "the hint was removed", T0 + timedelta(minutes=1))
    conv.add_message(
        Message(message_type=MessageType.CHAT, message_content="penguin", requester="42")
    )
    index.upsert_conversation(conv)
    assert index.search("1", "walrus") == []
    assert ids(index.search("1", "penguin")) == ["51"]
    assert index.count("1") == 1


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '"unbalanced quote',
        "*",
        "alpha*",
        "NEAR(alpha beta, 2)",
        "people:alpha",
        "memory : alpha",
        "{people echo}: alpha",
        "alpha AND OR NOT",
        "AND",
        "NOT alpha",
        "-alpha",
        "alpha - beta",
        "(alpha",
        "alpha)",
        "^alpha",
        "alpha + beta",
        "'; DROP TABLE conversations; --",
        "rowid:1 OR 1=1",
        "\x00alpha",
    ],
)
def test_query_syntax_is_never_syntax(index: RecallIndex, query: str) -> None:
    index.upsert_conversation(conversation("61", "alpha release notes"))
    index.upsert_conversation(conversation("62", "people talk about memory and notes"))
    hits = index.search("1", query)
    # Whatever the punctuation, the words are just words: "alpha" finds the alpha conversation
    # (NOT and "-" do not exclude it; "people:" is no column filter), nothing breaks.
    if "alpha" in query:
        assert "61" in ids(hits)
    if "people" in query or "memory" in query:
        assert "62" in ids(hits)
    assert index.count("1") == 2  # nothing was dropped


def test_query_terms_drop_stopwords_and_syntax() -> None:
    assert query_terms('When did "Caroline" go to the (LGBTQ) support-group?') == [
        "caroline",
        "lgbtq",
        "support",
        "group",
    ]
    assert query_terms("what did you do on 7 May?") == ["7", "may"]
    assert query_terms("a b c") == []


def test_every_term_is_a_quoted_fts5_string() -> None:
    assert match_expression(["near", 'a"b', "x"]) == '"near" OR "a""b" OR "x"'


@pytest.mark.parametrize("query", ["", "   ", "what was it that they did?", '"" () * -'])
def test_an_empty_or_stopword_query_finds_nothing(index: RecallIndex, query: str) -> None:
    index.upsert_conversation(conversation("71", "what was it that they did"))
    assert index.search("1", query) == []


def test_the_conversation_date_is_searchable(index: RecallIndex) -> None:
    index.upsert_conversation(conversation("81", "we went hiking", created_at=T0))
    later = datetime(2024, 3, 2, 9, 0, tzinfo=UTC)
    index.upsert_conversation(conversation("82", "we went hiking", created_at=later))
    assert ids(index.search("1", "when did we go hiking in May 2023?"))[0] == "81"
    assert ids(index.search("1", "hiking in March 2024"))[0] == "82"
    assert ids(index.search("1", "what happened on Monday?")) == ["81"]  # 8 May 2023
    assert date_words(T0) == "Monday 8 May 2023"


def test_memory_fields_are_searchable_and_replaced(index: RecallIndex) -> None:
    conv = conversation("91", "let us talk about the trip")
    index.upsert_conversation(
        conv, memory_of(conv, "Planning a trip to Lisbon", ("Ana likes trams",))
    )
    assert ids(index.search("1", "Lisbon")) == ["91"]
    assert ids(index.search("1", "trams")) == ["91"]
    assert index.search("1", "trip")[0].summary == "Planning a trip to Lisbon"

    index.upsert_memory(memory_of(conv, "Planning a trip to Porto"))
    assert index.search("1", "Lisbon") == []
    assert ids(index.search("1", "Porto")) == ["91"]

    # A resave of the conversation alone keeps its memory.
    conv.add_message(Message(message_type=MessageType.CHAT, message_content="ok", requester="42"))
    index.upsert_conversation(conv)
    assert ids(index.search("1", "Porto")) == ["91"]


def test_a_memory_before_its_conversation_is_found(index: RecallIndex) -> None:
    conv = conversation("92", "chess openings")
    index.upsert_memory(memory_of(conv, "Talked about the Sicilian defence"))
    assert ids(index.search("1", "sicilian")) == ["92"]
    assert index.search("1", "openings") == []
    index.upsert_conversation(conv)
    assert ids(index.search("1", "openings sicilian")) == ["92"]


def test_memory_of_another_conversation_is_refused(index: RecallIndex) -> None:
    conv = conversation("93", "x")
    other = conversation("94", "y", guild_id="2")
    with pytest.raises(ValueError):
        index.upsert_conversation(conv, memory_of(other))


def test_what_is_indexed_echo_and_tools_yes_thinking_no(index: RecallIndex) -> None:
    conv = conversation("95", "how tall is the tower?")
    conv.add_message(Message(message_type=MessageType.THINKING, message_content="zucchini"))
    conv.add_message(Message(message_type=MessageType.CHAT, message_content="about 300 metres"))
    conv.add_message(
        Message(
            message_type=MessageType.TOOL_CALL_RESPONSE,
            message_content="eiffel height data",
            tool_call_id="c1",
            name="lookup",
        )
    )
    conv.add_message(
        Message(
            message_type=MessageType.CHAT,
            message_content="see the file",
            meta={
                "requester": "42",
                "attachments": [{"filename": "notes.txt", "text": "gargoyle"}],
            },
        )
    )
    index.upsert_conversation(conv)
    assert index.search("1", "zucchini") == []
    assert ids(index.search("1", "metres")) == ["95"]
    assert ids(index.search("1", "eiffel")) == ["95"]
    assert ids(index.search("1", "gargoyle")) == ["95"]


def test_people_weigh_more_than_echo(index: RecallIndex) -> None:
    # As long as each other; on a tie the lower thread id would come first.
    said = conversation("97", "hello volcano")
    echoed = conversation("96", "hello")
    echoed.add_message(Message(message_type=MessageType.CHAT, message_content="volcano"))
    index.upsert_conversation(echoed)
    index.upsert_conversation(said)
    assert ids(index.search("1", "volcano")) == ["97", "96"]
