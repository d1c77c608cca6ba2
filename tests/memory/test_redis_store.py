"""RedisStore beyond the shared contract: the key layout, messages as plain JSON in Redis,
many writers at once."""
# ruff: noqa: E402 - the redis check runs before the imports that need the extra

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.redis_support import require_redis_package

require_redis_package()

from redis.crc import key_slot

from memory import InMemoryConversationManager, Message, RedisStore
from memory.records.memories import MemoryData, MemoryRecord
from memory.records.mutations import Append, Create
from tests.redis_support import sync_client

from .test_store_contract import T0, chat, conversation

# The tests on the shared server run on a Redis Cluster too (the outages use a private server).
pytestmark = pytest.mark.redis_backends


def memory(thread_id: str, guild_id: str) -> MemoryRecord:
    return MemoryRecord(
        thread_id=thread_id,
        guild_id=guild_id,
        requester="33",
        memory_data=MemoryData(summary=f"memory of {thread_id}"),
        source_updated_at=T0,
    )


async def test_every_guild_key_carries_its_hash_tag_and_listings_never_cross(
    redis_url: str, redis_prefix: str, redis_cluster: bool
) -> None:
    async with RedisStore(redis_url, prefix=redis_prefix, cluster=redis_cluster) as store:
        for thread, guild in [("11", "1"), ("12", "1"), ("21", "12"), ("31", "123")]:
            await store.record(Create(conversation(thread, guild_id=guild)))
            await store.record(Append(thread, chat(f"in {guild}", f"9{thread}")))
            await store.save_memory(memory(thread, guild))
        assert [r.thread_id for r in await store.list_conversations("1")] == ["12", "11"]
        assert [r.thread_id for r in await store.list_conversations("12")] == ["21"]
        assert {i.thread_id for i in await store.conversation_infos("1")} == {"11", "12"}
        assert [m.thread_id for m in await store.list_memories("12")] == ["21"]
        assert await store.list_guilds() == ["1", "12", "123"]

    client = sync_client(redis_url, cluster=redis_cluster)
    try:
        keys = sorted(k.decode() for k in client.scan_iter(match=f"{redis_prefix}:*"))
    finally:
        client.close()
    shared = {f"{redis_prefix}:threads", f"{redis_prefix}:guilds", f"{redis_prefix}:epoch"}
    by_guild: dict[str, list[str]] = {}
    for key in keys:
        if key in shared:
            continue
        tag = key.removeprefix(f"{redis_prefix}:")
        assert tag.startswith("{") and "}:" in tag, key
        by_guild.setdefault(tag[1 : tag.index("}")], []).append(key)
    assert set(by_guild) == {"1", "12", "123"}
    for guild, guild_keys in by_guild.items():
        # One Redis Cluster slot per guild: every mutation can be one transaction.
        assert len({key_slot(k.encode()) for k in guild_keys}) == 1, guild
        assert all(f"conv:{t}" not in "".join(guild_keys) for t in ("21", "31")) or guild != "1"


def test_messages_are_plain_json_in_redis(
    redis_url: str, redis_prefix: str, redis_cluster: bool
) -> None:
    async def record() -> None:
        async with RedisStore(redis_url, prefix=redis_prefix, cluster=redis_cluster) as store:
            await store.record(Create(conversation("11")))
            await store.record(Append("11", chat("hello", "5")))

    asyncio.run(record())
    client = sync_client(redis_url, cluster=redis_cluster)
    try:
        raw = client.lrange(f"{redis_prefix}:{{22}}:conv:11:log", 0, -1)
        header = client.hgetall(f"{redis_prefix}:{{22}}:conv:11")
    finally:
        client.close()
    assert [Message.from_json(r).message_content for r in raw] == ["hello"]
    assert header[b"requester"] == b'"33"'


async def test_hundreds_of_concurrent_appends_wait_for_a_connection_not_the_spool(
    redis_url: str, redis_prefix: str, redis_cluster: bool, tmp_path: Path
) -> None:
    store = RedisStore(
        redis_url, prefix=redis_prefix, spool_dir=tmp_path / "spool", cluster=redis_cluster
    )
    async with InMemoryConversationManager(store=store, idle_time=60) as manager:
        threads = [str(1000 + n) for n in range(300)]
        for thread in threads:
            await manager.create_conversation(
                thread_id=thread, guild_id="22", requester="33", channel_id="44"
            )
        await asyncio.gather(
            *(manager.add_message_to_conversation(t, chat(f"hello {t}")) for t in threads)
        )
        assert store.online  # more writers than connections is not an outage
    async with RedisStore(redis_url, prefix=redis_prefix, cluster=redis_cluster) as fresh:
        for thread in threads[::37]:
            loaded = await fresh.load(thread)
            assert loaded is not None
            assert [m.message_content for m in loaded.history] == [f"hello {thread}"]


async def test_messages_recorded_by_many_tasks_at_once_stay_in_arrival_order(
    redis_url: str, redis_prefix: str, redis_cluster: bool
) -> None:
    # discord.py runs each on_message in a task of its own: a burst in one thread is many
    # concurrent appends, and Redis must keep them in the order they arrived.
    async with InMemoryConversationManager(
        store=RedisStore(redis_url, prefix=redis_prefix, cluster=redis_cluster)
    ) as manager:
        await manager.create_conversation(
            thread_id="71", guild_id="22", requester="33", channel_id="44"
        )
        others = [str(80 + i) for i in range(5)]
        for thread in others:
            await manager.create_conversation(
                thread_id=thread, guild_id="22", requester="33", channel_id="44"
            )
        tasks = []
        for i in range(200):
            tasks.append(
                asyncio.create_task(
                    manager.add_message_to_conversation("71", chat(f"burst {i}", str(10_000 + i)))
                )
            )
            # Other conversations record at the same time, in the same batches.
            tasks.append(
                asyncio.create_task(
                    manager.add_message_to_conversation(
                        others[i % 5], chat(f"other {i}", str(20_000 + i))
                    )
                )
            )
        assert all(await asyncio.gather(*tasks))
    async with RedisStore(redis_url, prefix=redis_prefix, cluster=redis_cluster) as store:
        loaded = await store.load("71")
        assert loaded is not None
        assert [m.message_content for m in loaded.history] == [f"burst {i}" for i in range(200)]
