"""RedisStore shared by processes: two processes appending to one conversation, and a process
killed during an outage flushing its spool at its next start."""
# ruff: noqa: E402 - the redis check runs before the imports that need the extra

from __future__ import annotations

import asyncio
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


from memory import RedisStore
from memory.records.mutations import Create
from tests.redis_support import PrivateRedis

from .test_store_contract import conversation

ROOT = Path(__file__).resolve().parents[2]

# The tests on the shared server run on a Redis Cluster too (the outages use a private server).
pytestmark = pytest.mark.redis_backends


_APPENDER = textwrap.dedent(
    """
    import asyncio, sys, time
    from memory import InMemoryConversationManager, Message, RedisStore

    url, prefix, name = sys.argv[1], sys.argv[2], sys.argv[3]
    count, start = int(sys.argv[4]), float(sys.argv[5])

    async def main():
        async with InMemoryConversationManager(
            store=RedisStore(url, prefix=prefix, cluster=sys.argv[8] == "1"), idle_time=60
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
    redis_url: str, redis_prefix: str, redis_cluster: bool
) -> None:
    async with RedisStore(redis_url, prefix=redis_prefix, cluster=redis_cluster) as store:
        await store.record(Create(conversation("11")))
    count = 300
    start = time.time() + 1.5  # both processes import first, then start together
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        await asyncio.to_thread(
            subprocess.Popen,
            [sys.executable, "-c", _APPENDER, redis_url, redis_prefix, name, str(count),
             str(start), requester, prefix, "1" if redis_cluster else ""],
            env=env,
        )
        for name, requester, prefix in [("a", "33", "1"), ("b", "34", "2")]
    ]  # fmt: skip
    for process in processes:
        assert await asyncio.to_thread(process.wait, 60) == 0

    async with RedisStore(redis_url, prefix=redis_prefix, cluster=redis_cluster) as store:
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
