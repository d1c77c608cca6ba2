"""The memory queue on a Redis Stream: any number of workers, and a stopped one loses nothing.

A trigger XADDs a batch to ``<prefix>:memq``; workers read it through the consumer group
``<prefix>:memory-workers`` (XREADGROUP), so each batch goes to one of them, and XACK it once
its report is stored. A batch whose worker died stays pending in the group; after
``claim_after`` seconds without a sign of life, the next worker that asks for work takes it
over (XAUTOCLAIM). A live worker gives that sign while it works (its lease re-claims the entry
for itself every ``claim_after / 3``), so a long batch is never taken from it.

Taking a batch over repeats nothing: ``MemoryService.upsert`` skips a conversation whose
memory is already up to date, and a conversation whose memory is being made is locked
(``<prefix>:memq:busy:<thread_id>``) by the batch entry that makes it, so a second batch holding
the same conversation leaves it alone, while the worker that takes over a dead worker's entry
takes over that entry's lock too.

Every command touches one key, so the queue also runs on Redis Cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from memory.longterm.queue import BatchReport, MemoryBatch, MemoryQueue
from memory.stores.redis.lease import LeaseScripts, RedisLease
from memory.stores.redis.queue_scripts import LEAVE
from memory.stores.redis.stream_replies import entries, field, still_running, text

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_CLAIM_AFTER", "RedisLease", "RedisMemoryQueue"]

DEFAULT_CLAIM_AFTER = 60.0
# How long a report waits for whoever asked for the batch (a /memory generate, say).
DEFAULT_REPORT_TTL = 24 * 3600
# A batch handed out this many times killed every worker that took it: give it up.
DEFAULT_MAX_DELIVERIES = 5
# A consumer silent this long with nothing pending is a worker that is gone.
DEFAULT_PRUNE_AFTER = 3600.0


class RedisBacked(Protocol):
    """What ``for_store`` needs: an opened ``RedisStore`` has both."""

    @property
    def redis(self) -> aioredis.Redis: ...

    @property
    def prefix(self) -> str: ...


class RedisMemoryQueue(MemoryQueue):
    """Batches on a Redis Stream, read by a consumer group of workers (see the module doc).

    ``consumer`` names this process in the group (default: host, pid and a random suffix).
    ``claim_after``: seconds a batch may go without a sign of life from its worker before
    another takes it over; a worker's own lease heartbeats three times in that time.
    """

    shared = True

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = "echo",
        *,
        consumer: str | None = None,
        claim_after: float = DEFAULT_CLAIM_AFTER,
        report_ttl: float = DEFAULT_REPORT_TTL,
        max_deliveries: int = DEFAULT_MAX_DELIVERIES,
        prune_after: float = DEFAULT_PRUNE_AFTER,
    ) -> None:
        if claim_after <= 0:
            raise ValueError("claim_after must be more than 0 seconds")
        self.redis = client
        self.prefix = prefix
        self.stream = f"{prefix}:memq"
        self.group = f"{prefix}:memory-workers"
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.claim_after = claim_after
        self.report_ttl = report_ttl
        self.max_deliveries = max_deliveries
        self.prune_after = prune_after
        self._group_ready = False
        self._entry_ids: dict[str, str] = {}  # batch id -> stream entry id, while processing
        self.lease_scripts = LeaseScripts(client)
        self._leave = client.register_script(LEAVE)

    @classmethod
    def for_store(cls, store: RedisBacked, **options: Any) -> RedisMemoryQueue:
        """The queue beside an opened Redis store: its connection pool and its prefix."""
        return cls(store.redis, store.prefix, **options)

    @property
    def poll_seconds(self) -> float:
        # A waiting worker looks for abandoned batches this often; the server holds each
        # blocking read no longer, so a client's socket timeout never cuts one short.
        return min(2.0, max(self.claim_after / 4, 0.05))

    def done_key(self, batch_id: str) -> str:
        return f"{self.stream}:done:{batch_id}"

    def busy_key(self, thread_id: str) -> str:
        return f"{self.stream}:busy:{thread_id}"

    @property
    def trigger_key(self) -> str:
        return f"{self.stream}:trigger"

    def millis(self, seconds: float) -> int:
        """Seconds as the whole milliseconds Redis takes (at least 1)."""
        return max(1, int(seconds * 1000))

    def entry_of(self, batch: MemoryBatch) -> str | None:
        """The stream entry of a batch this queue handed out and has not acknowledged."""
        return self._entry_ids.get(batch.batch_id)

    def forget_entry(self, batch: MemoryBatch) -> None:
        """The batch went back to the queue: this worker no longer holds its entry."""
        self._entry_ids.pop(batch.batch_id, None)

    # --- the queue ------------------------------------------------------------------------

    async def _ensure_group(self, *, again: bool = False) -> None:
        if self._group_ready and not again:
            return
        try:
            # From the start of the stream: batches put before any worker existed are read.
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def put(self, batch: MemoryBatch) -> None:
        await self._ensure_group()
        await self.redis.xadd(self.stream, {"batch": batch.to_json()})

    async def get(self) -> MemoryBatch:
        """The next batch; an unreachable Redis is waited out, as a worker should."""
        pause = 0.5
        while True:
            try:
                batch = await self.poll(self.poll_seconds)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("memory queue: Redis unreachable (%s); again in %.1f s", exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)
                continue
            pause = 0.5
            if batch is not None:
                return batch

    async def poll(self, wait: float) -> MemoryBatch | None:
        await self._ensure_group()
        while True:
            try:
                claimed = await self._claim_abandoned()
                if claimed is not None:
                    entry_id, fields, deliveries = claimed
                    batch = await self._accept(entry_id, fields, deliveries)
                    if batch is None:
                        continue
                    log.warning(
                        "memory batch %s: taken over from a worker silent for over %g s "
                        "(%d conversation(s), delivery %d)",
                        batch.batch_id,
                        self.claim_after,
                        len(batch.conversations),
                        deliveries,
                    )
                    await self._prune()
                    return batch
                reply = await self.redis.xreadgroup(
                    self.group,
                    self.consumer,
                    {self.stream: ">"},
                    count=1,
                    block=self.millis(wait) if wait > 0 else None,
                )
                still_running()
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # The stream was deleted under us (an operator cleaning keys): start afresh.
                await self._ensure_group(again=True)
                continue
            found = entries(reply)
            if not found:
                return None
            entry_id, fields = found[0]
            batch = await self._accept(entry_id, fields, 1)
            if batch is not None:
                return batch

    async def _claim_abandoned(self) -> tuple[str, Any, int] | None:
        """One entry pending past ``claim_after`` with another (dead) consumer, now ours."""
        start = "0-0"
        for _ in range(100):  # a pending list is about as long as there are workers
            reply = await self.redis.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                min_idle_time=self.millis(self.claim_after),
                start_id=start,
                count=1,
            )
            still_running()
            start = text(reply[0])
            claimed = [(entry_id, fields) for entry_id, fields in reply[1] or [] if fields]
            if claimed:
                entry_id, fields = claimed[0]
                return text(entry_id), fields, await self._deliveries(text(entry_id))
            if start == "0-0":
                return None
        return None

    async def _prune(self) -> None:
        """Drop consumers that died long ago with nothing pending, so the group lists only
        workers that may still be alive (a live one asks for work every few seconds)."""
        try:
            consumers = await self.redis.xinfo_consumers(self.stream, self.group)
        except ResponseError:
            return
        for consumer in consumers:
            name = text(consumer["name"])
            if int(consumer["pending"]) or int(consumer["idle"]) < self.millis(self.prune_after):
                continue
            if int(await self._leave(keys=[self.stream], args=[self.group, name])):
                log.info("memory queue: forgot worker %s, silent for a long time", name)

    async def _deliveries(self, entry_id: str) -> int:
        pending = await self.redis.xpending_range(self.stream, self.group, entry_id, entry_id, 1)
        return int(pending[0]["times_delivered"]) if pending else 1

    async def _accept(self, entry_id: str, fields: Any, deliveries: int) -> MemoryBatch | None:
        """The batch of an entry this consumer now holds; None if it cannot be processed."""
        raw = field(fields, "batch")
        try:
            batch = MemoryBatch.from_json(raw)
        except (TypeError, ValueError, KeyError) as exc:
            log.error("memory queue: entry %s is not a batch (%s); dropped", entry_id, exc)
            await self._finish(entry_id)
            return None
        if deliveries > self.max_deliveries:
            # Every worker that took it stopped in it (a conversation that crashes the
            # process?): end the loop, tell whoever waits, leave the rest for the next trigger.
            log.error(
                "memory batch %s: given up after %d deliveries; its conversations stay eligible",
                batch.batch_id,
                deliveries,
            )
            why = "given up: every worker that took its batch stopped in it"
            report = BatchReport(
                eligible=len(batch.conversations),
                failed=len(batch.conversations),
                failures=[(thread_id, why) for _, thread_id in batch.conversations],
            )
            await self._store_report(batch, report)
            await self._finish(entry_id)
            return None
        self._entry_ids[batch.batch_id] = entry_id
        return batch

    async def ack(self, batch: MemoryBatch, report: BatchReport) -> None:
        """Store the batch's report and take the batch off the queue.

        A worker told to stop (SIGTERM) while acknowledging finishes the acknowledgement
        first: two quick round trips. Cut between them, the batch would stay pending with
        its report already out, and another worker would take it over only to skip it all.
        """
        acknowledging = asyncio.ensure_future(self._ack(batch, report))
        try:
            await asyncio.shield(acknowledging)
        except asyncio.CancelledError:
            await acknowledging
            raise

    async def _ack(self, batch: MemoryBatch, report: BatchReport) -> None:
        # The report first: a crash between the two leaves the batch to be taken over and
        # done again (skipping what is done), never a batch acknowledged without a report.
        await self._store_report(batch, report)
        entry_id = self._entry_ids.pop(batch.batch_id, None)
        if entry_id is not None:
            await self._finish(entry_id)

    async def _store_report(self, batch: MemoryBatch, report: BatchReport) -> None:
        key = self.done_key(batch.batch_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(key, {"report": report.to_json()}, maxlen=1)
            pipe.pexpire(key, self.millis(self.report_ttl))
            await pipe.execute()

    async def _finish(self, entry_id: str) -> None:
        # Acknowledged entries leave the stream: it holds only what is still to do.
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, entry_id)
            pipe.xdel(self.stream, entry_id)
            await pipe.execute()

    async def wait_for(self, batch: MemoryBatch) -> BatchReport:
        """The batch's report, from whichever process acknowledges it."""
        key = self.done_key(batch.batch_id)
        while True:
            # XREAD from 0 returns the report at once if it is there, else blocks until the
            # XADD that stores it: no polling, and every waiter is woken.
            reply = await self.redis.xread({key: "0-0"}, count=1, block=self.millis(2.0))
            still_running()
            found = entries(reply)
            if found:
                return BatchReport.from_json(field(found[0][1], "report"))

    async def report(self, batch: MemoryBatch) -> BatchReport | None:
        """The batch's report if it was acknowledged (and the report has not expired)."""
        found = await self.redis.xrange(self.done_key(batch.batch_id), count=1)
        return BatchReport.from_json(field(found[0][1], "report")) if found else None

    def lease(self, batch: MemoryBatch) -> RedisLease:
        entry_id = self._entry_ids.get(batch.batch_id)
        if entry_id is None:
            raise ValueError(f"batch {batch.batch_id} was not taken from this queue")
        return RedisLease(self, batch, entry_id)

    async def claim_trigger(self, interval: float) -> bool:
        # A little under the interval, so that whichever process wakes first in each
        # interval finds the key gone (their timers drift apart).
        ttl = self.millis(interval * 0.9)
        return bool(await self.redis.set(self.trigger_key, self.consumer, nx=True, px=ttl))

    async def backlog(self) -> int:
        return int(await self.redis.xlen(self.stream))

    async def close(self) -> None:
        """Leave the consumer group if nothing is pending here (else it is taken over)."""
        if not self._group_ready:
            return
        with contextlib.suppress(RedisConnectionError, RedisTimeoutError, ResponseError, OSError):
            await self._leave(keys=[self.stream], args=[self.group, self.consumer])

    async def pending(self) -> list[dict[str, Any]]:
        """The batches handed out and not acknowledged: entry id, consumer, idle ms, deliveries."""
        await self._ensure_group()
        rows = await self.redis.xpending_range(self.stream, self.group, "-", "+", 1000)
        return [
            {
                "entry_id": text(row["message_id"]),
                "consumer": text(row["consumer"]),
                "idle_ms": int(row["time_since_delivered"]),
                "deliveries": int(row["times_delivered"]),
            }
            for row in rows
        ]
