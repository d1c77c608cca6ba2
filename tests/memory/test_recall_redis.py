"""Recall on a shared Redis store: each process's local index sees what the others wrote."""
# ruff: noqa: E402 - the redis check runs before the imports that need the extra

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.redis_support import require_redis_package

require_redis_package()

from memory import InMemoryConversationManager, RedisStore
from memory.recall import RecallIndex, RecallService
from memory.records.memories import Fact, MemoryData, MemoryRecord

from .test_store_contract import T0, chat


async def open_service(path: Path, manager: InMemoryConversationManager) -> RecallService:
    index = RecallIndex(path)
    await asyncio.to_thread(index.open)
    return RecallService(index, manager)


async def test_a_search_sees_what_another_process_wrote_and_forgot(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    writer = InMemoryConversationManager(store=RedisStore(redis_url, prefix=redis_prefix))
    reader = InMemoryConversationManager(store=RedisStore(redis_url, prefix=redis_prefix))
    async with writer, reader:
        service = await open_service(tmp_path / "reader-index", reader)
        try:
            assert await service.search("1", "lighthouse") == []
            # The other process: a conversation saved (idle), then a memory made by a worker.
            await writer.create_conversation(
                thread_id="11", guild_id="1", requester="33", channel_id="44"
            )
            await writer.add_message_to_conversation("11", chat("the lighthouse keeper", "5"))
            await writer.remove_conversation("11")
            hits = await service.search("1", "lighthouse keeper")
            assert [h.thread_id for h in hits] == ["11"]

            await writer.store.save_memory(
                MemoryRecord(
                    thread_id="11",
                    guild_id="1",
                    requester="33",
                    memory_data=MemoryData(
                        summary="Alice keeps the lighthouse",
                        facts=[Fact(text="Alice's favourite colour is vermilion")],
                    ),
                    source_updated_at=T0,
                )
            )
            hits = await service.search("1", "vermilion")
            assert [h.thread_id for h in hits] == ["11"]
            assert hits[0].summary == "Alice keeps the lighthouse"
            assert await service.search("12", "vermilion") == []  # never another guild

            await writer.delete_conversation("11")
            await writer.store.delete_memory("1", "11")
            assert await service.search("1", "vermilion") == []
            # Deleted in another process: not a byte of it stays in this one's index either.
            files = list((tmp_path / "reader-index").iterdir())
            assert files
            for path in files:
                data = path.read_bytes().lower()
                assert b"vermilion" not in data and b"lighthouse" not in data, path
        finally:
            await service.close()
            await asyncio.to_thread(service.index.close)


async def test_a_restarted_process_catches_up_with_what_changed_while_it_was_down(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    index_dir = tmp_path / "index"
    async with InMemoryConversationManager(
        store=RedisStore(redis_url, prefix=redis_prefix)
    ) as manager:
        service = await open_service(index_dir, manager)
        await manager.create_conversation(
            thread_id="11", guild_id="1", requester="33", channel_id="44"
        )
        await manager.add_message_to_conversation("11", chat("about the harbour", "5"))
        await manager.save_conversation("11")
        assert await service.refresh("1") == 1
        await service.close()
        await asyncio.to_thread(service.index.close)

        # While "down": another process saves a new conversation.
        async with RedisStore(redis_url, prefix=redis_prefix) as other:
            conversation = await manager.get_or_resume("11")
            assert conversation is not None
            newer = conversation.model_copy(update={"thread_id": "12", "history": []})
            newer.restore_history([chat("the old mill by the river", "6")])
            await other.put(newer)

        service = await open_service(index_dir, manager)
        try:
            await service.catch_up()
            assert await service.refresh("1") == 0  # caught up: nothing left to do
            hits = await asyncio.to_thread(service.index.search, "1", "mill river")
            assert [h.thread_id for h in hits] == ["12"]
        finally:
            await service.close()
            await asyncio.to_thread(service.index.close)
