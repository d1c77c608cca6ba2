"""The memory queue on a Redis Stream, with a real Redis: several workers, and stopped ones.

Each queue object below stands for one process (its own client and consumer name); the
conversations live in a real ``RedisStore``. The worker killed with SIGKILL is in
``tests/cli/test_worker.py``; here a "dead" worker is a consumer that took a batch and never
answers again, which is all Redis can see of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from memory import InMemoryConversationManager, Message, MessageType, RedisStore
from memory.longterm import (
    BatchReport,
    InProcessMemoryQueue,
    MemoryBatch,
    MemoryService,
    extractive_memory,
)
from memory.records.memories import MemoryData
from memory.records.models import Conversation
from memory.stores.redis.connection import RedisClient
from memory.stores.redis.queue import RedisMemoryQueue
from tests.redis_support import async_client

# Every test on the shared server runs on a Redis Cluster too.
pytestmark = pytest.mark.redis_backends

GUILD = "22"
LONG_AGO = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Gated:
    """A distiller that records each call and, for one conversation, waits to be let go:
    a worker visibly in the middle of a batch."""

    def __init__(self, name: str, gate_on: str | None = None) -> None:
        self.name = name
        self.gate_on = gate_on
        self.calls: list[str] = []
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def distil(self, conversation: Conversation) -> MemoryData:
        self.calls.append(conversation.thread_id)
        if conversation.thread_id == self.gate_on:
            self.entered.set()
            await self.gate.wait()
        return extractive_memory(conversation)


@contextlib.asynccontextmanager
async def client(url: str, cluster: bool) -> AsyncIterator[RedisClient]:
    redis = async_client(url, cluster=cluster)
    try:
        yield redis
    finally:
        await redis.aclose()


@contextlib.asynccontextmanager
async def manager_on(
    url: str, prefix: str, cluster: bool
) -> AsyncIterator[InMemoryConversationManager]:
    store = RedisStore(url, prefix=prefix, cluster=cluster)
    async with InMemoryConversationManager(store=store) as manager:
        yield manager


async def reader_waiting(url: str, cluster: bool, within: float = 5.0) -> None:
    """Until a connection waits in a blocking XREADGROUP (``CLIENT LIST``, on every node of a
    cluster): a consumer that waits there is handed the next entry as it is added, before any
    other consumer that asks after it."""
    async with client(url, cluster) as redis:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if cluster:
                nodes = await redis.client_list(target_nodes=redis.ALL_NODES)
                listed = [c for node in nodes.values() for c in node]
            else:
                listed = await redis.client_list()
            if any(c.get("cmd") == "xreadgroup" and "b" in c.get("flags", "") for c in listed):
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"no consumer waited in XREADGROUP within {within} s")


async def old_conversations(manager: InMemoryConversationManager, *threads: str) -> None:
    for thread in threads:
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
        await manager.remove_conversation(thread)  # saved and no longer active


def batch_of(*threads: str, batch_id: str = "b1") -> MemoryBatch:
    return MemoryBatch(batch_id, tuple((GUILD, t) for t in threads))


async def test_put_get_ack_and_wait_for_across_processes(
    redis_url: str, redis_prefix: str, redis_cluster: bool
) -> None:
    async with (
        client(redis_url, redis_cluster) as bot_side,
        client(redis_url, redis_cluster) as worker_side,
    ):
        trigger = RedisMemoryQueue(bot_side, redis_prefix, consumer="bot")
        worker = RedisMemoryQueue(worker_side, redis_prefix, consumer="worker")
        batch = batch_of("11", "12")
        await trigger.put(batch)
        waiting = asyncio.create_task(trigger.wait_for(batch))
        taken = await worker.get()
        assert taken == batch  # conversations, id and time survive the trip
        assert not waiting.done()
        assert [p["consumer"] for p in await worker.pending()] == ["worker"]
        report = BatchReport(eligible=2, generated=1, failed=1, failures=[("12", "no JSON")])
        await worker.ack(taken, report)
        assert await asyncio.wait_for(waiting, 5) == report
        # Acknowledged batches leave the stream; the report stays for late askers.
        assert await worker.pending() == [] and await trigger.backlog() == 0
        assert await RedisMemoryQueue(bot_side, redis_prefix).wait_for(batch) == report
        assert await worker.poll(0) is None


async def test_a_worker_stopped_while_acknowledging_finishes_the_acknowledgement(
    redis_url: str, redis_prefix: str, redis_cluster: bool
) -> None:
    async with client(redis_url, redis_cluster) as redis:
        queue = RedisMemoryQueue(redis, redis_prefix, consumer="worker")
        batch = batch_of("11")
        await queue.put(batch)
        taken = await queue.get()
        report = BatchReport(eligible=1, generated=1)
        acking = asyncio.create_task(queue.ack(taken, report))
        await asyncio.sleep(0)  # the report is on its way
        acking.cancel()  # SIGTERM: the worker's task is cancelled
        with pytest.raises(asyncio.CancelledError):
            await acking
        # Stopped, but not half-way: the report is out and the batch is off the queue, so no
        # worker takes it over to do it again.
        assert await queue.pending() == [] and await queue.backlog() == 0
        assert await asyncio.wait_for(queue.wait_for(batch), 5) == report


async def test_a_dead_workers_batch_is_taken_over_after_the_timeout(
    redis_url: str, redis_prefix: str, redis_cluster: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        client(redis_url, redis_cluster) as dead_side,
        client(redis_url, redis_cluster) as live_side,
    ):
        dead = RedisMemoryQueue(dead_side, redis_prefix, consumer="dead")
        live = RedisMemoryQueue(
            live_side, redis_prefix, consumer="live", claim_after=1.0, prune_after=0.2
        )
        # Both clients connected first (a cluster client learns the slots on its first call), so
        # that the first look below comes well within the claim timeout on a loaded machine.
        assert await dead.pending() == [] and await live.pending() == []
        batch = batch_of("11")
        await dead.put(batch)
        assert await dead.poll(0) == batch  # taken, and then never a sign of life again
        taken = time.monotonic()
        assert await live.poll(0) is None  # not yet: the dead one might still be working
        assert await asyncio.wait_for(live.get(), 5) == batch
        assert time.monotonic() - taken >= 0.95
        [entry] = await live.pending()
        assert entry["consumer"] == "live" and entry["deliveries"] == 2
        # The dead worker, silent and with nothing left pending, is no longer listed.
        consumers = await live_side.xinfo_consumers(live.stream, live.group)
        assert [c["name"] for c in consumers] == [b"live"]
    assert f"memory batch {batch.batch_id}: taken over from a worker silent" in caplog.text


async def test_the_heartbeat_keeps_a_long_batch_with_its_worker(
    redis_url: str, redis_prefix: str, redis_cluster: bool
) -> None:
    async with (
        client(redis_url, redis_cluster) as busy_side,
        client(redis_url, redis_cluster) as idle_side,
    ):
        busy = RedisMemoryQueue(busy_side, redis_prefix, consumer="busy", claim_after=0.3)
        idle = RedisMemoryQueue(idle_side, redis_prefix, consumer="idle", claim_after=0.3)
        leased, unleased = batch_of("11", batch_id="leased"), batch_of("12", batch_id="bare")
        await busy.put(leased)
        await busy.put(unleased)
        assert await busy.poll(0) == leased
        assert await busy.poll(0) == unleased
        taken: list[str] = []
        async with busy.lease(leased) as lease:
            # Five claim timeouts pass; the other worker keeps asking for work meanwhile.
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                got = await idle.poll(0.05)
                if got is not None:
                    taken.append(got.batch_id)
            assert not lease.lost
            await busy.ack(leased, BatchReport(eligible=1, generated=1))
        # The batch nobody heartbeated was taken over (again and again, as this worker too
        # leaves it idle); the leased one never was.
        assert taken[0] == "bare" and set(taken) == {"bare"}


async def test_a_taken_over_batch_skips_what_the_dead_worker_finished(
    redis_url: str, redis_prefix: str, redis_cluster: bool
) -> None:
    async with (
        manager_on(redis_url, redis_prefix, redis_cluster) as manager,
        client(redis_url, redis_cluster) as dead_side,
    ):
        await old_conversations(manager, "11", "12", "13")
        bot = MemoryService(manager, Gated("bot"), inactivity=0)
        bot.queue = RedisMemoryQueue.for_store(manager.store, consumer="bot")
        batch = await bot.enqueue()
        assert len(batch.conversations) == 3
        # A worker takes the batch, makes the first memory, and dies.
        dead = RedisMemoryQueue(dead_side, redis_prefix, consumer="dead")
        assert await dead.poll(0) == batch
        first = await MemoryService(manager, Gated("dead")).upsert(GUILD, "11")
        assert first is not None
        distiller = Gated("live")
        live = MemoryService(manager, distiller, inactivity=0)
        live.queue = RedisMemoryQueue.for_store(manager.store, consumer="live", claim_after=0.3)
        taken = await asyncio.wait_for(live.queue.get(), 5)
        report = await live.handle(taken)
        assert report is not None
        assert (report.eligible, report.generated, report.skipped, report.failed) == (3, 2, 1, 0)
        assert report.line() == "3 eligible, 2 generated, 1 skipped (already up to date), 0 failed"
        assert distiller.calls == ["12", "13"]  # never "11" again
        assert await manager.store.load_memory(GUILD, "11") == first
        assert await bot.queue.wait_for(batch) == report


async def test_a_stalled_worker_loses_the_batch_and_saves_nothing(
    redis_url: str, redis_prefix: str, redis_cluster: bool
) -> None:
    async with manager_on(redis_url, redis_prefix, redis_cluster) as manager:
        await old_conversations(manager, "11")
        slow = Gated("slow", gate_on="11")
        stalled = MemoryService(manager, slow, inactivity=0)
        # Its heartbeat comes every 10 s: too late for the other worker's 0.3 s timeout,
        # as if this process hung.
        stalled.queue = RedisMemoryQueue.for_store(manager.store, consumer="slow", claim_after=30)
        batch = await stalled.enqueue()
        taken = await stalled.queue.poll(0)
        assert taken == batch
        handling = asyncio.create_task(stalled.handle(taken))
        await asyncio.wait_for(slow.entered.wait(), 5)

        quick = MemoryService(manager, Gated("quick"), inactivity=0)
        quick.queue = RedisMemoryQueue.for_store(manager.store, consumer="quick", claim_after=0.3)
        report = await quick.handle(await asyncio.wait_for(quick.queue.get(), 5))
        assert report is not None and report.generated == 1
        slow.gate.set()  # the stalled worker wakes up with its (now stale) result
        assert await asyncio.wait_for(handling, 5) is None  # lost: not acknowledged
        memory = await manager.store.load_memory(GUILD, "11")
        assert memory is not None and memory.generator == "quick"
        assert memory.created_at == memory.updated_at  # made once, never overwritten
        assert await stalled.queue.wait_for(batch) == report


async def test_two_batches_holding_one_conversation_make_its_memory_once(
    redis_url: str, redis_prefix: str, redis_cluster: bool
) -> None:
    async with manager_on(redis_url, redis_prefix, redis_cluster) as manager:
        await old_conversations(manager, "11", "12")
        first = Gated("first", gate_on="11")
        one = MemoryService(manager, first, inactivity=0)
        one.queue = RedisMemoryQueue.for_store(manager.store, consumer="one")
        second = Gated("second")
        two = MemoryService(manager, second, inactivity=0)
        two.queue = RedisMemoryQueue.for_store(manager.store, consumer="two")
        # Two triggers before any worker ran: both batches hold both conversations.
        await one.enqueue()
        await one.enqueue()
        a = asyncio.create_task(one.handle(await one.queue.poll(0)))
        await asyncio.wait_for(first.entered.wait(), 5)  # "11" is being made by worker one
        b = await two.handle(await two.queue.poll(0))
        assert b is not None and (b.generated, b.skipped) == (1, 1)
        assert second.calls == ["12"]  # it left "11" to the worker making it
        first.gate.set()
        a_report = await asyncio.wait_for(a, 5)
        assert a_report is not None and (a_report.generated, a_report.skipped) == (1, 1)
        assert first.calls == ["11"]  # and "12" was up to date by its turn


async def test_a_cancelled_worker_hands_its_batch_back_at_once(
    redis_url: str, redis_prefix: str, redis_cluster: bool
) -> None:
    async with manager_on(redis_url, redis_prefix, redis_cluster) as manager:
        await old_conversations(manager, "11", "12")
        slow = Gated("stopping", gate_on="12")
        stopping = MemoryService(manager, slow, inactivity=0)
        stopping.queue = RedisMemoryQueue.for_store(manager.store, consumer="stopping")
        batch = await stopping.enqueue()
        working = asyncio.create_task(stopping.work())
        await asyncio.wait_for(slow.entered.wait(), 5)
        working.cancel()  # SIGTERM in the middle of "12"
        with pytest.raises(asyncio.CancelledError):
            await working
        await stopping.queue.close()  # something is pending: it stays in the group
        # The default timeout is a minute, yet the batch is there for the next worker now.
        other = MemoryService(manager, Gated("other"), inactivity=0)
        other.queue = RedisMemoryQueue.for_store(manager.store, consumer="other")
        taken = await other.queue.poll(0)
        assert taken == batch
        report = await other.handle(taken)
        assert report is not None and (report.generated, report.skipped) == (1, 1)


async def test_a_batch_that_stops_every_worker_is_given_up(
    redis_url: str, redis_prefix: str, redis_cluster: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async with client(redis_url, redis_cluster) as redis:
        options = {"claim_after": 0.1, "max_deliveries": 2}
        batch = batch_of("11", "12")
        first = RedisMemoryQueue(redis, redis_prefix, consumer="w1", **options)
        await first.put(batch)
        assert await first.poll(0) == batch  # delivery 1: dies
        second = RedisMemoryQueue(redis, redis_prefix, consumer="w2", **options)
        assert await asyncio.wait_for(second.get(), 5) == batch  # delivery 2: dies too
        third = RedisMemoryQueue(redis, redis_prefix, consumer="w3", **options)
        deadline = time.monotonic() + 5
        while await third.report(batch) is None:
            assert await third.poll(0.05) is None  # never handed out a third time
            assert time.monotonic() < deadline, "the batch was not given up"
        report = await third.wait_for(batch)
        assert (report.eligible, report.failed) == (2, 2)
        assert await third.backlog() == 0
    assert f"memory batch {batch.batch_id}: given up after 3 deliveries" in caplog.text


async def test_the_schedule_triggers_once_per_interval_and_only_enqueues(
    redis_url: str, redis_prefix: str, redis_cluster: bool
) -> None:
    async with manager_on(redis_url, redis_prefix, redis_cluster) as manager:
        await old_conversations(manager, "11", "12")
        bots = []
        for name in ("bot-1", "bot-2"):
            bot = MemoryService(manager, Gated(name), inactivity=0)
            bot.queue = RedisMemoryQueue.for_store(manager.store, consumer=name)
            bots.append(bot)
        line = await bots[0].scheduled(60)
        assert line is not None and line.startswith("2 conversation(s) queued for the memory")
        assert await bots[1].scheduled(60) is None  # the other bot's turn this interval
        assert await manager.store.list_memories(GUILD) == []  # enqueued, not processed
        assert await bots[0].queue.backlog() == 1
        worker = MemoryService(manager, Gated("worker"), inactivity=0)
        worker.queue = RedisMemoryQueue.for_store(manager.store, consumer="worker")
        assert await worker.work(once=True) == 1
        assert len(await manager.store.list_memories(GUILD)) == 2
        assert await worker.work(once=True) == 0


async def test_generate_needs_no_worker_and_reports_a_workers_result(
    redis_url: str, redis_prefix: str, redis_cluster: bool
) -> None:
    async with manager_on(redis_url, redis_prefix, redis_cluster) as manager:
        await old_conversations(manager, "11")
        bot = MemoryService(manager, Gated("bot"), inactivity=0)
        bot.queue = RedisMemoryQueue.for_store(manager.store, consumer="bot", claim_after=1)
        seen: list[tuple[int, int]] = []
        report = await bot.generate(progress=lambda done, total: seen.append((done, total)))
        assert report.line() == "1 eligible, 1 generated, 0 failed" and seen == [(1, 1)]

        # A worker is running and gets there first: its report is the answer.
        await old_conversations(manager, "12")
        held = Gated("worker", gate_on="12")
        worker = MemoryService(manager, held, inactivity=0)
        worker.queue = RedisMemoryQueue.for_store(manager.store, consumer="worker")
        working = asyncio.create_task(worker.work())
        try:
            # The worker first: asked before it waits for work, the bot may read the batch
            # itself (two consumers of one group), as it does when no worker runs.
            await reader_waiting(redis_url, redis_cluster)
            asking = asyncio.create_task(bot.generate())
            await asyncio.wait_for(held.entered.wait(), 5)
            held.gate.set()
            report = await asyncio.wait_for(asking, 10)
            assert (report.eligible, report.generated) == (1, 1)
            memory = await manager.store.load_memory(GUILD, "12")
            assert memory is not None and memory.generator == "worker"
        finally:
            working.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await working


async def test_in_process_runs_never_make_one_memory_twice_either() -> None:
    queue = InProcessMemoryQueue()
    one, two = batch_of("11", batch_id="one"), batch_of("11", batch_id="two")
    await queue.put(one)
    await queue.put(two)
    async with queue.lease(one) as a, queue.lease(two) as b:
        assert await a.hold(GUILD, "11")
        assert not await b.hold(GUILD, "11")
        assert await a.holds(GUILD, "11") and not await b.holds(GUILD, "11")
    async with queue.lease(two) as b:  # released when the first lease ended
        assert await b.hold(GUILD, "11")
