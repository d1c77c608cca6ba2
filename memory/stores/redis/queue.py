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
from types import TracebackType
from typing import Any, Protocol, Self

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from memory.longterm.queue import BatchLease, BatchReport, MemoryBatch, MemoryQueue, stop_task

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_CLAIM_AFTER", "RedisLease", "RedisMemoryQueue"]

DEFAULT_CLAIM_AFTER = 60.0
# How long a report waits for whoever asked for the batch (a /memory generate, say).
DEFAULT_REPORT_TTL = 24 * 3600
# A batch handed out this many times killed every worker that took it: give it up.
DEFAULT_MAX_DELIVERIES = 5
# A consumer silent this long with nothing pending is a worker that is gone.
DEFAULT_PRUNE_AFTER = 3600.0

# Re-claim the entry for its owner (resetting its idle time), unless another worker owns it
# by now. JUSTID: a heartbeat is not a delivery, so it does not count towards giving up.
_HEARTBEAT = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 or pending[1][2] ~= ARGV[3] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
return 1
"""
# Lock a conversation for this lease (ARGV[1]), unless a lease of another batch entry holds
# it; a lease of the same entry (ARGV[2] is "<entry>/") is a worker this one took over from.
_HOLD = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] and string.sub(held, 1, string.len(ARGV[2])) ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""
_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# A consumer leaves the group only with nothing pending: deleting it would orphan its entries.
_LEAVE = """
local mine = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #mine > 0 then return 0 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""


def _still_running() -> None:
    """Raise the cancellation redis-py may have swallowed.

    A cancellation that lands while redis-py reads the answer of a blocking command (XREAD,
    XREADGROUP) can be caught inside it and lost (redis/redis-py#2028): the command returns
    as if nothing happened, and a worker told to stop would wait for work forever. The task
    still counts the request (``cancelling()``), so honour it here.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class RedisBacked(Protocol):
    """What ``for_store`` needs: an opened ``RedisStore`` has both."""

    @property
    def redis(self) -> aioredis.Redis: ...

    @property
    def prefix(self) -> str: ...


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _field(fields: Any, name: str) -> Any:
    """A field of a stream entry, whether the client decodes responses or not."""
    if not isinstance(fields, dict):
        return None
    value = fields.get(name)
    return fields.get(name.encode()) if value is None else value


def _entries(reply: Any) -> list[tuple[str, Any]]:
    """The (id, fields) of an XREAD/XREADGROUP reply, in RESP2 (a list) or RESP3 (a dict)."""
    if not reply:
        return []
    streams = reply.items() if isinstance(reply, dict) else reply
    found: list[tuple[str, Any]] = []
    for _, entries in streams:
        if entries and isinstance(entries[0], list | tuple) and len(entries[0]) == 1:
            entries = entries[0]  # RESP3 wraps a stream's entries once more
        for entry_id, fields in entries:
            found.append((_text(entry_id), fields))
    return found


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
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._hold = client.register_script(_HOLD)
        self._refresh = client.register_script(_REFRESH)
        self._release = client.register_script(_RELEASE)
        self._leave = client.register_script(_LEAVE)

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

    def _ms(self, seconds: float) -> int:
        return max(1, int(seconds * 1000))

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
                    block=self._ms(wait) if wait > 0 else None,
                )
                _still_running()
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # The stream was deleted under us (an operator cleaning keys): start afresh.
                await self._ensure_group(again=True)
                continue
            found = _entries(reply)
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
                min_idle_time=self._ms(self.claim_after),
                start_id=start,
                count=1,
            )
            _still_running()
            start = _text(reply[0])
            claimed = [(entry_id, fields) for entry_id, fields in reply[1] or [] if fields]
            if claimed:
                entry_id, fields = claimed[0]
                return _text(entry_id), fields, await self._deliveries(_text(entry_id))
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
            name = _text(consumer["name"])
            if int(consumer["pending"]) or int(consumer["idle"]) < self._ms(self.prune_after):
                continue
            if int(await self._leave(keys=[self.stream], args=[self.group, name])):
                log.info("memory queue: forgot worker %s, silent for a long time", name)

    async def _deliveries(self, entry_id: str) -> int:
        pending = await self.redis.xpending_range(self.stream, self.group, entry_id, entry_id, 1)
        return int(pending[0]["times_delivered"]) if pending else 1

    async def _accept(self, entry_id: str, fields: Any, deliveries: int) -> MemoryBatch | None:
        """The batch of an entry this consumer now holds; None if it cannot be processed."""
        raw = _field(fields, "batch")
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
            pipe.pexpire(key, self._ms(self.report_ttl))
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
            reply = await self.redis.xread({key: "0-0"}, count=1, block=self._ms(2.0))
            _still_running()
            found = _entries(reply)
            if found:
                return BatchReport.from_json(_field(found[0][1], "report"))

    async def report(self, batch: MemoryBatch) -> BatchReport | None:
        """The batch's report if it was acknowledged (and the report has not expired)."""
        found = await self.redis.xrange(self.done_key(batch.batch_id), count=1)
        return BatchReport.from_json(_field(found[0][1], "report")) if found else None

    def lease(self, batch: MemoryBatch) -> RedisLease:
        entry_id = self._entry_ids.get(batch.batch_id)
        if entry_id is None:
            raise ValueError(f"batch {batch.batch_id} was not taken from this queue")
        return RedisLease(self, batch, entry_id)

    async def claim_trigger(self, interval: float) -> bool:
        # A little under the interval, so that whichever process wakes first in each
        # interval finds the key gone (their timers drift apart).
        ttl = self._ms(interval * 0.9)
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
                "entry_id": _text(row["message_id"]),
                "consumer": _text(row["consumer"]),
                "idle_ms": int(row["time_since_delivered"]),
                "deliveries": int(row["times_delivered"]),
            }
            for row in rows
        ]


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
        return self.queue._ms(self.queue.claim_after)

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
        if self.queue._entry_ids.get(self.batch.batch_id) != self.entry_id:
            return  # acknowledged after all
        self.queue._entry_ids.pop(self.batch.batch_id, None)
        # Idle as if silent for the whole claim timeout: the next worker takes it at once.
        idle = self.queue._ms(self.queue.claim_after) + 1000
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
        mine = await queue._heartbeat(
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
            await queue._refresh(keys=[key], args=[self.token, self._lock_ms])

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
        taken = await self.queue._hold(
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
        return held is not None and _text(held) == self.token

    async def release(self, guild_id: str, thread_id: str) -> None:
        key = self._locked.pop(thread_id, None)
        if key is not None:
            await self.queue._release(keys=[key], args=[self.token])
