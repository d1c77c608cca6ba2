"""The semantic re-ranker's passage vectors go with the passages they were computed from.

Only the standard library: these run without the semantic extra, since what they guard is
privacy (a forgotten person's words must not survive as an embedding), not ranking.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory.recall import RecallIndex, RecallSettings, vectors
from tests.memory.recall_helpers import conversation, memory_of

# A vector no text would make by chance (384 float32s): any piece of it found in a file's bytes
# is this one. A row this long is split across pages, so a piece is looked for, not the whole.
PIECE = b"vector of the forgotten words!!!"
MARK = PIECE * 48


@pytest.fixture
def index(tmp_path: Path) -> Iterator[RecallIndex]:
    with RecallIndex(tmp_path / "recall") as opened:
        yield opened


def connect(index: RecallIndex, guild: str = "1") -> sqlite3.Connection:
    return sqlite3.connect(index.guild_file(guild), isolation_level=None)


def keep_vectors(index: RecallIndex, thread_id: str, guild: str = "1") -> int:
    """Store MARK for every passage of a conversation, as the re-ranker would."""
    db = connect(index, guild)
    try:
        vectors.prepare(db, "fake")
        cid = vectors.conversation_ids(db, [thread_id])[thread_id]
        texts = vectors.passages(db, cid)
        assert vectors.store(db, cid, texts, {p.pid: MARK for p in texts if p.number})
        return cid
    finally:
        db.close()


def kept(index: RecallIndex, guild: str = "1") -> list[tuple[int, int]]:
    db = connect(index, guild)
    try:
        return db.execute(f"SELECT cid, pid FROM {vectors.TABLE}").fetchall()
    finally:
        db.close()


def file_bytes(index: RecallIndex, guild: str = "1") -> bytes:
    path = index.guild_file(guild)
    return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))


def test_passages_are_read_memory_first_with_their_number(index: RecallIndex) -> None:
    conv = conversation("11", *(f"message {n} about kites" for n in range(8)))
    index.upsert_conversation(conv, memory_of(conv, summary="kites"))
    db = connect(index)
    cid = vectors.conversation_ids(db, ["11", "99"])
    assert list(cid) == ["11"]
    texts = vectors.passages(db, cid["11"])
    assert texts[0].number == 0 and "kites" in texts[0].memory and not texts[0].people
    assert [p.number for p in texts] == list(range(len(texts)))
    assert "message 0 about kites" in texts[1].people
    db.close()


def test_a_resave_a_new_memory_and_a_delete_each_drop_the_conversations_vectors(
    index: RecallIndex,
) -> None:
    conv = conversation("11", "the lighthouse keeper", "keeps the light")
    index.upsert_conversation(conv)
    index.upsert_conversation(conversation("12", "another talk"))
    other = keep_vectors(index, "12")
    cid = keep_vectors(index, "11")
    assert {c for c, _ in kept(index)} == {cid, other}

    index.upsert_conversation(conv)  # resaved: its passages are written again
    assert {c for c, _ in kept(index)} == {other}  # another conversation's stay

    keep_vectors(index, "11")
    index.upsert_memory(memory_of(conv, summary="lighthouse"))
    assert {c for c, _ in kept(index)} == {other}

    keep_vectors(index, "11")
    assert index.delete("11", "1")
    assert {c for c, _ in kept(index)} == {other}


def test_after_a_delete_and_scrub_no_byte_of_the_vectors_stays_in_the_file(
    index: RecallIndex,
) -> None:
    index.upsert_conversation(conversation("11", "what the forgotten person said"))
    keep_vectors(index, "11")
    assert PIECE in file_bytes(index)
    index.delete("11", "1")
    index.scrub("1")  # what a forget does after reindexing
    assert PIECE not in file_bytes(index)


def test_a_vector_of_text_that_changed_meanwhile_is_not_stored(index: RecallIndex) -> None:
    index.upsert_conversation(conversation("11", "first words"))
    db = connect(index)
    vectors.prepare(db, "fake")
    cid = vectors.conversation_ids(db, ["11"])["11"]
    embedded = vectors.passages(db, cid)
    # While the re-ranker was embedding, the conversation was resaved with other words.
    index.upsert_conversation(conversation("11", "other words entirely"))
    assert not vectors.store(db, cid, embedded, {p.pid: MARK for p in embedded})
    assert kept(index) == []
    db.close()


def test_vectors_of_another_model_are_dropped(index: RecallIndex) -> None:
    index.upsert_conversation(conversation("11", "words"))
    keep_vectors(index, "11")
    db = connect(index)
    vectors.prepare(db, "fake")
    assert vectors.stored(db, [vectors.conversation_ids(db, ["11"])["11"]])
    vectors.prepare(db, "another model")
    assert kept(index) == []
    db.close()


def test_a_file_reset_by_other_settings_drops_the_vectors(tmp_path: Path) -> None:
    folder = tmp_path / "recall"
    with RecallIndex(folder) as index:
        index.upsert_conversation(conversation("11", "words"))
        keep_vectors(index, "11")
    with RecallIndex(folder, settings=RecallSettings(window=3, stride=1)) as index:
        assert index.count("1") == 0  # reset
        db = connect(index)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        db.close()
        assert vectors.TABLE not in tables


def test_prepare_reads_only_once_everything_is_there(index: RecallIndex) -> None:
    index.upsert_conversation(conversation("11", "words"))
    db = connect(index)
    vectors.prepare(db, "fake")
    db.execute("PRAGMA query_only = ON")  # a write now would fail
    vectors.prepare(db, "fake")
    db.close()
