"""``python -m bot worker`` as operators run it: real processes, a real Redis, a real model API.

The model is the loopback fake OpenAI server, reached through the real ``openai`` SDK; one of
its replies is slow, so that a worker can be killed while it waits for it, mid-batch.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.exceptions import ResponseError

from memory import InMemoryConversationManager, Message, MessageType, RedisStore
from memory.longterm import ExtractiveDistiller, MemoryService
from memory.stores.redis.queue import RedisMemoryQueue
from tests.fake_llm.server.core import FakeLLM

from .helpers import cli_env, run_cli

# The workers run on one Redis server and on a Redis Cluster.
pytestmark = pytest.mark.redis_backends

GUILD = "1310000000000000022"
THREADS = [f"13100000000000001{n:02d}" for n in range(1, 5)]
LONG_AGO = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MEMORY_JSON = json.dumps(
    {
        "summary": "Mia said when the ferry leaves.",
        "topics": ["ferry"],
        "facts": [{"text": "The ferry leaves at noon.", "about": None, "source_message_ids": []}],
        "decisions": [],
        "action_items": [],
        "open_questions": [],
    }
)


@asynccontextmanager
async def redis_service(url: str, prefix: str, cluster: bool) -> AsyncIterator[MemoryService]:
    """The bot's side: the store the conversations are in, and the trigger that queues them."""
    store = RedisStore(url, prefix=prefix, cluster=cluster)
    async with InMemoryConversationManager(store=store) as manager:
        service = MemoryService(manager, ExtractiveDistiller(), inactivity=0)
        service.queue = RedisMemoryQueue.for_store(manager.store, consumer="test-bot")
        yield service


async def old_conversations(manager: InMemoryConversationManager) -> None:
    for thread in THREADS:
        await manager.create_conversation(
            thread_id=thread, guild_id=GUILD, requester="33", channel_id="44", created_at=LONG_AGO
        )
        await manager.add_message_to_conversation(
            thread,
            Message(
                message_type=MessageType.CHAT,
                message_content=f"Conversation {thread}: the ferry leaves at noon on Saturday.",
                requester="33",
                message_id=f"{thread}1",
                created_at=LONG_AGO,
                meta={"author_name": "Mia"},
            ),
        )
        await manager.remove_conversation(thread)


def worker_env(
    tmp_path: Path, name: str, url: str, prefix: str, cluster: bool, **more: str
) -> dict[str, str]:
    return cli_env(
        tmp_path,
        ECHO_STORE="redis",
        REDIS_URL=url,
        ECHO_REDIS_PREFIX=prefix,
        ECHO_REDIS_CLUSTER="true" if cluster else "false",
        ECHO_DATA_DIR=str(tmp_path / name),  # each worker its own spool and index
        **more,
    )


async def start_worker(
    tmp_path: Path, name: str, env: dict[str, str], *args: str
) -> tuple[asyncio.subprocess.Process, Path]:
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "worker",
            *args,
            env=env,
            cwd=tmp_path,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    return process, log


def thread_of(request_body: dict[str, object]) -> str:
    """Which conversation a memory request was about, from the transcript it carried."""
    transcript = str(request_body["messages"][-1]["content"])  # type: ignore[index]
    found = re.search(r"Conversation (\d+):", transcript)
    assert found, transcript
    return found.group(1)


async def test_a_worker_killed_mid_batch_loses_nothing_and_repeats_nothing(
    tmp_path: Path, fake_llm: FakeLLM, redis_url: str, redis_prefix: str, redis_cluster: bool
) -> None:
    fake_llm.queue_text(MEMORY_JSON)
    fake_llm.queue_text(MEMORY_JSON, delay=60)  # the first worker dies waiting for this one
    for _ in THREADS[1:]:
        fake_llm.queue_text(MEMORY_JSON)
    model = {"LLM_BASE_URL": fake_llm.base_url, "LLM_MODEL": "fake-model", "LLM_API_KEY": "k"}
    async with redis_service(redis_url, redis_prefix, redis_cluster) as bot:
        await old_conversations(bot.manager)
        batch = await bot.enqueue()
        assert [t for _, t in batch.conversations] == THREADS

        first, first_log = await start_worker(
            tmp_path,
            "first",
            worker_env(tmp_path, "first", redis_url, redis_prefix, redis_cluster, **model),
        )
        try:
            # The first memory is made, and the second conversation is with the model.
            await fake_llm.wait_for_requests(2, timeout=60)
            assert len(await bot.store.list_memories(GUILD)) == 1
        finally:
            first.send_signal(signal.SIGKILL)
            assert await asyncio.wait_for(first.wait(), 30) == -signal.SIGKILL
        [left] = await bot.queue.pending()  # the batch is still out, with the dead worker
        assert left["consumer"] != "test-bot"

        second, second_log = await start_worker(
            tmp_path,
            "second",
            worker_env(tmp_path, "second", redis_url, redis_prefix, redis_cluster, **model),
            "--claim-after",
            "1",
        )
        try:
            report = await asyncio.wait_for(bot.queue.wait_for(batch), 60)
        finally:
            second.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(second.wait(), 30)
        second_text = second_log.read_text()
        assert code == 0, second_text
        assert (report.eligible, report.generated, report.skipped, report.failed) == (4, 3, 1, 0)

        # Every conversation has exactly one memory, made once: never made again on top.
        records = await bot.store.list_memories(GUILD)
        assert sorted(r.thread_id for r in records) == THREADS
        for record in records:
            assert record.created_at == record.updated_at, record.thread_id
            assert record.generator == "fake-model"
            assert "ferry leaves at noon" in record.memory_data.facts[0].text
        # The model was asked once per conversation, plus the question the dead worker
        # never got an answer to, which the second worker asked again.
        asked = Counter(thread_of(r.body or {}) for r in fake_llm.chat_requests)
        assert asked == {THREADS[0]: 1, THREADS[1]: 2, THREADS[2]: 1, THREADS[3]: 1}
        assert await bot.queue.pending() == [] and await bot.queue.backlog() == 0

    assert f"memory batch {batch.batch_id}: taken over from a worker silent" in second_text
    assert f"memory batch {batch.batch_id}: 4 eligible, 3 generated, 1 skipped" in second_text
    assert "Traceback" not in second_text and "Traceback" not in first_log.read_text()


async def test_the_cli_queues_for_workers_and_once_processes_what_is_queued(
    tmp_path: Path, redis_url: str, redis_prefix: str, redis_cluster: bool
) -> None:
    async with redis_service(redis_url, redis_prefix, redis_cluster) as bot:
        await old_conversations(bot.manager)
        env = worker_env(tmp_path, "cron", redis_url, redis_prefix, redis_cluster)
        queued = await run_cli("memories", "generate", "--enqueue", cwd=tmp_path, env=env)
        assert queued.code == 0, queued
        found = re.fullmatch(
            r"4 conversation\(s\) queued for the memory workers \(batch (\S+)\)\n", queued.stdout
        )
        assert found, queued.stdout
        assert await bot.store.list_memories(GUILD) == []  # queued, not made
        started = time.monotonic()
        done = await run_cli("worker", "--once", cwd=tmp_path, env=env, timeout=60)
        assert done.code == 0, done
        assert time.monotonic() - started < 30  # it did not wait for more work
        assert f"memory batch {found.group(1)}: 4 eligible, 4 generated, 0 failed" in done.stderr
        assert "1 batch(es) done, none waiting" in done.stderr
        assert len(await bot.store.list_memories(GUILD)) == 4

        # With a worker running, --wait shows the counts of the batch the worker did.
        worker, log = await start_worker(tmp_path, "daemon", env)
        try:
            waited = await run_cli("memories", "generate", "--wait", cwd=tmp_path, env=env)
        finally:
            worker.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(worker.wait(), 30) == 0, log.read_text()
        assert waited.code == 0, waited
        assert waited.stdout.splitlines()[-1] == "0 eligible, 0 generated, 0 failed"
        assert "memory batch" in log.read_text()

        # Nothing left: an empty queue is a quiet exit.
        again = await run_cli("worker", "--once", cwd=tmp_path, env=env, timeout=60)
        assert again.code == 0 and "0 batch(es) done" in again.stderr


async def test_sigterm_stops_an_idle_worker_and_it_leaves_the_group(
    tmp_path: Path, redis_url: str, redis_prefix: str, redis_cluster: bool
) -> None:
    async with redis_service(redis_url, redis_prefix, redis_cluster) as bot:
        queue = bot.queue
        assert isinstance(queue, RedisMemoryQueue)
        nothing = await bot.enqueue()  # an empty batch: its report says the worker is up
        worker, log = await start_worker(
            tmp_path, "idle", worker_env(tmp_path, "idle", redis_url, redis_prefix, redis_cluster)
        )
        try:
            report = await asyncio.wait_for(queue.wait_for(nothing), 60)
            assert report.eligible == 0
            assert len(await _consumers(queue)) == 1
        finally:
            worker.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(worker.wait(), 30)
        assert code == 0, log.read_text()
        assert await _consumers(queue) == []  # nothing pending: it left the group
        assert "signal received: stopping" in log.read_text()


async def test_sigterm_mid_batch_hands_the_batch_back_at_once(
    tmp_path: Path, fake_llm: FakeLLM, redis_url: str, redis_prefix: str, redis_cluster: bool
) -> None:
    fake_llm.queue_text(MEMORY_JSON)
    fake_llm.queue_text(MEMORY_JSON, delay=60)
    model = {"LLM_BASE_URL": fake_llm.base_url, "LLM_MODEL": "fake-model", "LLM_API_KEY": "k"}
    async with redis_service(redis_url, redis_prefix, redis_cluster) as bot:
        await old_conversations(bot.manager)
        batch = await bot.enqueue()
        worker, log = await start_worker(
            tmp_path,
            "stopping",
            worker_env(tmp_path, "stopping", redis_url, redis_prefix, redis_cluster, **model),
        )
        try:
            await fake_llm.wait_for_requests(2, timeout=60)  # mid-batch, waiting on the model
        finally:
            worker.send_signal(signal.SIGTERM)
            started = time.monotonic()
            code = await asyncio.wait_for(worker.wait(), 30)
        assert code == 0, log.read_text()
        assert time.monotonic() - started < 20  # it did not wait out the slow answer
        assert f"memory batch {batch.batch_id}: handed back to the queue" in log.read_text()
        # This queue waits a minute for a silent worker, yet gets the batch now.
        taken = await bot.queue.poll(0)
        assert taken == batch
        report = await bot.handle(taken)
        assert report is not None and (report.generated, report.skipped) == (3, 1)


async def test_the_worker_refuses_json_files(tmp_path: Path) -> None:
    env = cli_env(tmp_path)  # ECHO_STORE unset: JSON files
    refused = await run_cli("worker", cwd=tmp_path, env=env)
    assert refused.code == 2
    assert refused.error_line == (
        "echo: the worker needs ECHO_STORE=redis; with JSON files the bot generates memories itself"
    )
    bad = await run_cli("worker", "--claim-after", "0", cwd=tmp_path, env=env)
    assert bad.code == 2 and bad.error_line == "echo: --claim-after must be more than 0 seconds"
    queue_only = await run_cli("memories", "generate", "--enqueue", cwd=tmp_path, env=env)
    assert queue_only.code == 2
    assert queue_only.error_line.startswith("echo: --enqueue and --wait need ECHO_STORE=redis")


async def _consumers(queue: RedisMemoryQueue) -> list[str]:
    """The workers in the group (the test's own trigger is not one)."""
    try:
        found = await queue.redis.xinfo_consumers(queue.stream, queue.group)
    except ResponseError:  # no stream or group yet
        return []
    return [c["name"].decode() for c in found if c["name"].decode() != "test-bot"]
