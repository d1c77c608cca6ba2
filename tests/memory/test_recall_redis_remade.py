"""Recall on Redis: an index file made anew (new settings, a new schema) is filled again."""
# ruff: noqa: E402 - the redis check runs before the imports that need the extra

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.redis_support import require_redis_package

require_redis_package()

from memory import InMemoryConversationManager, RedisStore
from memory.recall import RecallIndex, RecallSettings

from .test_recall_redis import open_service
from .test_store_contract import chat


async def test_an_index_file_made_anew_is_filled_again_from_the_store(
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

        # Opened with another shape (as after an upgrade that changes the schema): the
        # guild's file is reset, empty; the generation kept beside it is now about nothing.
        with RecallIndex(index_dir, settings=RecallSettings(window=2, stride=1)) as other:
            assert other.count("1") == 0

        service = await open_service(index_dir, manager)
        try:
            await service.catch_up()
            hits = await service.search("1", "harbour")
            assert [h.thread_id for h in hits] == ["11"]
        finally:
            await service.close()
            await asyncio.to_thread(service.index.close)
