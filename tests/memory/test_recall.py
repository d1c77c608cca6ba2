"""The recall index: ranking, guild isolation, updates, query safety, persistence."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory import JsonFileStore
from memory.recall import RecallError, RecallIndex, RecallSettings, sync
from memory.recall.passages import date_words
from memory.recall.query import match_expression, query_terms
from memory.records.memories import Fact, MemoryData, MemoryRecord
from memory.records.models import Conversation, Message, MessageType

T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def conversation(
    thread_id: str,
    *texts: str,
    guild_id: str = "1",
    created_at: datetime = T0,
    requester: str = "42",
) -> Conversation:
    conv = Conversation(
        thread_id=thread_id,
        channel_id="9",
        guild_id=guild_id,
        requester=requester,
        created_at=created_at,
        updated_at=created_at,
    )
    for n, text in enumerate(texts):
        conv.add_message(
            Message(
                created_at=created_at + timedelta(seconds=n),
                message_type=MessageType.CHAT,
                message_content=text,
                meta={"requester": requester, "message_id": f"{thread_id}{n:03d}"},
            )
        )
    return conv


def memory_of(conv: Conversation, summary: str = "", facts: tuple[str, ...] = ()) -> MemoryRecord:
    return MemoryRecord(
        thread_id=conv.thread_id,
        guild_id=conv.guild_id,
        requester=conv.requester,
        memory_data=MemoryData(summary=summary, facts=[Fact(text=f) for f in facts]),
        source_updated_at=conv.updated_at,
        conversation_created_at=conv.created_at,
    )


@pytest.fixture
def index(tmp_path: Path):
    with RecallIndex(tmp_path / "recall") as opened:
        yield opened


def ids(hits) -> list[str]:
    return [h.thread_id for h in hits]


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


def test_it_persists_and_opening_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "recall"
    with RecallIndex(folder) as index:
        for n in range(20):
            index.upsert_conversation(conversation(str(300 + n), f"note number {n} about kites"))
        index.upsert_conversation(conversation("400", "kites", guild_id="2"))
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["1.sqlite3", "2.sqlite3"]  # closed cleanly: the WAL is folded in
    before = hashlib.sha256((folder / "1.sqlite3").read_bytes()).hexdigest()

    with RecallIndex(folder) as index:
        assert index.count() == 21 and index.count("1") == 20
        assert len(index.search("1", "kites", limit=50)) == 20
        assert ids(index.search("1", "number 7 kites"))[0] == "307"
    assert hashlib.sha256((folder / "1.sqlite3").read_bytes()).hexdigest() == before


def test_other_settings_reset_a_guild_file(tmp_path: Path) -> None:
    folder = tmp_path / "recall"
    with RecallIndex(folder) as index:
        index.upsert_conversation(conversation("501", "kites"))
    with RecallIndex(folder, settings=RecallSettings(window=2, stride=1)) as index:
        assert index.count("1") == 0  # made with another passage shape: reset, to be rebuilt
        index.upsert_conversation(conversation("501", "kites"))
        assert ids(index.search("1", "kites")) == ["501"]


def test_rebuild_replaces_everything(index: RecallIndex) -> None:
    index.upsert_conversation(conversation("601", "old words", guild_id="1"))
    index.upsert_conversation(conversation("602", "gone guild", guild_id="3"))
    fresh = [conversation("611", "new words"), conversation("612", "more new", guild_id="2")]
    assert index.rebuild((c, None) for c in fresh) == 2
    assert index.search("1", "old") == []
    assert ids(index.search("1", "new")) == ["611"]
    assert ids(index.search("2", "new")) == ["612"]
    assert index.count() == 2
    assert index.guilds() == ["1", "2"]


def test_limit_and_closed_index(tmp_path: Path) -> None:
    index = RecallIndex(tmp_path / "recall").open()
    for n in range(8):
        index.upsert_conversation(conversation(str(700 + n), "common word"))
    assert len(index.search("1", "common", limit=3)) == 3
    assert index.search("1", "common", limit=0) == []
    assert index.search("9", "common") == []  # a guild with no index: nothing, no file made
    assert not (tmp_path / "recall" / "9.sqlite3").exists()
    index.close()
    with pytest.raises(RecallError):
        index.search("1", "common")


def test_threads_can_share_one_index(index: RecallIndex) -> None:
    errors: list[BaseException] = []

    def work(start: int) -> None:
        try:
            for n in range(start, start + 20):
                index.upsert_conversation(conversation(str(n), f"shared topic {n}"))
                index.search("1", "shared topic")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(1000 + 100 * i,)) for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert index.count("1") == 80


async def test_sync_catches_up_with_the_files_reading_only_what_changed(tmp_path: Path) -> None:
    store = JsonFileStore(tmp_path / "data", fsync="no")
    kept = conversation("801", "sourdough starter", guild_id="5")
    changed = conversation("802", "old topic", guild_id="5")
    gone = conversation("803", "doomed words", guild_id="6")
    async with store:
        for conv in (kept, changed, gone):
            await store.save(conv)
        await store.save_memory(memory_of(kept, "Baking bread at home"))
        with RecallIndex.in_data_dir(tmp_path / "data") as index:
            first = await sync(index, store)
            assert (first.indexed, first.removed, first.unchanged) == (3, 0, 0)
            assert ids(index.search("5", "bread")) == ["801"]  # its memory came along

            changed.add_message(
                Message(message_type=MessageType.CHAT, message_content="new topic", requester="42")
            )
            await store.save(changed)
            await store.delete("803")
            again = await sync(index, store)
            assert (again.indexed, again.removed, again.unchanged) == (1, 1, 1)
            assert ids(index.search("5", "new topic")) == ["802"]
            assert index.search("6", "doomed") == []
    assert (tmp_path / "data" / "index" / "recall" / "5.sqlite3").exists()


def test_one_conversation_full_of_matches_does_not_crowd_out_the_rest(index: RecallIndex) -> None:
    # Its hundreds of passages all outrank the others' one mention each; the others must
    # still be found (the search first groups only the best passages, then looks further).
    index.upsert_conversation(conversation("901", *(["apple"] * 600)))
    for n in range(5):
        words = " ".join(f"filler{k}" for k in range(30))
        index.upsert_conversation(conversation(str(910 + n), f"apple {words}"))
    hits = index.search("1", "apple", limit=6)
    assert ids(hits)[0] == "901"
    assert sorted(ids(hits)[1:]) == ["910", "911", "912", "913", "914"]


def test_a_damaged_guild_file_is_set_aside_and_started_afresh(tmp_path: Path) -> None:
    folder = tmp_path / "recall"
    with RecallIndex(folder) as index:
        index.upsert_conversation(conversation("951", "kites"))
        index.upsert_conversation(conversation("952", "kites", guild_id="2"))
    (folder / "1.sqlite3").write_bytes(b"this is not a database" * 100)
    with RecallIndex(folder) as index:
        assert index.search("1", "kites") == []  # empty until rebuilt, and no crash
        assert ids(index.search("2", "kites")) == ["952"]
        index.upsert_conversation(conversation("951", "kites"))
        assert ids(index.search("1", "kites")) == ["951"]
    assert (folder / "1.sqlite3.corrupt").read_bytes().startswith(b"this is not")


# --- a query matching too many passages to score them all (the "common terms" ranking) ------


@pytest.fixture
def crowded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A guild where "apple" and "pear" are common words: small thresholds stand in for the
    thousands of passages of a large guild. Words only: with thresholds this small even the
    pair "apple pear" would count as common (in a large guild a pair of words is far rarer
    than either word; ``python -m bench --only recall`` measures that ranking with pairs)."""
    import memory.recall.ranking as recall

    monkeypatch.setattr(recall, "_EXACT_MATCHES", 8)
    monkeypatch.setattr(recall, "_RARE_MATCHES", 5)
    ranked: list[bool] = []  # per search: True if ranked by the rare words, False if exactly
    rank_common = RecallIndex._rank_common

    def spy(self, *args, **kwargs):
        rows = rank_common(self, *args, **kwargs)
        ranked.append(rows is not None)
        return rows

    monkeypatch.setattr(RecallIndex, "_rank_common", spy)
    with RecallIndex(tmp_path / "recall", settings=RecallSettings(phrase_pairs=False)) as index:
        index.ranked = ranked  # type: ignore[attr-defined]
        items = []
        for n in range(30):
            words = ["apple"] * (1 + n % 3) + ["pear"] * (n % 2) + [f"filler{n}"] * (n % 5)
            if n in (3, 17):
                words.append("quince")
            if n in (4, 11, 22):
                words.append("medlar")
            items.append((conversation(str(700 + n), " ".join(words)), None))
        index.upsert_many(items)
        yield index


def exact(index: RecallIndex, query: str, limit: int = 5):
    import memory.recall.ranking as recall

    saved = recall._EXACT_MATCHES
    recall._EXACT_MATCHES = 10**9
    try:
        return index.search("1", query, limit=limit)
    finally:
        recall._EXACT_MATCHES = saved


def test_rare_words_choose_the_candidates_and_every_word_scores_them(crowded: RecallIndex) -> None:
    query = "quince medlar apple pear"
    hits = crowded.search("1", query)
    assert crowded.ranked == [True]  # type: ignore[attr-defined]
    assert sorted(ids(hits)) == ["703", "704", "711", "717", "722"]
    # Scored as the exact ranking scores them, in the same order, with the same snippets.
    assert hits == exact(crowded, query)


def test_when_no_word_is_rare_the_candidates_hold_every_word(crowded: RecallIndex) -> None:
    hits = crowded.search("1", "apple pear", limit=3)
    assert crowded.ranked == [True]  # type: ignore[attr-defined]
    assert hits == exact(crowded, "apple pear", limit=3)
    assert all("apple" in h.snippet and "pear" in h.snippet for h in hits)


def test_too_few_candidates_fall_back_to_the_exact_ranking(crowded: RecallIndex) -> None:
    hits = crowded.search("1", "quince apple", limit=5)  # two conversations hold quince
    assert crowded.ranked == [False]  # type: ignore[attr-defined]
    assert hits == exact(crowded, "quince apple", limit=5)
    assert ids(hits)[:2] == ["703", "717"] or ids(hits)[:2] == ["717", "703"]


def test_upsert_many_is_upsert_conversation_in_batches(tmp_path: Path) -> None:
    convs = [
        conversation(str(800 + n), f"topic{n % 4} words", guild_id=str(1 + n % 2)) for n in range(9)
    ]
    with RecallIndex(tmp_path / "a") as one, RecallIndex(tmp_path / "b") as many:
        for conv in convs:
            one.upsert_conversation(conv)
        assert many.upsert_many(((c, None) for c in convs), batch=2) == 9
        for guild in ("1", "2"):
            assert one.versions(guild) == many.versions(guild)
            assert one.search(guild, "topic1 words") == many.search(guild, "topic1 words")
