"""The recall index as a file: it persists, resets on other settings, rebuilds, is shared by
threads, catches up with the files, survives damage, and batches upserts."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest

from memory import JsonFileStore
from memory.recall import RecallError, RecallIndex, RecallSettings, sync
from memory.recall import index as index_module
from memory.records.models import Conversation, Message, MessageType
from tests.memory.recall_helpers import conversation, ids, memory_of


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


async def test_a_conversation_that_cannot_be_indexed_does_not_stop_the_catch_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Indexing once failed on what a message said ("a couple of weeks ago"); such a fault,
    # wherever it comes from, costs recall that conversation alone, with a log line naming it.
    real = index_module.said_in

    def failing(conv: Conversation, **kwargs: Any) -> Any:
        if any("poison" in m.message_content for m in conv.history):
            raise KeyError("of")
        return real(conv, **kwargs)

    monkeypatch.setattr(index_module, "said_in", failing)
    async with JsonFileStore(tmp_path / "data", fsync="no") as store:
        await store.save(conversation("1", "the hiking trip was great"))
        await store.save(conversation("2", "poison: a couple of weeks ago, hiking"))
        await store.save(conversation("3", "hiking again next week", guild_id="7"))
        with RecallIndex(tmp_path / "recall") as index:
            report = await sync(index, store)
            assert (report.indexed, report.failed) == (2, 1)
            assert ids(index.search("1", "hiking")) == ["1"]
            assert ids(index.search("7", "hiking")) == ["3"]
    assert "conversation 2 of server 1 could not be indexed" in caplog.text
    assert "KeyError" in caplog.text
