"""A conversation Redis cannot give back during an outage: started from what the process
holds, recorded to the spool, merged into the stored one when Redis is back, and read whole
again from then on."""
# ruff: noqa: E402 - the redis check runs before the imports that need the extra

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.redis_support import require_redis_package

require_redis_package()

from memory import InMemoryConversationManager, RedisStore, StoreError
from tests.redis_support import PrivateRedis

from .test_store_contract import chat


async def _until_caught_up(store: RedisStore) -> None:
    deadline = time.monotonic() + 20
    while not store.caught_up:
        assert time.monotonic() < deadline, "the spool was never flushed"
        await asyncio.sleep(0.05)


async def test_an_unreadable_conversation_goes_on_here_and_is_read_whole_once_redis_is_back(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    store = RedisStore(private_redis.url, spool_dir=tmp_path / "spool")
    async with InMemoryConversationManager(store=store, idle_time=60) as manager:
        await manager.create_conversation(
            thread_id="11", guild_id="22", requester="33", channel_id="44"
        )
        for n in range(3):
            await manager.add_message_to_conversation("11", chat(f"before {n}", str(100 + n)))
        await manager.remove_conversation("11")  # idle: evicted
        private_redis.stop()

        with pytest.raises(StoreError):
            await manager.get_or_resume("11")
        here = await manager.create_conversation(
            thread_id="11", guild_id="22", requester="55", channel_id="44"
        )
        assert here.history == []
        await manager.add_message_to_conversation("11", chat("during", "200"))
        held = await manager.get_or_resume("11")
        assert held is not None and [m.message_content for m in held.history] == ["during"]

        private_redis.start()
        await _until_caught_up(store)
        whole = await manager.get_or_resume("11")
        assert whole is not None
        assert [m.message_content for m in whole.history] == [
            "before 0",
            "before 1",
            "before 2",
            "during",
        ]
        assert whole.requester == "33"  # the stored header, not the stand-in's
        await manager.add_message_to_conversation("11", chat("after", "300"))

    async with RedisStore(private_redis.url) as fresh:
        stored = await fresh.load("11")
    assert stored is not None
    assert [m.message_content for m in stored.history] == [
        "before 0",
        "before 1",
        "before 2",
        "during",
        "after",
    ]
    assert stored.requester == "33"


async def test_without_a_spool_an_unreadable_conversation_is_an_error(
    private_redis: PrivateRedis,
) -> None:
    """A process that cannot record while Redis is away (the CLI) must not pretend to."""
    async with RedisStore(private_redis.url) as store:
        manager = InMemoryConversationManager(store=store, idle_time=60)
        async with manager:
            await manager.create_conversation(
                thread_id="11", guild_id="22", requester="33", channel_id="44"
            )
            await manager.remove_conversation("11")
            private_redis.stop()
            with pytest.raises(StoreError):
                await manager.create_conversation(
                    thread_id="11", guild_id="22", requester="33", channel_id="44"
                )
