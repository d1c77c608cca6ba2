"""Long-term memory: turn ended conversations into memory records, as a batch job.

A trigger (a command, the CLI, a timer) collects every eligible conversation into one batch
message on a queue (``memory.longterm.queue``); a worker takes it, distils each conversation on
its own (one failure is logged and the batch goes on) and upserts its memory. On a shared queue
a batch a stopped worker left is taken over by another. Processing is idempotent for that: a
conversation whose memory is already up to date is skipped, never distilled again.

A conversation is eligible when it has been idle for longer than the inactivity threshold,
is not active in memory, and has no memory yet or has changed since its memory was made.
Finding them reads only conversation headers, never full histories.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta

from memory.longterm.distiller import Distiller
from memory.longterm.queue import (
    BatchLease,
    BatchLostError,
    BatchReport,
    InProcessMemoryQueue,
    MemoryBatch,
    MemoryQueue,
    stop_task,
)
from memory.recording.manager import InMemoryConversationManager
from memory.records.memories import MemoryRecord
from memory.records.models import Conversation, utcnow
from memory.stores.base import ConversationInfo, StoreError

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_INACTIVITY_SECONDS", "MemoryService", "eligible"]

DEFAULT_INACTIVITY_SECONDS = 7200.0


def eligible(
    infos: Iterable[ConversationInfo],
    memories: dict[str, MemoryRecord],
    *,
    now: datetime,
    inactivity: float,
    active: set[str],
) -> list[ConversationInfo]:
    """Conversations idle past ``inactivity`` whose memory is missing or older than them."""
    cutoff = now - timedelta(seconds=inactivity)
    found: list[ConversationInfo] = []
    for info in infos:
        if info.thread_id in active or info.updated_at > cutoff:
            continue
        memory = memories.get(info.thread_id)
        if memory is None or memory.is_stale(info.updated_at):
            found.append(info)
    return found


Progress = Callable[[int, int], None]
Upserted = Callable[[Conversation, MemoryRecord], Awaitable[None] | None]


class MemoryService:
    """Finds eligible conversations, queues them as one batch, and processes batches."""

    def __init__(
        self,
        manager: InMemoryConversationManager,
        distiller: Distiller,
        *,
        inactivity: float = DEFAULT_INACTIVITY_SECONDS,
        queue: MemoryQueue | None = None,
    ) -> None:
        self.manager = manager
        self.store = manager.store
        self.distiller = distiller
        self.inactivity = inactivity
        self.queue = queue or InProcessMemoryQueue()
        self.listeners: list[Upserted] = []

    async def find_eligible(
        self, guild_id: str | None = None, *, inactivity: float | None = None
    ) -> list[ConversationInfo]:
        """The conversations a run would distil now; ``inactivity`` overrides the threshold
        (0: every conversation without an up-to-date memory, however recent)."""
        infos = await self.store.conversation_infos(guild_id)
        memories: dict[str, MemoryRecord] = {}
        for guild in sorted({i.guild_id for i in infos}):
            for record in await self.store.list_memories(guild):
                memories[record.thread_id] = record
        active = {c.thread_id for c in self.manager.get_all_conversations()}
        idle = self.inactivity if inactivity is None else inactivity
        return eligible(infos, memories, now=utcnow(), inactivity=idle, active=active)

    async def enqueue(self, guild_id: str | None = None) -> MemoryBatch:
        """The trigger: one batch message holding every eligible conversation."""
        return await self._put(await self.find_eligible(guild_id))

    async def _put(self, found: list[ConversationInfo]) -> MemoryBatch:
        # Unique across processes: batches of several bots and CLIs share one Redis queue.
        stamp = utcnow().strftime("%Y%m%dT%H%M%S")
        batch = MemoryBatch(
            batch_id=f"{stamp}-{uuid.uuid4().hex[:8]}",
            conversations=tuple((i.guild_id, i.thread_id) for i in found),
        )
        await self.queue.put(batch)
        log.info("memory batch %s: %d conversation(s) queued", batch.batch_id, len(found))
        return batch

    async def generate(
        self, guild_id: str | None = None, progress: Progress | None = None
    ) -> BatchReport:
        """Queue a batch and process it here; for callers that want the counts back now.

        Works with no worker running. Batches queued before this one are processed here too
        on the way (a queue hands them out in order); a worker that takes this one first
        does it instead, and its report is the answer.
        """
        batch = await self.enqueue(guild_id)
        waiting = asyncio.ensure_future(self.queue.wait_for(batch))
        try:
            while not waiting.done():
                taken = await self.queue.poll(self.queue.poll_seconds)
                if taken is None:
                    continue
                mine = taken.batch_id == batch.batch_id
                report = await self.handle(taken, progress if mine else None)
                if mine and report is not None:
                    return report
            return waiting.result()
        finally:
            await stop_task(waiting)

    async def scheduled(self, interval: float) -> str | None:
        """One tick of the automatic trigger: what happened, for the log, or None if nothing.

        Of several processes sharing a queue, one per ``interval`` triggers, and only
        enqueues: the workers process. A queue of one process's own is processed right here.
        """
        if not await self.queue.claim_trigger(interval):
            return None
        if not self.queue.shared:
            report = await self.generate()
            return report.line() if report.eligible else None
        found = await self.find_eligible()
        if not found:
            return None
        batch = await self._put(found)
        line = f"{len(found)} conversation(s) queued for the memory workers ({batch.batch_id})"
        waiting = await self.queue.backlog()
        if waiting > 1:
            line += f"; {waiting} batches wait: is a 'python -m bot worker' running?"
        return line

    async def work(self, progress: Progress | None = None, *, once: bool = False) -> int:
        """A worker: process batches as they come, until cancelled.

        ``once``: only the batches ready now (new ones, and ones a stopped worker left past
        the claim timeout), then return. Returns how many batches were processed.
        """
        handled = 0
        while True:
            batch = await (self.queue.poll(0) if once else self.queue.get())
            if batch is None:
                return handled
            try:
                await self.handle(batch, progress)
            except Exception:
                # Not acknowledged: the batch waits in the queue for a worker to take it up
                # again (in a shared queue: this one or another, after the claim timeout).
                log.exception("memory batch %s stopped; it stays queued", batch.batch_id)
                if once:
                    raise
            handled += 1

    async def handle(
        self, batch: MemoryBatch, progress: Progress | None = None
    ) -> BatchReport | None:
        """Process one batch taken from the queue and acknowledge it; None if it was lost."""
        async with self.queue.lease(batch) as lease:
            try:
                report = await self.process(batch, progress, lease=lease)
            except BatchLostError:
                log.warning(
                    "memory batch %s: another worker took it over; leaving it to them",
                    batch.batch_id,
                )
                return None
            await self.queue.ack(batch, report)
        return report

    async def process(
        self,
        batch: MemoryBatch,
        progress: Progress | None = None,
        *,
        lease: BatchLease | None = None,
    ) -> BatchReport:
        lease = lease if lease is not None else BatchLease()
        report = BatchReport(eligible=len(batch.conversations))
        for done, (guild_id, thread_id) in enumerate(batch.conversations, start=1):
            if lease.lost:
                raise BatchLostError(batch.batch_id)
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # Told to stop, though a client library swallowed the cancellation
                # (redis-py#2028 does, in blocking reads): stop before the next one.
                raise asyncio.CancelledError
            if not await lease.hold(guild_id, thread_id):
                report.skipped += 1
                log.info("memory of conversation %s: being made by another run", thread_id)
            else:
                try:
                    made = await self.upsert(guild_id, thread_id, lease=lease)
                    if made is None:
                        report.skipped += 1
                    else:
                        report.generated += 1
                except BatchLostError:
                    raise
                except Exception as exc:
                    # One conversation's failure never stops the batch.
                    report.failed += 1
                    report.failures.append((thread_id, str(exc) or type(exc).__name__))
                    log.warning("memory of conversation %s failed: %s", thread_id, exc)
                finally:
                    await lease.release(guild_id, thread_id)
            if progress is not None:
                progress(done, report.eligible)
        log.info("memory batch %s: %s", batch.batch_id, report.line())
        return report

    async def upsert(
        self,
        guild_id: str,
        thread_id: str,
        *,
        force: bool = False,
        lease: BatchLease | None = None,
    ) -> MemoryRecord | None:
        """(Re)make the memory of one conversation and store it.

        None, without asking the distiller, when the memory is already up to date (unless
        ``force``): a batch taken over from a worker that stopped mid-way holds
        conversations that worker finished, and none is made twice.
        """
        conversation = await self.store.load(thread_id)
        if conversation is None or conversation.guild_id != guild_id:
            raise StoreError(f"conversation {thread_id} is gone or unreadable")
        previous = await self.store.load_memory(guild_id, thread_id)
        if previous is not None and not force and not previous.is_stale(conversation.updated_at):
            return None
        data = await self.distiller.distil(conversation)
        if lease is not None and not await lease.holds(guild_id, thread_id):
            # This worker stalled and another took the conversation over: its memory is theirs.
            raise BatchLostError(f"conversation {thread_id} was taken over")
        now = utcnow()
        record = MemoryRecord(
            thread_id=thread_id,
            guild_id=guild_id,
            requester=conversation.requester,
            participants=list(conversation.participants),
            memory_data=data,
            created_at=previous.created_at if previous else now,
            updated_at=now,
            source_updated_at=conversation.updated_at,
            conversation_created_at=conversation.created_at,
            generator=self.distiller.name,
        )
        await self.store.save_memory(record)
        for listener in self.listeners:
            result = listener(conversation, record)
            if asyncio.iscoroutine(result):
                await result
        return record
