"""RedisStore beyond the shared contract: key layout, processes sharing it, outages."""
# ruff: noqa: E402 - the redis check runs before the imports that need the extra

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.redis_support import require_redis_package

require_redis_package()

import redis as redis_sync
from redis.crc import key_slot

from memory import InMemoryConversationManager, Message, RedisStore, StoreError
from memory.records.memories import MemoryData, MemoryRecord
from memory.records.mutations import Append, Create, encode
from tests.redis_support import PrivateRedis, free_port

from .test_store_contract import T0, chat, conversation

ROOT = Path(__file__).resolve().parents[2]


def memory(thread_id: str, guild_id: str) -> MemoryRecord:
    return MemoryRecord(
        thread_id=thread_id,
        guild_id=guild_id,
        requester="33",
        memory_data=MemoryData(summary=f"memory of {thread_id}"),
        source_updated_at=T0,
    )


async def test_every_guild_key_carries_its_hash_tag_and_listings_never_cross(
    redis_url: str, redis_prefix: str
) -> None:
    async with RedisStore(redis_url, prefix=redis_prefix) as store:
        for thread, guild in [("11", "1"), ("12", "1"), ("21", "12"), ("31", "123")]:
            await store.record(Create(conversation(thread, guild_id=guild)))
            await store.record(Append(thread, chat(f"in {guild}", f"9{thread}")))
            await store.save_memory(memory(thread, guild))
        assert [r.thread_id for r in await store.list_conversations("1")] == ["12", "11"]
        assert [r.thread_id for r in await store.list_conversations("12")] == ["21"]
        assert {i.thread_id for i in await store.conversation_infos("1")} == {"11", "12"}
        assert [m.thread_id for m in await store.list_memories("12")] == ["21"]
        assert await store.list_guilds() == ["1", "12", "123"]

    client = redis_sync.Redis.from_url(redis_url)
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


_APPENDER = textwrap.dedent(
    """
    import asyncio, sys, time
    from memory import InMemoryConversationManager, Message, RedisStore

    url, prefix, name = sys.argv[1], sys.argv[2], sys.argv[3]
    count, start = int(sys.argv[4]), float(sys.argv[5])

    async def main():
        async with InMemoryConversationManager(
            store=RedisStore(url, prefix=prefix), idle_time=60
        ) as manager:
            await asyncio.sleep(max(0.0, start - time.time()))
            for n in range(count):
                text = f"{name}-{n}"
                await manager.add_message_to_conversation(
                    "11",
                    Message(message_type="chat", message_content=text, requester=sys.argv[6],
                            message_id=sys.argv[7] + str(n).zfill(6)),
                )
                if name == "a" and n % 10 == 9:  # edits race the other process's appends
                    await manager.edit_message("11", sys.argv[7] + str(n).zfill(6), text + "!")

    asyncio.run(main())
    """
)


async def test_two_processes_appending_to_one_conversation_lose_nothing(
    redis_url: str, redis_prefix: str
) -> None:
    async with RedisStore(redis_url, prefix=redis_prefix) as store:
        await store.record(Create(conversation("11")))
    count = 300
    start = time.time() + 1.5  # both processes import first, then start together
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        await asyncio.to_thread(
            subprocess.Popen,
            [sys.executable, "-c", _APPENDER, redis_url, redis_prefix, name, str(count),
             str(start), requester, prefix],
            env=env,
        )
        for name, requester, prefix in [("a", "33", "1"), ("b", "34", "2")]
    ]  # fmt: skip
    for process in processes:
        assert await asyncio.to_thread(process.wait, 60) == 0

    async with RedisStore(redis_url, prefix=redis_prefix) as store:
        loaded = await store.load("11")
    assert loaded is not None
    texts = [m.message_content for m in loaded.history]
    assert len(texts) == 2 * count
    a = [t for t in texts if t.startswith("a-")]
    b = [t for t in texts if t.startswith("b-")]
    assert a == [f"a-{n}" + ("!" if n % 10 == 9 else "") for n in range(count)]
    assert b == [f"b-{n}" for n in range(count)]
    # They really interleaved (otherwise this proves nothing about concurrency).
    first_b = texts.index("b-0")
    assert first_b < len(texts) - count
    assert loaded.participants == ["33", "34"]


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
            "mutation": {"op": "append", "thread_id": "11", "message": chat("once").model_dump()},
        }
        record["mutation"]["message"]["created_at"] = T0.isoformat()
        await store._apply_spooled(record)
        await store._apply_spooled(record)
        loaded = await store.load("11")
    assert loaded is not None and [m.message_content for m in loaded.history] == ["once"]


_OFFLINE_RECORDER = textwrap.dedent(
    """
    import asyncio, sys
    from memory import InMemoryConversationManager, Message, RedisStore

    async def main():
        store = RedisStore(sys.argv[1], spool_dir=sys.argv[2])
        manager = InMemoryConversationManager(store=store, idle_time=60)
        await manager.start()
        await manager.create_conversation(thread_id="11", guild_id="22", requester="33",
                                          channel_id="44")
        await manager.add_message_to_conversation(
            "11", Message(message_type="chat", message_content="before", requester="33"))
        print("stop redis", flush=True)
        sys.stdin.readline()
        for n in range(25):
            await manager.add_message_to_conversation(
                "11", Message(message_type="chat", message_content=f"m{n}", requester="33"))
        print("recorded", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


async def test_a_process_killed_during_an_outage_flushes_its_spool_at_next_start(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    process = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, "-c", _OFFLINE_RECORDER, private_redis.url, str(spool)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdin is not None
        assert await asyncio.to_thread(process.stdout.readline) == "stop redis\n"
        private_redis.stop()
        process.stdin.write("go\n")
        process.stdin.flush()
        assert await asyncio.to_thread(process.stdout.readline) == "recorded\n"
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, 10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()
    private_redis.start()
    async with RedisStore(private_redis.url, spool_dir=spool) as store:
        loaded = await store.load("11")
    assert loaded is not None
    assert [m.message_content for m in loaded.history] == ["before"] + [f"m{n}" for n in range(25)]
    async with RedisStore(private_redis.url, spool_dir=spool) as store:  # flushed only once
        again = await store.load("11")
    assert again is not None and len(again.history) == 26


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


async def test_a_spool_folder_serves_one_process(redis_url: str, tmp_path: Path) -> None:
    async with RedisStore(redis_url, spool_dir=tmp_path / "spool"):
        with pytest.raises(StoreError, match="in use by another Echo process"):
            async with RedisStore(redis_url, spool_dir=tmp_path / "spool"):
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


def test_messages_are_plain_json_in_redis(redis_url: str, redis_prefix: str) -> None:
    async def record() -> None:
        async with RedisStore(redis_url, prefix=redis_prefix) as store:
            await store.record(Create(conversation("11")))
            await store.record(Append("11", chat("hello", "5")))

    asyncio.run(record())
    client = redis_sync.Redis.from_url(redis_url)
    try:
        raw = client.lrange(f"{redis_prefix}:{{22}}:conv:11:log", 0, -1)
        header = client.hgetall(f"{redis_prefix}:{{22}}:conv:11")
    finally:
        client.close()
    assert [Message.model_validate_json(r).message_content for r in raw] == ["hello"]
    assert header[b"requester"] == b'"33"'


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


async def test_hundreds_of_concurrent_appends_wait_for_a_connection_not_the_spool(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    store = RedisStore(redis_url, prefix=redis_prefix, spool_dir=tmp_path / "spool")
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
    async with RedisStore(redis_url, prefix=redis_prefix) as fresh:
        for thread in threads[::37]:
            loaded = await fresh.load(thread)
            assert loaded is not None
            assert [m.message_content for m in loaded.history] == [f"hello {thread}"]


async def test_messages_recorded_by_many_tasks_at_once_stay_in_arrival_order(
    redis_url: str, redis_prefix: str
) -> None:
    # discord.py runs each on_message in a task of its own: a burst in one thread is many
    # concurrent appends, and Redis must keep them in the order they arrived.
    async with InMemoryConversationManager(
        store=RedisStore(redis_url, prefix=redis_prefix)
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
    async with RedisStore(redis_url, prefix=redis_prefix) as store:
        loaded = await store.load("71")
        assert loaded is not None
        assert [m.message_content for m in loaded.history] == [f"burst {i}" for i in range(200)]


async def test_a_damaged_spool_flushes_what_it_can_and_keeps_the_rest(
    redis_url: str, redis_prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
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
    async with RedisStore(redis_url, prefix=redis_prefix, spool_dir=spool) as store:
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
