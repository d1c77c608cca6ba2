"""RedisStore through outages: the spool and its flush (in order, once), waiting for Redis at
opening, idle eviction, a Redis that comes back empty or refuses writes, a damaged spool."""
# ruff: noqa: E402 - the redis check runs before the imports that need the extra

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import pytest

from tests.redis_support import require_redis_package

require_redis_package()

import redis as redis_sync

from memory import InMemoryConversationManager, RedisStore, StoreError
from memory.records.mutations import Append, Create, encode
from tests.redis_support import PrivateRedis, free_port

from .test_redis_store import memory
from .test_store_contract import T0, chat, conversation

# The tests on the shared server run on a Redis Cluster too (the outages use a private server).
pytestmark = pytest.mark.redis_backends


async def test_outage_spools_and_flushes_in_order_exactly_once(
    private_redis: PrivateRedis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="memory.stores.redis")
    store = RedisStore(private_redis.url, prefix="echo", spool_dir=tmp_path / "spool")
    async with InMemoryConversationManager(store=store, idle_time=60) as manager:
        await manager.create_conversation(
            thread_id="11", guild_id="22", requester="33", channel_id="44"
        )
        for n in range(10):
            await manager.add_message_to_conversation("11", chat(f"m{n}", str(1000 + n)))
        private_redis.stop()
        for n in range(10, 30):  # the bot keeps recording: no error reaches the caller
            await manager.add_message_to_conversation("11", chat(f"m{n}", str(1000 + n)))
        await manager.edit_message("11", "1005", "m5 edited")
        assert not store.online
        private_redis.start()
        for n in range(30, 40):
            await manager.add_message_to_conversation("11", chat(f"m{n}", str(1000 + n)))
        deadline = time.monotonic() + 20
        while not store.online:
            assert time.monotonic() < deadline, "the spool was never flushed"
            await asyncio.sleep(0.05)

    async with RedisStore(private_redis.url, prefix="echo") as fresh:
        loaded = await fresh.load("11")
    assert loaded is not None
    expected = [f"m{n}" for n in range(40)]
    expected[5] = "m5 edited"
    assert [m.message_content for m in loaded.history] == expected
    away = [r for r in caplog.records if "unreachable" in r.getMessage()]
    back = [r for r in caplog.records if "is back:" in r.getMessage()]
    assert len(away) == 1, [r.getMessage() for r in away]
    assert len(back) == 1, [r.getMessage() for r in back]


async def test_a_spooled_mutation_applied_twice_counts_once(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    """A write whose answer was lost is spooled too: its sequence number makes the flush
    skip it if Redis had it after all."""
    async with RedisStore(private_redis.url, spool_dir=tmp_path / "spool") as store:
        await store.record(Create(conversation("11")))
        seq = store._next_seq()
        record = {
            "seq": seq,
            "spool": store._spool_id,
            "guild": "22",
            "mutation": {"op": "append", "thread_id": "11", "message": chat("once").to_dict()},
        }
        record["mutation"]["message"]["created_at"] = T0.isoformat()
        await store._apply_spooled(record)
        await store._apply_spooled(record)
        loaded = await store.load("11")
    assert loaded is not None and [m.message_content for m in loaded.history] == ["once"]


async def test_opening_waits_for_redis_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = PrivateRedis(tmp_path / "late-redis", persist=True)
    caplog.set_level(logging.INFO, logger="memory.stores.redis")
    store = RedisStore(server.url, spool_dir=tmp_path / "spool")
    opening = asyncio.create_task(store.open())
    await asyncio.sleep(1.2)
    assert not opening.done()
    await asyncio.to_thread(server.start)
    try:
        await asyncio.wait_for(opening, 15)
        await store.close()
    finally:
        server.stop()
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert retries and server.url in retries[0].getMessage()
    assert any("answers" in r.getMessage() for r in caplog.records)


async def test_a_reader_gives_up_with_one_clear_error() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"Redis at redis://127\.0\.0\.1:\d+/0 is unreachable"):
        async with RedisStore(url, wait_for_redis=0.5):
            pass
    assert time.monotonic() - started < 5


async def test_a_spool_folder_serves_one_process(
    redis_url: str, redis_cluster: bool, tmp_path: Path
) -> None:
    async with RedisStore(redis_url, spool_dir=tmp_path / "spool", cluster=redis_cluster):
        with pytest.raises(StoreError, match="in use by another Echo process"):
            async with RedisStore(redis_url, spool_dir=tmp_path / "spool", cluster=redis_cluster):
                pass


async def test_idle_eviction_during_an_outage_keeps_the_conversation_resumable(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    store = RedisStore(private_redis.url, spool_dir=tmp_path / "spool")
    async with InMemoryConversationManager(store=store, idle_time=60) as manager:
        await manager.create_conversation(
            thread_id="11", guild_id="22", requester="33", channel_id="44"
        )
        private_redis.stop()
        await manager.add_message_to_conversation("11", chat("while away", "1"))
        await manager.remove_conversation("11")  # what an idle eviction does
        assert await manager.add_message_to_conversation("11", chat("resumed", "2"))
        private_redis.start()
        deadline = time.monotonic() + 20
        while not store.online:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    async with RedisStore(private_redis.url) as fresh:
        loaded = await fresh.load("11")
    assert loaded is not None
    assert [m.message_content for m in loaded.history] == ["while away", "resumed"]


@pytest.mark.parametrize("noticed", [True, False], ids=["during-outage", "between-records"])
async def test_a_redis_that_comes_back_empty_gets_the_active_conversations_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, noticed: bool
) -> None:
    """Redis without persistence loses everything on a restart: what the bot holds in memory
    is written back, nothing recorded is lost or doubled, and the operator is told why."""
    caplog.set_level(logging.INFO, logger="memory.stores.redis")
    server = PrivateRedis(tmp_path / "volatile-redis", persist=False)
    server.start()
    try:
        store = RedisStore(server.url, spool_dir=tmp_path / "spool")
        async with InMemoryConversationManager(store=store, idle_time=60) as manager:
            await manager.create_conversation(
                thread_id="11", guild_id="22", requester="33", channel_id="44"
            )
            for n in range(5):
                await manager.add_message_to_conversation("11", chat(f"m{n}"))
            server.stop()
            if noticed:  # recorded while Redis is down: spooled
                for n in range(5, 10):
                    await manager.add_message_to_conversation("11", chat(f"m{n}"))
            server.start()
            if not noticed:  # the restart went unseen: the next write finds nothing
                for n in range(5, 10):
                    await manager.add_message_to_conversation("11", chat(f"m{n}"))
            deadline = time.monotonic() + 20
            while not store.online:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            await manager.add_message_to_conversation("11", chat("after"))
        async with RedisStore(server.url) as fresh:
            loaded = await fresh.load("11")
    finally:
        server.stop()
    assert loaded is not None
    assert [m.message_content for m in loaded.history] == [f"m{n}" for n in range(10)] + ["after"]
    lost = [r for r in caplog.records if "came back without Echo's data" in r.getMessage()]
    assert len(lost) == 1 and lost[0].levelno == logging.ERROR


async def test_a_redis_refusing_writes_is_a_store_error_naming_why(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    async with RedisStore(private_redis.url, spool_dir=tmp_path / "spool") as store:
        await store.record(Create(conversation("11")))
        client = redis_sync.Redis.from_url(private_redis.url)
        try:
            client.config_set("min-replicas-to-write", 1)  # this server has no replica
            with pytest.raises(StoreError, match=r"refused: .*NOREPLICAS"):
                await store.record(Append("11", chat("refused")))
            with pytest.raises(StoreError, match=r"refused: .*NOREPLICAS"):
                await store.save_memory(memory("11", "22"))
            client.config_set("min-replicas-to-write", 0)
        finally:
            client.close()
        await store.record(Append("11", chat("accepted")))
        loaded = await store.load("11")
    assert loaded is not None and [m.message_content for m in loaded.history] == ["accepted"]


async def test_a_damaged_spool_flushes_what_it_can_and_keeps_the_rest(
    redis_url: str,
    redis_prefix: str,
    redis_cluster: bool,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The spool is a journal: an unreadable line keeps its segment aside (``.corrupt``), a
    line that is JSON but no spooled mutation is kept in the orphaned file, and neither stops
    the start nor the flush of the mutations around them."""
    spool = tmp_path / "spool"
    (spool / "journal").mkdir(parents=True)

    def spooled(seq: int, mutation: Create | Append) -> bytes:
        record = {"seq": f"{seq:020d}", "spool": "abc123", "guild": "22"}
        return json.dumps({**record, "mutation": json.loads(encode(mutation))}).encode() + b"\n"

    lines = [
        spooled(1, Create(conversation("11"))),
        spooled(2, Append("11", chat("before", "911"))),
        b"\x1b\xff not a record\n",
        b'{"seq": "00000000000000000003"}\n',
        b'{"seq": 4, "mutation": [1]}\n',
        spooled(5, Append("11", chat("after", "912"))),
    ]
    segment = spool / "journal" / f"{1:020d}.log"
    segment.write_bytes(b"".join(lines))
    caplog.set_level(logging.INFO, logger="memory")
    async with RedisStore(
        redis_url, prefix=redis_prefix, spool_dir=spool, cluster=redis_cluster
    ) as store:
        loaded = await store.load("11")
    assert loaded is not None and [m.message_content for m in loaded.history] == [
        "before",
        "after",
    ]
    assert (spool / "journal" / f"{segment.name}.corrupt").read_bytes() == b"".join(lines)
    assert f"1 unreadable record(s) kept in {segment.name}.corrupt" in caplog.text
    [orphaned] = spool.glob("orphaned-*.jsonl")
    kept = [json.loads(line) for line in orphaned.read_text().splitlines()]
    assert kept == [{"seq": "00000000000000000003"}, {"seq": 4, "mutation": [1]}]
    assert "2 spooled mutation(s) could not be applied" in caplog.text
