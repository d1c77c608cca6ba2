"""The manager's public API, the idle lifecycle, events, and races against the idle timer."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from memory import (
    ConversationEvent,
    InMemoryConversationManager,
    JsonFileStore,
    Message,
    MessageType,
)


def chat(text: str, requester: str = "33", message_id: str | None = None) -> Message:
    return Message(
        message_type=MessageType.CHAT,
        message_content=text,
        requester=requester,
        message_id=message_id,
    )


async def create(
    manager: InMemoryConversationManager, thread_id: str, guild_id: str = "22"
) -> None:
    await manager.create_conversation(
        thread_id=thread_id, guild_id=guild_id, guild_name="G", requester="33", channel_id="44"
    )


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_the_documented_api(tmp_path: Path) -> None:
    store = JsonFileStore(tmp_path)
    async with InMemoryConversationManager(store=store, idle_time=300.0) as manager:
        conv = await manager.create_conversation(
            thread_id="11", guild_id="22", guild_name="G", requester="33", channel_id="44"
        )
        assert conv.participants == ["33"]
        assert await manager.add_message_to_conversation(
            "11", Message(message_type=MessageType.CHAT, message_content="hi", requester="33")
        )
        assert manager.get_conversation("11") is conv
        assert await manager.get_or_resume("11") is conv
        assert await manager.save_conversation("11")
        assert await manager.remove_conversation("11")
        assert manager.get_conversation("11") is None
        resumed = await manager.get_or_resume("11")
        assert resumed is not None and resumed.history[0].message_content == "hi"
        assert manager.get_all_conversations() == [resumed]
        assert await manager.save_all_conversations() == 0  # nothing changed since the save
        await manager.shutdown()
        await manager.shutdown()  # idempotent


async def test_unknown_thread_raises_key_error(tmp_path: Path) -> None:
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path)) as manager:
        with pytest.raises(KeyError, match="999"):
            await manager.add_message_to_conversation("999", chat("x"))
        assert await manager.get_or_resume("999") is None
        assert not await manager.save_conversation("999")
        with pytest.raises(ValueError, match="thread_id"):
            await manager.add_message_to_conversation("../x", chat("x"))
        with pytest.raises(ValueError, match="guild_id"):
            await manager.create_conversation(
                thread_id="1", guild_id="1/2", requester="3", channel_id="4"
            )


async def test_create_is_idempotent_and_guild_bound(tmp_path: Path) -> None:
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path)) as manager:
        await create(manager, "11")
        await manager.add_message_to_conversation("11", chat("first"))
        again = await manager.create_conversation(
            thread_id="11", guild_id="22", requester="99", channel_id="44"
        )
        assert again.requester == "33" and len(again.history) == 1
        with pytest.raises(ValueError, match="already has a conversation in guild 22"):
            await create(manager, "11", guild_id="23")


async def test_gateway_replay_is_recorded_once(tmp_path: Path) -> None:
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path)) as manager:
        await create(manager, "11")
        assert await manager.add_message_to_conversation("11", chat("hi", message_id="500"))
        assert not await manager.add_message_to_conversation("11", chat("hi", message_id="500"))
        await manager.remove_conversation("11")
        assert not await manager.add_message_to_conversation("11", chat("hi", message_id="500"))
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path)) as manager:
        conv = await manager.get_or_resume("11")
        assert conv is not None and len(conv.history) == 1


async def test_every_mutation_is_durable_without_a_save(tmp_path: Path) -> None:
    manager = InMemoryConversationManager(store=JsonFileStore(tmp_path), idle_time=300)
    await manager.start()
    await create(manager, "11")
    await manager.add_message_to_conversation("11", chat("keep", message_id="1"))
    await manager.add_message_to_conversation("11", chat("change me", message_id="2"))
    await manager.add_message_to_conversation("11", chat("drop me", message_id="3"))
    assert await manager.edit_message("11", "2", "changed")
    assert await manager.delete_message("11", "3")
    assert not await manager.edit_message("11", "404", "nothing")
    assert not await manager.delete_message("11", "404")
    await manager.set_summary("11", "short story")
    await manager.end_conversation("11")
    await manager.reopen_conversation("11")
    await manager.end_conversation("11")
    # Simulate a crash: nothing saved, the store is dropped without closing the manager.
    await manager.store.journal.sync()
    manager._sweeper.cancel()  # type: ignore[union-attr]
    await manager.store.close()

    async with InMemoryConversationManager(store=JsonFileStore(tmp_path)) as fresh:
        conv = await fresh.get_or_resume("11")
    assert conv is not None
    assert [m.message_content for m in conv.history] == ["keep", "changed"]
    assert "edited_at" in conv.history[1].meta
    assert conv.summary == "short story" and conv.ended


async def test_idle_conversations_are_saved_evicted_and_resumed(tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []

    async def async_listener(event: ConversationEvent) -> None:
        events.append((event.kind, event.thread_id))

    def broken_listener(event: ConversationEvent) -> None:
        raise RuntimeError("listener bug")

    async with InMemoryConversationManager(store=JsonFileStore(tmp_path), idle_time=0.2) as manager:
        manager.add_listener(broken_listener)
        manager.add_listener(async_listener)
        await create(manager, "11")
        await manager.add_message_to_conversation("11", chat("one"))
        await wait_until(lambda: manager.get_conversation("11") is None)
        assert events == [("saved", "11"), ("idle", "11")]
        files = list((tmp_path / "guilds" / "22").glob("*_11.json"))
        assert len(files) == 1
        assert len(json.loads(files[0].read_text())["history"]) == 1

        await manager.add_message_to_conversation("11", chat("two", requester="34"))
        assert manager.get_conversation("11") is not None
        await wait_until(lambda: manager.get_conversation("11") is None)
        assert list((tmp_path / "guilds" / "22").glob("*_11.json")) == files  # same file grew
        data = json.loads(files[0].read_text())
        assert [m["message_content"] for m in data["history"]] == ["one", "two"]
        assert data["participants"] == ["33", "34"]


async def test_listeners_hear_when_a_conversation_leaves_memory_or_ends(tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path)) as manager:
        manager.add_listener(lambda event: events.append((event.kind, event.thread_id)))
        await create(manager, "11")
        await create(manager, "12")
        await manager.end_conversation("11")
        await manager.end_conversation("11")  # already ended: nothing to tell
        assert await manager.remove_conversation("11")
        await manager.delete_conversation("12")
    assert events == [("ended", "11"), ("saved", "11"), ("removed", "11"), ("deleted", "12")]


async def test_listener_failure_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path)) as manager:
        manager.add_listener(lambda event: 1 / 0)
        await create(manager, "11")
        await manager.save_conversation("11")
    assert "listener" in caplog.text and "ZeroDivisionError" in caplog.text


async def test_delete_conversation_forgets_everywhere(tmp_path: Path) -> None:
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path)) as manager:
        await create(manager, "11")
        await manager.add_message_to_conversation("11", chat("private"))
        await manager.save_conversation("11")
        await manager.add_message_to_conversation("11", chat("more"))
        assert await manager.delete_conversation("11")
        assert manager.get_conversation("11") is None
        assert not await manager.delete_conversation("11")
    assert list((tmp_path / "guilds" / "22").iterdir()) == []
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path)) as manager:
        assert await manager.get_or_resume("11") is None


async def test_shutdown_saves_every_active_conversation(tmp_path: Path) -> None:
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path), idle_time=300) as manager:
        for n in range(20):
            await create(manager, str(100 + n), guild_id=str(1 + n % 2))
            await manager.add_message_to_conversation(str(100 + n), chat(f"m{n}"))
    files = list((tmp_path / "guilds").glob("*/*.json"))
    assert len(files) == 20
    assert list((tmp_path / "journal").glob("*.log")) == []


async def test_one_sweeper_for_many_conversations(tmp_path: Path) -> None:
    before = len(asyncio.all_tasks())
    async with InMemoryConversationManager(
        store=JsonFileStore(tmp_path, fsync="no"), idle_time=300
    ) as manager:
        for n in range(5_000):
            await create(manager, str(10_000 + n))
        # The idle clock is one task whatever the count (plus the journal's flusher).
        assert len(asyncio.all_tasks()) - before <= 2
        assert len(manager.get_all_conversations()) == 5_000


async def test_messages_racing_a_50ms_idle_timer_lose_nothing(tmp_path: Path) -> None:
    """2,000 conversations, messages arriving while their conversation is being evicted."""
    conversations, per_conversation = 2_000, 6
    rng = random.Random(7)
    async with InMemoryConversationManager(
        store=JsonFileStore(tmp_path), idle_time=0.05
    ) as manager:
        for n in range(conversations):
            await create(manager, str(1_000 + n), guild_id=str(1 + n % 3))

        async def talk(thread_id: str) -> None:
            for m in range(per_conversation):
                await asyncio.sleep(rng.choice((0, 0.01, 0.045, 0.05, 0.055, 0.07)))
                await manager.add_message_to_conversation(
                    thread_id, chat(f"{thread_id}:{m}", message_id=f"{thread_id}{m:02d}")
                )

        await asyncio.gather(*(talk(str(1_000 + n)) for n in range(conversations)))

    async with JsonFileStore(tmp_path) as store:
        refs = await store.list_conversations()
        assert len(refs) == conversations
        for ref in refs:
            conv = await store.load(ref.thread_id)
            assert conv is not None
            assert [m.message_content for m in conv.history] == [
                f"{ref.thread_id}:{m}" for m in range(per_conversation)
            ]


async def test_a_failing_save_keeps_the_conversation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="memory")
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path), idle_time=0.1) as manager:
        await create(manager, "11", guild_id="22")
        await manager.add_message_to_conversation("11", chat("precious"))
        guild_dir = tmp_path / "guilds" / "22"
        guild_dir.parent.mkdir(parents=True, exist_ok=True)
        guild_dir.write_text("a file where the guild folder should be")
        await wait_until(lambda: "will retry" in caplog.text)
        assert manager.get_conversation("11") is not None  # not evicted, nothing lost
        guild_dir.unlink()
        await wait_until(lambda: manager.get_conversation("11") is None)
    async with JsonFileStore(tmp_path) as store:
        conv = await store.load("11")
    assert conv is not None and conv.history[0].message_content == "precious"
