"""The JSON-file store's own promises: layout, atomic files, quarantine, journal recovery."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memory import (
    Conversation,
    InMemoryConversationManager,
    JsonFileStore,
    Message,
    RecoveryError,
    StoreError,
)
from memory.records.mutations import Append, Create, Purge, encode

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def conversation(thread_id: str = "11", guild_id: str = "22") -> Conversation:
    return Conversation(
        thread_id=thread_id,
        channel_id="44",
        guild_id=guild_id,
        guild_name="G",
        requester="33",
        created_at=T0,
        updated_at=T0,
    )


def chat(text: str) -> Message:
    return Message(message_type="chat", message_content=text, requester="33")


def segments(data: Path) -> list[Path]:
    return sorted((data / "journal").glob("*.log"))


async def test_files_are_where_design_md_says(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with JsonFileStore(data) as store:
        await store.save(conversation("11", "22"))
    expected = data / "guilds" / "22" / "2026-11-20_conversation-with-33-in-22_11.json"
    assert expected.is_file()
    assert [p.name for p in expected.parent.iterdir()] == [expected.name]  # no temp left over
    assert json.loads(expected.read_text())["thread_id"] == "11"


async def test_truncated_file_is_quarantined_and_the_rest_keeps_working(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    async with JsonFileStore(data) as store:
        broken, fine = conversation("11"), conversation("12")
        broken.add_message(chat("x" * 100))
        await store.save(broken)
        await store.save(fine)
    path = data / "guilds" / "22" / broken.filename
    path.write_bytes(path.read_bytes()[:-40])

    caplog.set_level(logging.WARNING, logger="memory")
    async with InMemoryConversationManager(store=JsonFileStore(data)) as manager:
        assert await manager.get_or_resume("11") is None
        assert "moved aside" in caplog.text and broken.filename in caplog.text
        assert (await manager.get_or_resume("12")) == fine
        await manager.add_message_to_conversation("12", chat("still works"))
        with pytest.raises(KeyError):
            await manager.add_message_to_conversation("11", chat("lost thread"))
    quarantined = path.with_name(path.name + ".corrupt")
    assert quarantined.is_file() and not path.exists()


async def test_second_process_on_one_folder_is_refused(tmp_path: Path) -> None:
    async with JsonFileStore(tmp_path) as store:
        assert store.is_open
        with pytest.raises(StoreError, match="in use by another Echo process"):
            await JsonFileStore(tmp_path).open()
    async with JsonFileStore(tmp_path):
        pass  # released on close


async def recorded_then_saved(data: Path) -> tuple[bytes, Conversation]:
    """Record a conversation, copy the journal as it was, then save (which empties it)."""
    conv = conversation()
    async with JsonFileStore(data) as store:
        await store.record(Create(conv))
        for text in ("a", "b", "c"):
            message = chat(text)
            await store.record(Append("11", message))
            conv.add_message(message)
        await store.journal.sync()
        journal_before_save = b"".join(p.read_bytes() for p in segments(data))
        await store.save(conv)
        assert segments(data) == []  # all saved: the journal is dropped
    return journal_before_save, conv


async def test_crash_between_rename_and_cleanup_never_duplicates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    journal, conv = await recorded_then_saved(data)
    file_bytes = (data / "guilds" / "22" / conv.filename).read_bytes()
    digest = hashlib.sha256(file_bytes).hexdigest()
    checkpoint = f'{{"op":"checkpoint","thread_id":"11","sha256":"{digest}"}}\n'.encode()
    (data / "journal" / "00000000000000000001.log").write_bytes(journal + checkpoint)

    async with JsonFileStore(data) as store:
        loaded = await store.load("11")
    assert loaded is not None and [m.message_content for m in loaded.history] == ["a", "b", "c"]
    assert segments(data) == []
    # The checkpoint vouched for the file: it was used as is, not set aside.
    assert list((data / "guilds" / "22").glob("*.corrupt*")) == []


async def test_crash_before_rename_rebuilds_from_the_journal(tmp_path: Path) -> None:
    data = tmp_path / "data"
    journal, conv = await recorded_then_saved(data)
    (data / "guilds" / "22" / conv.filename).unlink()  # the rename never happened
    stale = b'{"op":"checkpoint","thread_id":"11","sha256":"' + b"0" * 64 + b'"}\n'
    (data / "journal" / "00000000000000000001.log").write_bytes(journal + stale)

    async with JsonFileStore(data) as store:
        loaded = await store.load("11")
    assert loaded is not None and [m.message_content for m in loaded.history] == ["a", "b", "c"]


async def test_records_after_a_matching_checkpoint_are_applied_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    journal, conv = await recorded_then_saved(data)
    digest = hashlib.sha256((data / "guilds" / "22" / conv.filename).read_bytes()).hexdigest()
    later = encode(Append("11", chat("d")))
    checkpoint = f'{{"op":"checkpoint","thread_id":"11","sha256":"{digest}"}}\n'.encode()
    (data / "journal" / "00000000000000000001.log").write_bytes(journal + checkpoint + later)
    for _ in range(2):  # recovering twice changes nothing
        async with JsonFileStore(data) as store:
            loaded = await store.load("11")
        assert loaded is not None
        assert [m.message_content for m in loaded.history] == ["a", "b", "c", "d"]
        assert list((data / "guilds" / "22").glob("*.corrupt*")) == []


async def test_torn_last_line_and_garbage_lines_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    (data / "journal").mkdir(parents=True)
    lines = [
        encode(Create(conversation())),
        encode(Append("11", chat("kept"))),
        b"{not json\n",
        encode(Append("11", chat("also kept"))),
        encode(Append("11", chat("torn")))[:-10],
    ]
    (data / "journal" / "00000000000000000007.log").write_bytes(b"".join(lines))
    caplog.set_level(logging.INFO, logger="memory")
    async with JsonFileStore(data) as store:
        loaded = await store.load("11")
        assert loaded is not None
        assert [m.message_content for m in loaded.history] == ["kept", "also kept"]
        await store.record(Append("11", chat("new")))
        # New segments continue the numbering: never reuse a name an old segment had.
        names = [p.name for p in segments(data)]
        assert len(names) == 1 and int(names[0].removesuffix(".log")) > 7
    assert "torn last record" in caplog.text and "unreadable" in caplog.text
    # What could not be read is kept for the operator, named with a count, never destroyed.
    [aside] = (data / "journal").glob("*.corrupt")
    assert aside.name == "00000000000000000007.log.corrupt"
    assert b"{not json\n" in aside.read_bytes()
    assert "1 unreadable record(s) kept in 00000000000000000007.log.corrupt" in caplog.text
    # ...and is not replayed again at the next start, nor set aside twice.
    async with JsonFileStore(data) as store:
        loaded = await store.load("11")
        assert loaded is not None and len(loaded.history) == 3
    assert [p.name for p in (data / "journal").glob("*.corrupt*")] == [aside.name]


async def test_orphaned_records_are_set_aside_not_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    (data / "journal").mkdir(parents=True)
    orphan = encode(Append("11", chat("no home")))
    (data / "journal" / "00000000000000000001.log").write_bytes(orphan)
    async with JsonFileStore(data) as store:
        assert await store.load("11") is None
    kept = list((data / "journal").glob("orphaned-*.jsonl"))
    assert len(kept) == 1 and kept[0].read_bytes() == orphan
    assert "no conversation file" in caplog.text


async def test_purge_finishes_an_interrupted_delete(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with JsonFileStore(data) as store:
        await store.save(conversation())
    (data / "journal").mkdir(exist_ok=True)
    (data / "journal" / "00000000000000000001.log").write_bytes(
        encode(Append("11", chat("x"))) + encode(Purge("11"))
    )
    async with JsonFileStore(data) as store:
        assert await store.load("11") is None
    assert list((data / "guilds" / "22").iterdir()) == []


async def test_saved_segments_are_deleted_and_pinned_ones_checkpointed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = JsonFileStore(data, journal_segment_bytes=512)
    async with InMemoryConversationManager(
        store=store, idle_time=60, maintenance_interval=0.05
    ) as manager:
        for thread in ("11", "12"):
            await manager.create_conversation(
                thread_id=thread, guild_id="22", requester="33", channel_id="44"
            )
        for n in range(30):
            await manager.add_message_to_conversation("11", chat(f"busy {n}"))
        await manager.add_message_to_conversation("12", chat("quiet"))
        assert len(segments(data)) > 3
        # Neither conversation is idle; maintenance saves what pins the oldest segments.
        for _ in range(100):
            if len(segments(data)) <= 1:
                break
            await asyncio.sleep(0.02)
        assert len(segments(data)) <= 1
        assert manager.get_conversation("11") is not None  # saved, not evicted


async def test_saving_a_large_conversation_yields_to_the_loop(tmp_path: Path) -> None:
    conv = conversation()
    for n in range(10_000):
        conv.add_message(chat(f"message {n}"))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async with JsonFileStore(tmp_path) as store:
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = ticks
        await store.save(conv)
        during = ticks - before
        task.cancel()
        loaded = await store.load("11")
    assert loaded == conv
    # Serialisation runs in slices of 256 messages with the loop free between them.
    assert during >= 10_000 // 256


async def test_read_only_reads_beside_a_running_store_and_never_writes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with JsonFileStore(data) as writer:
        await writer.save(conversation("11"))
        await writer.record(Create(conversation("12")))  # journaled, not saved
        async with JsonFileStore(data, read_only=True) as reader:  # no lock conflict
            assert [r.thread_id for r in await reader.list_conversations()] == ["11"]
            assert (await reader.load("11")) == conversation("11")
            with pytest.raises(StoreError, match="read-only"):
                await reader.save(conversation("13"))
            with pytest.raises(StoreError, match="read-only"):
                await reader.delete("11")
    path = data / "guilds" / "22" / conversation("11").filename
    path.write_text("{broken")
    async with JsonFileStore(data, read_only=True) as reader:
        assert await reader.load("11") is None
    assert path.read_text() == "{broken"  # not moved aside by a reader
    temp = path.with_name(f".{path.name}.123-0.tmp")  # a running bot's save in progress
    temp.write_text("{}")
    async with JsonFileStore(data, read_only=True):
        pass
    assert temp.exists()
    async with JsonFileStore(tmp_path / "missing", read_only=True) as reader:
        assert await reader.list_conversations() == []
    assert not (tmp_path / "missing").exists()


async def test_a_recovery_that_cannot_save_keeps_the_journal_and_a_later_one_finishes(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    store = JsonFileStore(data)
    async with store:
        for thread, guild in (("11", "22"), ("12", "22"), ("13", "23")):
            await store.record(Create(conversation(thread, guild)))
            for word in ("a", "b"):
                await store.record(Append(thread, chat(f"{word} in {thread}")))
        # Closed without a save: what a killed bot leaves.
    journal_before = b"".join(p.read_bytes() for p in segments(data))
    # Guild 23's folder cannot be made: a file sits where it should be.
    (data / "guilds" / "23").write_bytes(b"in the way")

    with pytest.raises(RecoveryError, match=r"the journal in .* is kept, nothing is lost"):
        async with JsonFileStore(data):
            pass
    assert b"".join(p.read_bytes() for p in segments(data)) == journal_before
    assert list((data / "guilds").rglob("*.tmp")) == []  # no half-saved file left behind

    (data / "guilds" / "23").unlink()
    async with JsonFileStore(data) as store:
        for thread in ("11", "12", "13"):
            loaded = await store.load(thread)
            assert loaded is not None
            assert [m.message_content for m in loaded.history] == [
                f"a in {thread}",
                f"b in {thread}",
            ]
    assert segments(data) == []  # everything is saved: the journal is gone


async def test_recovering_many_conversations_saves_each_once_with_its_checkpoint(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with JsonFileStore(data) as store:
        await store.save(conversation("100", "22"))  # one that continues a file on disk
        for n in range(100, 160):
            thread = str(n)
            if n != 100:
                await store.record(Create(conversation(thread, str(20 + n % 3))))
            await store.record(Append(thread, chat(f"hello {n}")))
    async with JsonFileStore(data) as store:
        refs = await store.list_conversations()
        assert len(refs) == 60
        for n in (100, 101, 159):
            loaded = await store.load(str(n))
            assert loaded is not None
            assert [m.message_content for m in loaded.history] == [f"hello {n}"]
    assert segments(data) == []
    # Each recovered file sits once, under its guild, with no temp file beside it.
    files = sorted(p.name for p in (data / "guilds").rglob("*.json"))
    assert len(files) == 60 and list((data / "guilds").rglob("*.tmp")) == []


async def test_a_memory_file_that_does_not_parse_twice_is_kept_twice(tmp_path: Path) -> None:
    """Set aside as conversation files and journal segments are: an earlier ``.corrupt`` copy
    is never overwritten by a later one."""
    data = tmp_path / "data"
    folder = data / "guilds" / "22" / "memories"
    folder.mkdir(parents=True)
    async with JsonFileStore(data) as store:
        for damage in (b"{first", b"{second"):
            (folder / "11.json").write_bytes(damage)
            assert await store.load_memory("22", "11") is None
    kept = {p.name: p.read_bytes() for p in folder.glob("11.json.corrupt*")}
    assert kept == {"11.json.corrupt": b"{first", "11.json.corrupt.2": b"{second"}
