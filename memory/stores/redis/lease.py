"""A worker's lease on a memory batch taken from the Redis queue: a heartbeat that keeps the
entry its own, and the locks on the conversations being made."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Self

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from memory.longterm.queue import BatchLease, MemoryBatch, stop_task
from memory.stores.redis.queue_scripts import HEARTBEAT, HOLD, REFRESH, RELEASE
from memory.stores.redis.stream_replies import text

if TYPE_CHECKING:
    from memory.stores.redis.queue import RedisMemoryQueue

log = logging.getLogger(__name__)

__all__ = ["LeaseScripts", "RedisLease"]


class LeaseScripts:
    """The scripts of a queue's leases, registered once on its client."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.heartbeat: AsyncScript = client.register_script(HEARTBEAT)
        self.hold: AsyncScript = client.register_script(HOLD)
        self.refresh: AsyncScript = client.register_script(REFRESH)
        self.release: AsyncScript = client.register_script(RELEASE)


class RedisLease(BatchLease):
    """A worker's hold on a batch entry while it processes it.

    A heartbeat task re-claims the entry every ``claim_after / 3`` (so its idle time never
    reaches ``claim_after``) and keeps the conversation lock alive. If the entry belongs to
    another consumer by then (this worker stalled), the lease is lost: processing stops
    before the next conversation, and the result being made is not saved.

    Leaving the lease by an exception (a cancelled worker) hands the entry back at once: it
    is marked idle, so the next worker that asks takes it over without waiting.
    """

    def __init__(self, queue: RedisMemoryQueue, batch: MemoryBatch, entry_id: str) -> None:
        super().__init__()
        self.queue = queue
        self.batch = batch
        self.entry_id = entry_id
        self.token = f"{entry_id}/{queue.consumer}/{uuid.uuid4().hex[:8]}"
        self._lost = False
        self._beating: asyncio.Task[None] | None = None
        self._locked: dict[str, str] = {}  # thread id -> lock key

    @property
    def lost(self) -> bool:
        return self._lost

    @property
    def _lock_ms(self) -> int:
        return self.queue.millis(self.queue.claim_after)

    async def __aenter__(self) -> Self:
        await self.beat()
        self._beating = asyncio.get_running_loop().create_task(
            self._beat_forever(), name=f"memq-heartbeat-{self.batch.batch_id}"
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._beating is not None:
                await stop_task(self._beating)
        finally:
            # Even when cancelled: let go in a few seconds at most, never hang a shutdown.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    for thread_id in list(self._locked):
                        await self.release("", thread_id)
                    if exc is not None and not self._lost:
                        await self._hand_back()

    async def _hand_back(self) -> None:
        if self.queue.entry_of(self.batch) != self.entry_id:
            return  # acknowledged after all
        self.queue.forget_entry(self.batch)
        # Idle as if silent for the whole claim timeout: the next worker takes it at once.
        idle = self.queue.millis(self.queue.claim_after) + 1000
        await self.queue.redis.xclaim(
            self.queue.stream,
            self.queue.group,
            self.queue.consumer,
            0,
            [self.entry_id],
            idle=idle,
            justid=True,
        )
        log.info("memory batch %s: handed back to the queue", self.batch.batch_id)

    async def beat(self) -> None:
        """One heartbeat: the entry (and the conversation being made) stay this worker's."""
        queue = self.queue
        mine = await queue.lease_scripts.heartbeat(
            keys=[queue.stream], args=[queue.group, self.entry_id, queue.consumer]
        )
        if not int(mine):
            if not self._lost:
                log.warning(
                    "memory batch %s: another worker took it over; this one stops",
                    self.batch.batch_id,
                )
            self._lost = True
            return
        for key in self._locked.values():
            await queue.lease_scripts.refresh(keys=[key], args=[self.token, self._lock_ms])

    async def _beat_forever(self) -> None:
        while not self._lost:
            await asyncio.sleep(self.queue.claim_after / 3)
            try:
                await self.beat()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                # The entry may be taken over if this lasts past claim_after; the next beat
                # that gets through says so.
                log.warning("memory batch %s: heartbeat failed: %s", self.batch.batch_id, exc)

    async def hold(self, guild_id: str, thread_id: str) -> bool:
        key = self.queue.busy_key(thread_id)
        taken = await self.queue.lease_scripts.hold(
            keys=[key], args=[self.token, f"{self.entry_id}/", self._lock_ms]
        )
        if int(taken):
            self._locked[thread_id] = key
            return True
        return False

    async def holds(self, guild_id: str, thread_id: str) -> bool:
        if self._lost or thread_id not in self._locked:
            return False
        held = await self.queue.redis.get(self._locked[thread_id])
        return held is not None and text(held) == self.token

    async def release(self, guild_id: str, thread_id: str) -> None:
        key = self._locked.pop(thread_id, None)
        if key is not None:
            await self.queue.lease_scripts.release(keys=[key], args=[self.token])
