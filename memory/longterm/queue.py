"""The memory batch queue: batches, their reports, and the lease a worker holds on one.

A trigger puts every eligible conversation into one batch message on a queue; a worker takes it
and acknowledges it with its report. The queue is in-process here, behind a small interface;
``memory.stores.redis.queue`` puts it on a Redis Stream for several processes, where a batch a
stopped worker left is taken over by another.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from memory.records.models import utcnow

__all__ = [
    "BatchLease",
    "BatchLostError",
    "BatchReport",
    "InProcessMemoryQueue",
    "MemoryBatch",
    "MemoryQueue",
    "stop_task",
]


@dataclass(frozen=True, slots=True)
class MemoryBatch:
    """One queue message: the conversations a trigger found eligible."""

    batch_id: str
    conversations: tuple[tuple[str, str], ...]  # (guild_id, thread_id)
    created_at: datetime = field(default_factory=utcnow)

    def to_json(self) -> str:
        return json.dumps(
            {
                "batch_id": self.batch_id,
                "conversations": [list(pair) for pair in self.conversations],
                "created_at": self.created_at.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> MemoryBatch:
        data = json.loads(text)
        return cls(
            batch_id=str(data["batch_id"]),
            conversations=tuple((str(g), str(t)) for g, t in data["conversations"]),
            created_at=datetime.fromisoformat(data["created_at"]),
        )


@dataclass
class BatchReport:
    eligible: int = 0
    generated: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (thread_id, cause)
    # Memories already up to date when their turn came (made by a worker that stopped
    # mid-batch, or by another batch), or being made by another worker at that moment.
    skipped: int = 0

    def line(self) -> str:
        # "skipped" only when there were some, so the usual one-process line stays as it was.
        skipped = f", {self.skipped} skipped (already up to date)" if self.skipped else ""
        made = f"{self.eligible} eligible, {self.generated} generated"
        return f"{made}{skipped}, {self.failed} failed"

    def to_json(self) -> str:
        return json.dumps(
            {
                "eligible": self.eligible,
                "generated": self.generated,
                "skipped": self.skipped,
                "failed": self.failed,
                "failures": [list(pair) for pair in self.failures],
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> BatchReport:
        data = json.loads(text)
        return cls(
            eligible=int(data.get("eligible", 0)),
            generated=int(data.get("generated", 0)),
            skipped=int(data.get("skipped", 0)),
            failed=int(data.get("failed", 0)),
            failures=[(str(t), str(c)) for t, c in data.get("failures", [])],
        )


async def stop_task(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait until it has stopped.

    Unlike ``task.cancel(); with suppress(CancelledError): await task``, this never swallows
    a cancellation of the caller itself (a worker told to stop just then keeps stopping).
    """
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: an error of a task stopped on purpose is no news


class BatchLostError(Exception):
    """Another worker took this batch over (this one stalled past the claim timeout)."""


class BatchLease:
    """A worker's hold on a batch and on the conversation it is making a memory of.

    Two runs must never make one conversation's memory at the same time (two batches can hold
    the same conversation when a trigger fires before the last batch was done). This lease
    keeps that true within one process; the Redis queue's lease keeps it true across
    processes, and also keeps the batch from being taken over while it is being worked on.
    """

    def __init__(self, busy: set[str] | None = None) -> None:
        self._busy = busy if busy is not None else set()
        self._held: set[str] = set()

    @property
    def lost(self) -> bool:
        """True once another worker took the batch over: stop, and do not acknowledge it."""
        return False

    async def hold(self, guild_id: str, thread_id: str) -> bool:
        """Take the conversation for this run; False if another run is making its memory."""
        if thread_id in self._busy:
            return False
        self._busy.add(thread_id)
        self._held.add(thread_id)
        return True

    async def holds(self, guild_id: str, thread_id: str) -> bool:
        """Whether the conversation is still this run's: checked again just before saving."""
        return thread_id in self._held and not self.lost

    async def release(self, guild_id: str, thread_id: str) -> None:
        if thread_id in self._held:
            self._held.discard(thread_id)
            self._busy.discard(thread_id)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for thread_id in list(self._held):
            await self.release("", thread_id)


class MemoryQueue(ABC):
    """Where batches wait for a worker (in-process here; a Redis Stream for several processes)."""

    #: Batches put here are processed by other processes (``python -m bot worker``), so a
    #: scheduled trigger only enqueues.
    shared: bool = False

    @property
    def poll_seconds(self) -> float:
        """How long ``poll`` waits at a time where a caller also watches for something else."""
        return 1.0

    @abstractmethod
    async def put(self, batch: MemoryBatch) -> None: ...

    @abstractmethod
    async def poll(self, wait: float) -> MemoryBatch | None:
        """The next batch for this worker, or None if none came within ``wait`` seconds
        (0: only one that is ready now)."""

    async def get(self) -> MemoryBatch:
        """The next batch, waiting as long as it takes."""
        while True:
            batch = await self.poll(self.poll_seconds)
            if batch is not None:
                return batch

    @abstractmethod
    async def ack(self, batch: MemoryBatch, report: BatchReport) -> None: ...

    @abstractmethod
    async def wait_for(self, batch: MemoryBatch) -> BatchReport:
        """The report of a batch once a worker has processed it."""

    def lease(self, batch: MemoryBatch) -> BatchLease:
        """Hold ``batch`` while processing it (``async with``)."""
        return BatchLease()

    async def claim_trigger(self, interval: float) -> bool:
        """Whether this process runs the scheduled trigger now (one of several processes)."""
        return True

    async def backlog(self) -> int:
        """Batches put and not yet acknowledged."""
        return 0

    async def close(self) -> None:  # noqa: B027 - nothing to let go of unless shared
        """Let go of what the queue holds for this process."""


class InProcessMemoryQueue(MemoryQueue):
    def __init__(self) -> None:
        self._queue: asyncio.Queue[MemoryBatch] = asyncio.Queue()
        self._reports: dict[str, asyncio.Future[BatchReport]] = {}
        self._busy: set[str] = set()

    def _future(self, batch: MemoryBatch) -> asyncio.Future[BatchReport]:
        future = self._reports.get(batch.batch_id)
        if future is None:
            future = self._reports[batch.batch_id] = asyncio.get_running_loop().create_future()
        return future

    async def put(self, batch: MemoryBatch) -> None:
        self._future(batch)
        await self._queue.put(batch)

    async def get(self) -> MemoryBatch:
        return await self._queue.get()

    async def poll(self, wait: float) -> MemoryBatch | None:
        if wait <= 0:
            try:
                return self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return None
        try:
            return await asyncio.wait_for(self._queue.get(), wait)
        except TimeoutError:
            return None

    async def ack(self, batch: MemoryBatch, report: BatchReport) -> None:
        future = self._future(batch)
        if not future.done():
            future.set_result(report)
        self._queue.task_done()

    async def wait_for(self, batch: MemoryBatch) -> BatchReport:
        try:
            return await asyncio.shield(self._future(batch))
        finally:
            if self._future(batch).done():
                self._reports.pop(batch.batch_id, None)

    def lease(self, batch: MemoryBatch) -> BatchLease:
        return BatchLease(self._busy)

    async def backlog(self) -> int:
        return self._queue.qsize()
