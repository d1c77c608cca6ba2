"""One contract every store backend passes: JSON files and Redis (see conftest.store_factory)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory import Conversation, InMemoryConversationManager, Message, StoreError
from memory.longterm import MemoryQueue
from memory.records.memories import MemoryData, MemoryRecord
from memory.records.mutations import (
    Append,
    Create,
    Delete,
    Edit,
    End,
    ForgetPerson,
    Reopen,
    SetSummary,
)
from memory.stores import ChangeFeed, FileBacked, QueueHost

from .conftest import StoreFactory

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def conversation(
    thread_id: str, guild_id: str = "22", requester: str = "33", days: int = 0
) -> Conversation:
    created = T0 + timedelta(days=days)
    return Conversation(
        thread_id=thread_id,
        channel_id="44",
        guild_id=guild_id,
        guild_name=f"guild {guild_id}",
        requester=requester,
        created_at=created,
        updated_at=created,
    )


def chat(text: str, message_id: str | None = None, requester: str = "33") -> Message:
    return Message(
        message_type="chat", message_content=text, requester=requester, message_id=message_id
    )


class TestStoreContract:
    async def test_save_then_load_round_trips(self, store_factory: StoreFactory) -> None:
        conv = conversation("11")
        conv.add_message(chat("hi", "1"))
        conv.add_message(Message(message_type="thinking", message_content="hmm"))
        async with store_factory() as store:
            await store.save(conv)
            loaded = await store.load("11")
            assert loaded == conv
            assert await store.exists("11")
        async with store_factory() as store:
            assert await store.load("11") == conv

    async def test_unknown_thread_is_none(self, store_factory: StoreFactory) -> None:
        async with store_factory() as store:
            assert await store.load("999") is None
            assert not await store.exists("999")
            assert not await store.delete("999")

    async def test_listing_is_per_guild_and_newest_first(self, store_factory: StoreFactory) -> None:
        async with store_factory() as store:
            await store.save(conversation("11", guild_id="1", days=0))
            await store.save(conversation("12", guild_id="1", days=2))
            await store.save(conversation("13", guild_id="12", days=1))
            await store.save(conversation("14", guild_id="123"))
            guild_1 = await store.list_conversations("1")
            assert [r.thread_id for r in guild_1] == ["12", "11"]
            assert {r.guild_id for r in guild_1} == {"1"}
            assert [r.thread_id for r in await store.list_conversations("12")] == ["13"]
            assert len(await store.list_conversations()) == 4
            assert await store.list_guilds() == ["1", "12", "123"]
            assert guild_1[0].requester == "33"

    async def test_delete_forgets(self, store_factory: StoreFactory) -> None:
        async with store_factory() as store:
            await store.save(conversation("11"))
            assert await store.delete("11")
            assert await store.load("11") is None
            assert await store.list_conversations("22") == []
        async with store_factory() as store:
            assert await store.load("11") is None

    async def test_recorded_mutations_survive_without_a_save(
        self, store_factory: StoreFactory
    ) -> None:
        conv = conversation("11")
        async with store_factory() as store:
            await store.record(Create(conv))
            await store.record(Append("11", chat("one", "1")))
            await store.record(Append("11", chat("two", "2", requester="34")))
            await store.record(Append("11", chat("three", "3")))
            await store.record(Edit("11", "1", "one!", T0 + timedelta(hours=1)))
            await store.record(Delete("11", "3", T0 + timedelta(hours=1)))
            await store.record(SetSummary("11", "a summary", T0 + timedelta(hours=1)))
            await store.record(End("11", T0 + timedelta(hours=1)))
            await store.record(Reopen("11", T0 + timedelta(hours=1)))
            await store.record(End("11", T0 + timedelta(hours=2)))
        async with store_factory() as store:
            loaded = await store.load("11")
        assert loaded is not None
        assert [m.message_content for m in loaded.history] == ["one!", "two"]
        assert loaded.participants == ["33", "34"]
        assert loaded.summary == "a summary"
        assert loaded.ended_at == T0 + timedelta(hours=2)

    async def test_save_after_records_never_duplicates(self, store_factory: StoreFactory) -> None:
        conv = conversation("11")
        async with store_factory() as store:
            await store.record(Create(conv))
            for n in range(5):
                message = chat(f"m{n}")
                await store.record(Append("11", message))
                conv.add_message(message)
            await store.save(conv)
            await store.record(Append("11", chat("after")))
        async with store_factory() as store:
            loaded = await store.load("11")
        assert loaded is not None
        assert [m.message_content for m in loaded.history] == [f"m{n}" for n in range(5)] + [
            "after"
        ]

    async def test_deleted_conversation_does_not_come_back(
        self, store_factory: StoreFactory
    ) -> None:
        async with store_factory() as store:
            await store.record(Create(conversation("11")))
            await store.record(Append("11", chat("secret")))
            # Whether this counts as "was stored" differs (a JSON file was never written; Redis
            # holds every record), so only what follows is the contract.
            await store.delete("11")
            assert await store.load("11") is None
        async with store_factory() as store:
            assert await store.load("11") is None
            assert await store.list_conversations() == []

    @pytest.mark.parametrize("bad", ["../x", "12a", "", "1/2"])
    async def test_bad_ids_are_value_errors(self, store_factory: StoreFactory, bad: str) -> None:
        async with store_factory() as store:
            with pytest.raises(ValueError, match="thread_id"):
                await store.load(bad)
            with pytest.raises(ValueError, match="thread_id"):
                await store.delete(bad)
            with pytest.raises(ValueError, match="guild_id"):
                await store.list_conversations(bad)

    async def test_a_closed_store_says_so(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        with pytest.raises(StoreError, match="not open"):
            await store.load("11")
        async with store:
            pass
        with pytest.raises(StoreError, match="not open"):
            await store.save(conversation("11"))

    async def test_headers_come_without_history_per_guild(
        self, store_factory: StoreFactory
    ) -> None:
        conv = conversation("11", guild_id="1")
        conv.add_message(chat("hello", "1", requester="34"))
        conv.set_summary("greetings", T0 + timedelta(hours=1))
        conv.end(T0 + timedelta(hours=2))
        async with store_factory() as store:
            await store.save(conv)
            await store.save(conversation("21", guild_id="12"))
            infos = await store.conversation_infos("1")
            assert [i.thread_id for i in infos] == ["11"]
            info = infos[0]
            assert info.guild_name == "guild 1"
            assert info.participants == ("33", "34")
            assert info.summary == "greetings"
            assert info.ended
            assert info.updated_at == conv.updated_at
            assert {i.thread_id for i in await store.conversation_infos()} == {"11", "21"}

    async def test_memories_round_trip_per_guild(self, store_factory: StoreFactory) -> None:
        def memory(thread_id: str, guild_id: str, summary: str) -> MemoryRecord:
            return MemoryRecord(
                thread_id=thread_id,
                guild_id=guild_id,
                requester="33",
                memory_data=MemoryData(summary=summary),
                source_updated_at=T0,
            )

        async with store_factory() as store:
            await store.save_memory(memory("11", "1", "first"))
            await store.save_memory(memory("11", "1", "first, again"))
            await store.save_memory(memory("12", "1", "second"))
            await store.save_memory(memory("21", "12", "other guild"))
        async with store_factory() as store:
            loaded = await store.load_memory("1", "11")
            assert loaded is not None and loaded.memory_data.summary == "first, again"
            assert await store.load_memory("12", "11") is None
            assert [m.thread_id for m in await store.list_memories("1")] == ["11", "12"]
            assert [m.thread_id for m in await store.list_memories("12")] == ["21"]
            assert await store.delete_memory("1", "11")
            assert not await store.delete_memory("1", "11")
            assert [m.thread_id for m in await store.list_memories("1")] == ["12"]

    async def test_put_replaces_whatever_is_stored(self, store_factory: StoreFactory) -> None:
        async with store_factory() as store:
            await store.record(Create(conversation("11")))
            await store.record(Append("11", chat("old", "1")))
            replacement = conversation("11")
            replacement.add_message(chat("new", "2"))
            replacement.add_message(chat("newer", "3", requester="35"))
            await store.put(replacement)
        async with store_factory() as store:
            assert await store.load("11") == replacement
            await store.record(Append("11", chat("old", "1")))  # its id is free again
        async with store_factory() as store:
            loaded = await store.load("11")
        assert loaded is not None
        assert [m.message_content for m in loaded.history] == ["new", "newer", "old"]

    async def test_duplicate_message_ids_are_recorded_once(
        self, store_factory: StoreFactory
    ) -> None:
        async with store_factory() as store:
            await store.record(Create(conversation("11")))
            await store.record(Append("11", chat("once", "1")))
            await store.record(Append("11", chat("once", "1")))
        async with store_factory() as store:
            loaded = await store.load("11")
        assert loaded is not None and [m.message_content for m in loaded.history] == ["once"]

    async def test_forgetting_a_person_through_records(self, store_factory: StoreFactory) -> None:
        async with store_factory() as store:
            await store.record(Create(conversation("11")))
            await store.record(Append("11", chat("mine", "1")))
            await store.record(Append("11", chat("theirs", "2", requester="34")))
            answer = Message(message_type="chat", message_content="re", meta={"reply_to": "2"})
            await store.record(Append("11", answer))
            await store.record(ForgetPerson("11", "34", T0 + timedelta(hours=1)))
        async with store_factory() as store:
            loaded = await store.load("11")
        assert loaded is not None
        assert [m.message_content for m in loaded.history] == ["mine"]
        assert loaded.participants == ["33"]

    async def test_the_manager_records_evicts_and_resumes(
        self, store_factory: StoreFactory
    ) -> None:
        store = store_factory()
        async with InMemoryConversationManager(store=store, idle_time=0.05) as manager:
            await manager.create_conversation(
                thread_id="11", guild_id="22", requester="33", channel_id="44"
            )
            for n in range(5):
                await manager.add_message_to_conversation("11", chat(f"m{n}", str(100 + n)))
            await manager.remove_conversation("11")
            assert manager.get_conversation("11") is None
            await manager.add_message_to_conversation("11", chat("after", "200"))
            assert not await manager.add_message_to_conversation("11", chat("dup", "200"))
        async with store_factory() as store:
            loaded = await store.load("11")
        assert loaded is not None
        assert [m.message_content for m in loaded.history] == [f"m{n}" for n in range(5)] + [
            "after"
        ]


class TestDeclaredCapabilities:
    """An optional capability is declared (a protocol the store satisfies) and then kept."""

    async def test_a_change_feed_reports_each_change(self, store_factory: StoreFactory) -> None:
        async with store_factory() as store:
            if not isinstance(store, ChangeFeed):
                # Only this process writes such a store: recall compares versions instead.
                assert not hasattr(store, "changes_since")
                return
            before, _ = await store.changes_since("22", None)
            await store.save(conversation("11"))
            now, changed = await store.changes_since("22", before)
            assert now > before and changed == {"11"}
            assert (await store.changes_since("22", now))[1] == set()
            assert (await store.changes_since("23", None))[1] == set()  # per guild

    async def test_a_queue_host_gives_a_memory_queue(self, store_factory: StoreFactory) -> None:
        async with store_factory() as store:
            if not isinstance(store, QueueHost):
                assert not hasattr(store, "memory_queue")
                return
            queue = store.memory_queue()
            assert isinstance(queue, MemoryQueue)
            await queue.close()

    async def test_a_file_backed_store_names_its_files(self, store_factory: StoreFactory) -> None:
        async with store_factory() as store:
            if not isinstance(store, FileBacked):
                assert not hasattr(store, "file_of")
                return
            assert store.file_of("22", "11") is None
            await store.save(conversation("11"))
            [ref] = await store.list_conversations("22")
            assert store.file_of("22", "11") == Path(ref.location)
            assert store.file_of("22", "11").is_file()  # type: ignore[union-attr]
            await store.save_memory(
                MemoryRecord(
                    thread_id="11",
                    guild_id="22",
                    requester="33",
                    memory_data=MemoryData(summary="s"),
                    source_updated_at=T0,
                )
            )
            assert store.memory_file_guilds() == {"22"}
            files = store.memory_file_ids("22")
            assert list(files) == ["11"] and files["11"].is_file()
            assert store.journal_dir.is_dir()
