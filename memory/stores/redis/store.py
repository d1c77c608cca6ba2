"""Conversations and memories in Redis, shared by every process of a large bot.

Redis is the source of truth: every mutation reaches it when it is recorded, and the
in-memory manager above is a cache. Keys (``prefix`` defaults to ``echo``)::

    <prefix>:{<guild>}:conv:<thread>          hash   the header; one field per key, as JSON
    <prefix>:{<guild>}:conv:<thread>:log      list   the history, one message (JSON) per item
    <prefix>:{<guild>}:conv:<thread>:ids      set    Discord message ids recorded (dedupe)
    <prefix>:{<guild>}:conv:<thread>:people   list   participants, in order of arrival
    <prefix>:{<guild>}:convs                  zset   thread ids by creation time
    <prefix>:{<guild>}:mem:<thread>           string a MemoryRecord (JSON)
    <prefix>:{<guild>}:mems                   set    thread ids that have a memory
    <prefix>:{<guild>}:gen                    int    bumped whenever indexable data changes
    <prefix>:{<guild>}:changes                zset   thread ids by the generation they changed at
    <prefix>:threads                          hash   thread id -> guild id
    <prefix>:guilds                           set    guild ids

The ``{<guild>}`` hash tag puts everything of one guild on one Redis Cluster slot, so each
mutation is one atomic script or MULTI/EXEC, and a listing of guild 1 reads only keys that
start with ``<prefix>:{1}:`` (never guild 12's).

Appending is one Lua script: O(1), atomic, deduplicated by Discord message id; two processes
appending to one conversation interleave and lose nothing. Appends made at the same moment
(many conversations recording at once) share round trips (``autopipeline.ScriptBatcher``).
Rarer mutations (edit, delete, summary, end, forget) read the conversation under WATCH,
apply the same ``Mutation.apply`` the JSON store replays, and write back in MULTI/EXEC,
retrying if another process changed it.
``save`` rewrites nothing (Redis already holds every mutation); it only writes a conversation
Redis does not have yet.

**Outages.** With a ``spool_dir``, a mutation that cannot reach Redis goes to a local journal
(the write-ahead spool) and so does every one after it, in order, until Redis answers again;
then the spool is flushed in order. Each spooled mutation carries a sequence number that the
write itself records in the conversation's hash, so a flush cut short (or a write whose answer
was lost) is never applied twice. One warning is logged when Redis goes away, one line when it
is back. Opening waits for an unreachable Redis, retrying with backoff and saying so; a Redis
that refuses Echo (a password, an ACL) or a server that is not Redis is a ``StoreConfigError``
at once (``redis_refusals``), since no wait helps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

try:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import NoPermissionError, RedisError, ResponseError, WatchError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("RedisStore needs the 'redis' package: pip install -e '.[redis]'") from exc

from memory.errors import first_line
from memory.recording.journal import FsyncPolicy, Journal, JournalError
from memory.records.memories import MemoryRecord
from memory.records.models import Conversation, Message, validate_snowflake
from memory.records.mutations import (
    Append,
    Create,
    ForgetPerson,
    Mutation,
    MutationError,
    Purge,
    decode,
    encode,
)
from memory.stores.base import ConversationInfo, ConversationRef, ConversationStore, StoreError
from memory.stores.data_folder import lock_folder
from memory.stores.redis.batching import ScriptBatcher
from memory.stores.redis.refusals import refusal
from memory.stores.redis.urls import shown_url

if TYPE_CHECKING:
    from memory.stores.redis.queue import RedisMemoryQueue

log = logging.getLogger(__name__)

__all__ = ["SCRUB", "RedisStore", "shown_url"]

SCRUB = "scrub"
"""Listed among a guild's changes after a forget or a delete: caches of that guild must not
keep the deleted text in their bytes (see ``RecallIndex.scrub``)."""

# Errors that mean "Redis is not there right now", as opposed to a bad command.
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
_SLICE = 256
_PIPELINE_CHUNK = 1000
_SEQ_WIDTH = 20
_MAX_CONNECTIONS = 64

P = ParamSpec("P")
T = TypeVar("T")


def _reads(
    method: Callable[P, Awaitable[T]],
) -> Callable[P, Awaitable[T]]:
    """Redis unreachable, or refusing (READONLY, NOREPLICAS, OOM...), becomes a ``StoreError``
    saying so, as the store API promises."""

    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        store = args[0]
        url = shown_url(store.url) if isinstance(store, RedisStore) else "?"
        try:
            return await method(*args, **kwargs)
        except _UNREACHABLE as exc:
            raise StoreError(f"Redis at {url} is unreachable: {first_line(exc)}") from exc
        except ResponseError as exc:
            raise StoreError(f"Redis at {url} refused: {first_line(exc)}") from exc

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return call


_CREATE = """
if ARGV[1] ~= '' then
  local last = redis.call('HGET', KEYS[1], ARGV[1])
  if last and last >= ARGV[2] then return 2 end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
  return 0
end
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
local people = cjson.decode(ARGV[5])
for i = 1, #people do redis.call('RPUSH', KEYS[4], people[i]) end
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[3])
return 1
"""

# KEYS: hdr, log, ids, people
# ARGV: marker field ('' for none), seq, message JSON, message id ('' for none),
#       created (microseconds, zero-padded), created_at (JSON), requester ('' for none)
_APPEND = """
if ARGV[1] ~= '' then
  local last = redis.call('HGET', KEYS[1], ARGV[1])
  if last and last >= ARGV[2] then return 2 end
end
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
if ARGV[4] ~= '' and redis.call('SADD', KEYS[3], ARGV[4]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[3])
local updated = redis.call('HGET', KEYS[1], '_updated_us')
if (not updated) or ARGV[5] > updated then
  redis.call('HSET', KEYS[1], '_updated_us', ARGV[5], 'updated_at', ARGV[6])
end
if ARGV[7] ~= '' and not redis.call('LPOS', KEYS[4], ARGV[7]) then
  redis.call('RPUSH', KEYS[4], ARGV[7])
end
return 1
"""

# KEYS: gen, changes   ARGV: thread id
_CHANGED = """
local n = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], n, ARGV[1])
return n
"""

# One pool per process (per event loop, and per URL): every RedisStore and the memory queue
# of a process share connections instead of opening their own.
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _SharedPool]] = (
    weakref.WeakKeyDictionary()
)


class _SharedPool:
    def __init__(self, pool: aioredis.BlockingConnectionPool) -> None:
        self.pool = pool
        self.users = 0


def _pool_for(url: str) -> _SharedPool:
    loop = asyncio.get_running_loop()
    pools = _pools.setdefault(loop, {})
    shared = pools.get(url)
    if shared is None:
        # Blocking: past max_connections a caller waits for a free connection. The default
        # pool raises "Too many connections" instead, which would read as an outage.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=_MAX_CONNECTIONS,
            timeout=None,
            socket_connect_timeout=2.0,
            socket_timeout=5.0,
            health_check_interval=30,
            # One quick retry covers a pooled connection the server closed; an outage must
            # surface at once so mutations go to the spool instead of waiting here.
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1),
        )
        shared = pools[url] = _SharedPool(pool)
    shared.users += 1
    return shared


async def _release_pool(url: str, shared: _SharedPool) -> None:
    shared.users -= 1
    if shared.users > 0:
        return
    with contextlib.suppress(RuntimeError):
        pools = _pools.get(asyncio.get_running_loop(), {})
        if pools.get(url) is shared:
            del pools[url]
    await shared.pool.aclose()


class _Missing(StoreError):
    """The conversation a mutation applies to is not in Redis."""


class RedisStore(ConversationStore):
    """Conversations, memories and their listings in Redis (see the module docstring)."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        prefix: str = "echo",
        spool_dir: str | os.PathLike[str] | None = None,
        *,
        fsync: FsyncPolicy | str = FsyncPolicy.EVERYSEC,
        wait_for_redis: float | None = None,
    ) -> None:
        """``spool_dir``: where mutations wait while Redis is unreachable (one process per
        folder); without it such a mutation raises ``StoreError``. ``wait_for_redis``: how
        long ``open`` retries an unreachable server (None: until it answers)."""
        super().__init__()
        if not prefix or any(c in prefix for c in "{}: *?[]"):
            raise ValueError(f"prefix must be a plain word, got {prefix!r}")
        self.url = url
        self.prefix = prefix
        self.spool_dir = Path(spool_dir) if spool_dir is not None else None
        self.fsync = FsyncPolicy(fsync)
        self.wait_for_redis = wait_for_redis
        self._shared: _SharedPool | None = None
        self._redis: aioredis.Redis | None = None
        self._guild_of: dict[str, str] = {}
        self._append_script: Any = None
        self._create_script: Any = None
        self._changed_script: Any = None
        self._appends: ScriptBatcher | None = None
        # The spool: a journal on disk for crashes, a queue in memory for the flush.
        self._spool: Journal | None = None
        self._lock_fd: int | None = None
        self._spool_id = ""
        self._marker = ""
        self._last_seq = 0
        self._backlog: deque[tuple[int, str, dict[str, Any]]] = deque()
        self._spool_lock = asyncio.Lock()
        self._online = True
        self._reconnect: asyncio.Task[None] | None = None
        self._wake = False
        self._epoch: str | None = None
        self._restore_lock = asyncio.Lock()
        self._cache: Callable[[], Iterable[Conversation]] | None = None
        # Conversations saved (evicted) while Redis was away: a resume must find them.
        self._held: dict[str, Conversation] = {}

    def __repr__(self) -> str:
        return f"RedisStore({shown_url(self.url)!r}, prefix={self.prefix!r})"

    # --- keys ---------------------------------------------------------------------------------

    def guild_key(self, guild_id: str, *parts: str) -> str:
        """``<prefix>:{<guild>}:<parts...>``: every key of one guild shares one hash tag."""
        return ":".join((f"{self.prefix}:{{{guild_id}}}", *parts))

    def _conv_keys(self, guild_id: str, thread_id: str) -> list[str]:
        hdr = self.guild_key(guild_id, "conv", thread_id)
        return [hdr, f"{hdr}:log", f"{hdr}:ids", f"{hdr}:people"]

    @property
    def _threads_key(self) -> str:
        return f"{self.prefix}:threads"

    @property
    def _guilds_key(self) -> str:
        return f"{self.prefix}:guilds"

    @property
    def redis(self) -> aioredis.Redis:
        """The process's shared client (open the store first)."""
        if self._redis is None:
            raise StoreError(f"{self!r} is not open (use 'async with store:')")
        return self._redis

    @property
    def online(self) -> bool:
        """False while Redis is unreachable and mutations go to the spool."""
        return self._online

    @property
    def records_while_away(self) -> bool:
        """With a spool, a mutation is accepted while Redis cannot be read (``Spooling``)."""
        return self._spool is not None

    @property
    def caught_up(self) -> bool:
        """Redis answers and holds every mutation recorded so far (``Spooling``)."""
        return self._online and not self._backlog

    # --- life cycle ---------------------------------------------------------------------------

    async def _open(self) -> None:
        self._shared = _pool_for(self.url)
        self._redis = aioredis.Redis(connection_pool=self._shared.pool)
        self._append_script = self._redis.register_script(_APPEND)
        self._create_script = self._redis.register_script(_CREATE)
        self._changed_script = self._redis.register_script(_CHANGED)
        self._appends = ScriptBatcher(self._redis)
        try:
            await self._wait_until_reachable()
            await self._adopt_epoch()
            if self.spool_dir is not None:
                self._open_spool()
        except RedisError as exc:  # not an outage (that waits above): a refusal, a non-Redis
            await self._close()
            refused = refusal(exc, self.url)
            if refused is not None:
                raise refused from None
            raise StoreError(f"Redis at {shown_url(self.url)} refused: {first_line(exc)}") from exc
        except BaseException:
            await self._close()
            raise
        log.debug("opened %r", self)

    async def _wait_until_reachable(self) -> None:
        delay = 0.5
        started = time.monotonic()
        while True:
            try:
                await self.redis.ping()
                if time.monotonic() - started > 0.1:
                    log.info("Redis at %s answers; starting", shown_url(self.url))
                return
            except _UNREACHABLE as exc:
                if (refused := refusal(exc, self.url)) is not None:
                    raise refused from None
                waited = time.monotonic() - started
                if self.wait_for_redis is not None and waited >= self.wait_for_redis:
                    raise StoreError(
                        f"Redis at {shown_url(self.url)} is unreachable: {first_line(exc)}"
                    ) from exc
                pause = delay
                if self.wait_for_redis is not None:
                    pause = min(pause, max(0.05, self.wait_for_redis - waited))
                log.warning(
                    "Redis at %s is unreachable (%s); retrying in %.1f s",
                    shown_url(self.url),
                    first_line(exc),
                    pause,
                )
                await asyncio.sleep(pause)
                delay = min(delay * 2, 30.0)

    def _open_spool(self) -> None:
        assert self.spool_dir is not None
        try:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = lock_folder(self.spool_dir)
            id_file = self.spool_dir / "spool-id"
            if id_file.is_file():
                self._spool_id = id_file.read_text().strip()
            if not self._spool_id.isalnum():
                self._spool_id = uuid.uuid4().hex[:16]
                id_file.write_text(self._spool_id + "\n")
            self._spool = Journal(self.spool_dir / "journal", self.fsync)
            self._spool.open()
        except OSError as exc:
            raise StoreError(f"cannot use spool folder {self.spool_dir}: {exc}") from exc
        self._marker = f"_s:{self._spool_id}"

    async def _close(self) -> None:
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect
            self._reconnect = None
        if self._spool is not None:
            if self._backlog:
                log.warning(
                    "%d mutation(s) wait in the spool %s for Redis; they are flushed at the "
                    "next start",
                    len(self._backlog),
                    self.spool_dir,
                )
            with contextlib.suppress(JournalError):
                await self._spool.close()
            self._spool = None
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        if self._appends is not None:
            await self._appends.aclose()
            self._appends = None
        if self._shared is not None:
            await _release_pool(self.url, self._shared)
            self._shared = None
        self._redis = None

    async def _recover(self) -> list[Conversation]:
        """Flush what a spool of an earlier run holds (a bot killed during an outage)."""
        spool = self._spool
        if spool is None or not spool.has_leftovers:
            return []
        records = [r.data for r in spool.read_leftovers()]
        flushed = kept = 0
        for data in records:
            try:
                await self._apply_spooled(data)
            except (MutationError, StoreError) as exc:
                self._set_aside(data, exc)
                kept += 1
                continue
            except _UNREACHABLE as exc:
                raise StoreError(
                    f"Redis went away while flushing the spool {self.spool_dir}: "
                    f"{first_line(exc)}; it is kept and flushed at the next start"
                ) from exc
            flushed += 1
        spool.discard_leftovers()
        log.info(
            "flushed %d mutation(s) an earlier run left in the spool %s", flushed, self.spool_dir
        )
        if kept:
            log.warning("%d spooled mutation(s) could not be applied and are kept (above)", kept)
        return []

    # --- sequence numbers ---------------------------------------------------------------------

    def _next_seq(self) -> str:
        """Increasing across this spool's runs: wall-clock microseconds, forced up by one."""
        seq = max(self._last_seq + 1, time.time_ns() // 1000)
        self._last_seq = seq
        return str(seq).zfill(_SEQ_WIDTH)

    # --- recording ----------------------------------------------------------------------------

    async def _record(self, mutation: Mutation) -> None:
        if isinstance(mutation, Create):
            self._guild_of[mutation.thread_id] = mutation.conversation.guild_id
        if self._spool is None:
            try:
                await self._apply_or_restore(mutation, "", "")
            except _UNREACHABLE as exc:
                raise StoreError(
                    f"Redis at {shown_url(self.url)} is unreachable: {first_line(exc)}"
                ) from exc
            except ResponseError as exc:
                raise StoreError(f"Redis at {shown_url(self.url)} refused: {exc}") from exc
            return
        seq = self._next_seq()
        if self._online and not self._backlog:
            try:
                await self._apply_or_restore(mutation, self._marker, seq)
                return
            except ResponseError as exc:
                raise StoreError(f"Redis at {shown_url(self.url)} refused: {exc}") from exc
            except _UNREACHABLE as exc:
                # The write may or may not have happened; its sequence number makes the
                # flush skip it if it did.
                self._went_away(exc)
        await self._to_spool(mutation, seq)

    async def _to_spool(self, mutation: Mutation, seq: str) -> None:
        assert self._spool is not None
        record = {
            "seq": seq,
            "spool": self._spool_id,
            "guild": self._guild_of.get(mutation.thread_id),
            "mutation": json.loads(encode(mutation)),
        }
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        async with self._spool_lock:
            try:
                position = await self._spool.append(mutation.thread_id, line)
            except JournalError as exc:
                raise StoreError(
                    f"Redis is unreachable and the spool {self.spool_dir} cannot be written: {exc}"
                ) from exc
            self._backlog.append((position, mutation.thread_id, record))
        if self._online:
            # A flush was in progress (it drains the backlog) or just finished: make sure
            # someone drains this record.
            self._start_reconnect()

    def _went_away(self, exc: BaseException) -> None:
        if self._online:
            self._online = False
            log.warning(
                "Redis at %s is unreachable (%s); recording to the spool %s until it is back",
                shown_url(self.url),
                first_line(exc),
                self.spool_dir,
            )
        self._start_reconnect()

    def _start_reconnect(self) -> None:
        self._wake = True
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.get_running_loop().create_task(
                self._reconnect_and_flush(), name="echo-redis-reconnect"
            )

    async def _reconnect_and_flush(self) -> None:
        """Wait for Redis, flush the spool, go back online; again if asked while finishing."""
        delay = 0.2
        flushed = 0
        while True:
            self._wake = False
            try:
                await self.redis.ping()
                await self._restore_if_lost(drop_backlog=True)
                flushed += await self._flush()
            except (*_UNREACHABLE, ResponseError) as exc:  # away, or refusing writes for now
                self._went_away(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            async with self._spool_lock:
                if self._backlog:
                    continue
                was_offline = not self._online
                self._online = True
                held, self._held = self._held, {}
            if was_offline:
                log.info(
                    "Redis at %s is back: %d spooled mutation(s) flushed",
                    shown_url(self.url),
                    flushed,
                )
                flushed = 0
            for conversation in held.values():  # saved while away: other processes' caches
                with contextlib.suppress(*_UNREACHABLE):
                    await self._changed(None, conversation.guild_id, conversation.thread_id)
            # Nothing awaits between this check and the return, so a record spooled after it
            # finds this task done and starts another.
            if not self._wake and self._online and not self._backlog:
                return

    async def _flush(self) -> int:
        """Apply the backlog in order; each record is dropped only once Redis has it."""
        assert self._spool is not None
        flushed = 0
        while self._backlog:
            position, thread_id, record = self._backlog[0]
            try:
                await self._apply_spooled(record)
            except (MutationError, StoreError) as exc:
                self._set_aside(record, exc)
            self._backlog.popleft()
            self._spool.mark_saved(thread_id, position)
            flushed += 1
        return flushed

    def _set_aside(self, record: dict[str, Any], exc: Exception) -> None:
        """A spooled mutation Redis cannot take (its conversation is gone from Redis): kept in
        a file for the operator, never silently dropped."""
        assert self.spool_dir is not None
        target = self.spool_dir / f"orphaned-{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}.jsonl"
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        data = record.get("mutation")
        data = data if isinstance(data, dict) else {}
        log.error(
            "a spooled %s of thread %s cannot be applied (%s); kept in %s",
            data.get("op"),
            data.get("thread_id"),
            exc,
            target,
        )

    async def _apply_spooled(self, record: dict[str, Any]) -> None:
        data, seq = record.get("mutation"), record.get("seq")
        if not isinstance(data, dict) or not isinstance(seq, str) or not seq.isdigit():
            # JSON, but not a spool record (damaged, or hand-edited): kept, never applied.
            raise MutationError("not a spooled mutation (no mutation and sequence number)")
        mutation = decode(data)
        guild = record.get("guild")
        if isinstance(guild, str) and guild.isdigit():
            self._guild_of.setdefault(mutation.thread_id, guild)
        spool = record.get("spool")
        marker = f"_s:{spool if isinstance(spool, str) and spool.isalnum() else self._spool_id}"
        await self._apply(mutation, marker, seq)

    async def _apply_or_restore(self, mutation: Mutation, marker: str, seq: str) -> None:
        """Apply; if the conversation is gone because Redis lost its data, restore what this
        process holds in memory first, then apply."""
        try:
            await self._apply(mutation, marker, seq)
        except _Missing:
            if not await self._restore_if_lost(drop_backlog=False):
                raise
            await self._apply(mutation, marker, seq)

    # --- a Redis that lost its data -----------------------------------------------------------

    @property
    def _epoch_key(self) -> str:
        return f"{self.prefix}:epoch"

    async def _adopt_epoch(self) -> None:
        """Remember the token that marks Redis's data as the data this process has seen."""
        try:
            await self.redis.set(self._epoch_key, uuid.uuid4().hex, nx=True)
        except NoPermissionError:
            if self.spool_dir is not None:  # a process that records: it must be let write
                raise
        except ResponseError as exc:  # a server refusing writes can still be read from
            log.debug("could not set %s: %s", self._epoch_key, exc)
        value = await self.redis.get(self._epoch_key)
        self._epoch = value.decode() if value is not None else None

    async def _restore_if_lost(self, *, drop_backlog: bool) -> bool:
        """If Redis came back without its data (a restart with persistence off, a flush), put
        back every conversation this process holds in memory; True if it did.

        A snapshot is taken at once, with no await between reading the manager's conversations
        and dropping the spooled records they already contain: every spooled record is applied
        to the manager's copy in the same step it enters the backlog, so none is lost or
        applied twice. Older conversations and memories are gone with Redis's data; the log
        says so.
        """
        async with self._restore_lock:
            if self._epoch is None:  # never known: nothing to compare with yet
                await self._adopt_epoch()
                return False
            current = await self.redis.get(self._epoch_key)
            if current is not None and current.decode() == self._epoch:
                return False
            snapshot: dict[str, Conversation] = {}
            for conversation in [*(self._cache() if self._cache else []), *self._held.values()]:
                snapshot[conversation.thread_id] = conversation.model_copy(deep=True)
            if drop_backlog and self._spool is not None:
                kept: deque[tuple[int, str, dict[str, Any]]] = deque()
                for position, thread_id, record in self._backlog:
                    if thread_id in snapshot:
                        self._spool.mark_saved(thread_id, position)
                    else:
                        kept.append((position, thread_id, record))
                self._backlog = kept
            for conversation in snapshot.values():
                await self._put(conversation)
            await self.redis.delete(self._epoch_key)
            await self._adopt_epoch()
            log.error(
                "Redis at %s came back without Echo's data (is its persistence off? see README, "
                "'Running on Redis'): %d conversation(s) active in this process were written "
                "back; older conversations and memories are gone from Redis",
                shown_url(self.url),
                len(snapshot),
            )
            return True

    async def _apply(self, mutation: Mutation, marker: str, seq: str) -> None:
        if isinstance(mutation, Create):
            await self._apply_create(mutation.conversation, marker, seq)
            return
        guild = await self._guild(mutation.thread_id)
        if guild is None:
            raise _Missing(f"no conversation for thread {mutation.thread_id} in Redis")
        if isinstance(mutation, Append):
            await self._apply_append(guild, mutation, marker, seq)
        elif isinstance(mutation, Purge):
            await self._purge(guild, mutation.thread_id)
        else:
            await self._rewrite(guild, mutation, marker, seq)

    async def _apply_create(self, conversation: Conversation, marker: str, seq: str) -> None:
        guild, thread = conversation.guild_id, conversation.thread_id
        # The lookup first: a crash before the create leaves a pointer to nothing (read as
        # "no conversation"), never a conversation that cannot be found.
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self._threads_key, thread, guild)
        pipe.sadd(self._guilds_key, guild)
        await pipe.execute()
        args: list[Any] = [
            marker,
            seq,
            thread,
            _score(conversation.created_at),
            json.dumps(list(conversation.participants)),
        ]
        for field, value in _header_fields(conversation).items():
            args.extend((field, value))
        keys = [*self._conv_keys(guild, thread), self.guild_key(guild, "convs")]
        await self._create_script(keys=keys, args=args)

    async def _apply_append(self, guild: str, mutation: Append, marker: str, seq: str) -> None:
        message = mutation.message
        created = message.created_at
        assert self._appends is not None
        result = await self._appends.call(
            self._append_script,
            self._conv_keys(guild, mutation.thread_id),
            [
                marker,
                seq,
                message.to_json(),
                message.message_id or "",
                _micros(created),
                json.dumps(created.isoformat()),
                message.requester or "",
            ],
        )
        if result == -1:
            raise _Missing(f"no conversation for thread {mutation.thread_id} in Redis")

    async def _rewrite(self, guild: str, mutation: Mutation, marker: str, seq: str) -> None:
        """Read under WATCH, apply, write back in MULTI/EXEC; again if someone else wrote."""
        keys = self._conv_keys(guild, mutation.thread_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(*keys)
                    if marker:
                        last = await pipe.hget(keys[0], marker)
                        if last is not None and last.decode() >= seq:
                            await pipe.reset()
                            return
                    header = await pipe.hgetall(keys[0])
                    if not header:
                        raise _Missing(f"no conversation for thread {mutation.thread_id} in Redis")
                    items = await pipe.lrange(keys[1], 0, -1)
                    people = await pipe.lrange(keys[3], 0, -1)
                    conversation = await _build(header, items, people)
                    before = list(conversation.history)
                    mutation.apply(conversation)
                    pipe.multi()
                    _write_back(pipe, keys, conversation, before, items)
                    if isinstance(mutation, ForgetPerson):
                        await self._changed(pipe, guild, mutation.thread_id)
                        await self._changed(pipe, guild, SCRUB)
                    if marker:
                        pipe.hset(keys[0], marker, seq)
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    async def _purge(self, guild: str, thread_id: str) -> bool:
        keys = self._conv_keys(guild, thread_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(*keys)
        pipe.zrem(self.guild_key(guild, "convs"), thread_id)
        await self._changed(pipe, guild, thread_id)
        await self._changed(pipe, guild, SCRUB)
        results = await pipe.execute()
        await self.redis.hdel(self._threads_key, thread_id)
        return bool(results[0])

    async def _guild(self, thread_id: str) -> str | None:
        guild = self._guild_of.get(thread_id)
        if guild is None:
            raw = await self.redis.hget(self._threads_key, thread_id)
            if raw is None:
                return None
            guild = raw.decode()
            self._guild_of[thread_id] = guild
        return guild

    # --- saving and loading -------------------------------------------------------------------

    async def _save(self, conversation: Conversation) -> None:
        """Redis has every recorded mutation already: write only what it lacks."""
        thread = conversation.thread_id
        self._guild_of.setdefault(thread, conversation.guild_id)
        if not self._online or self._backlog:
            # Its mutations wait in the spool; until they are flushed, a resume finds it here.
            self._held[thread] = conversation
            return
        try:
            guild = await self._guild(thread)
            if guild is None or not await self.redis.exists(self._conv_keys(guild, thread)[0]):
                await self._put(conversation)
            else:
                await self._changed(None, guild, thread)
        except _UNREACHABLE as exc:
            if self._spool is None:
                raise StoreError(
                    f"could not save conversation {thread}: {first_line(exc)}"
                ) from exc
            self._went_away(exc)
            self._held[thread] = conversation

    @_reads
    async def _put(self, conversation: Conversation) -> None:
        guild, thread = conversation.guild_id, conversation.thread_id
        keys = self._conv_keys(guild, thread)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hset(self._threads_key, thread, guild)
            pipe.sadd(self._guilds_key, guild)
            await pipe.execute()
            pipe = self.redis.pipeline(transaction=True)
            pipe.delete(*keys)
            pipe.hset(keys[0], mapping=_header_fields(conversation))
            history = [m.to_json() for m in conversation.history]
            for start in range(0, len(history), _PIPELINE_CHUNK):
                pipe.rpush(keys[1], *history[start : start + _PIPELINE_CHUNK])
            ids = [m.message_id for m in conversation.history if m.message_id]
            if ids:
                pipe.sadd(keys[2], *ids)
            pipe.rpush(keys[3], *conversation.participants)
            pipe.zadd(self.guild_key(guild, "convs"), {thread: _score(conversation.created_at)})
            await self._changed(pipe, guild, thread)
            await pipe.execute()
        except _UNREACHABLE as exc:
            raise StoreError(f"could not write conversation {thread}: {first_line(exc)}") from exc
        self._guild_of[thread] = guild

    @_reads
    async def _load(self, thread_id: str) -> Conversation | None:
        held = self._held.get(thread_id)
        if held is not None:
            return held
        try:
            guild = await self._guild(thread_id)
            if guild is None:
                return None
            keys = self._conv_keys(guild, thread_id)
            pipe = self.redis.pipeline(transaction=True)
            pipe.hgetall(keys[0])
            pipe.lrange(keys[1], 0, -1)
            pipe.lrange(keys[3], 0, -1)
            header, items, people = await pipe.execute()
        except _UNREACHABLE as exc:
            raise StoreError(
                f"cannot read conversation {thread_id}: Redis is unreachable ({first_line(exc)})"
            ) from exc
        if not header:
            return None
        try:
            return await _build(header, items, people)
        except ValueError as exc:
            log.error(
                "conversation %s in Redis (%s) does not parse, left as it is: %s",
                thread_id,
                keys[0],
                first_line(exc),
            )
            return None

    @_reads
    async def _exists(self, thread_id: str) -> bool:
        if thread_id in self._held:
            return True
        guild = await self._guild(thread_id)
        if guild is None:
            return False
        return bool(await self.redis.exists(self._conv_keys(guild, thread_id)[0]))

    @_reads
    async def _delete(self, thread_id: str) -> bool:
        self._held.pop(thread_id, None)
        guild = await self._guild(thread_id)
        if guild is None:
            return False
        try:
            return await self._purge(guild, thread_id)
        except _UNREACHABLE as exc:
            raise StoreError(
                f"could not delete conversation {thread_id}: Redis is unreachable"
            ) from exc

    # --- listings -----------------------------------------------------------------------------

    async def _guild_ids(self, guild_id: str | None) -> list[str]:
        if guild_id is not None:
            return [guild_id]
        return sorted((g.decode() for g in await self.redis.smembers(self._guilds_key)), key=int)

    @_reads
    async def _list(self, guild_id: str | None) -> list[ConversationRef]:
        refs: list[ConversationRef] = []
        for guild in await self._guild_ids(guild_id):
            threads = await self.redis.zrange(self.guild_key(guild, "convs"), 0, -1)
            ids = [t.decode() for t in threads]
            for start in range(0, len(ids), _PIPELINE_CHUNK):
                chunk = ids[start : start + _PIPELINE_CHUNK]
                pipe = self.redis.pipeline(transaction=False)
                for thread in chunk:
                    pipe.hmget(self._conv_keys(guild, thread)[0], "requester", "created_at")
                for thread, (requester, created) in zip(chunk, await pipe.execute(), strict=True):
                    if requester is None or created is None:
                        continue
                    location = f"redis {self._conv_keys(guild, thread)[0]}"
                    try:
                        day = datetime.fromisoformat(json.loads(created)).astimezone(UTC).date()
                        owner = validate_snowflake(json.loads(requester), "requester")
                    except (ValueError, TypeError) as exc:
                        log.error("%s does not parse, left as it is: %s", location, exc)
                        continue
                    refs.append(ConversationRef(thread, guild, owner, day, location))
        return refs

    @_reads
    async def _list_guilds(self) -> list[str]:
        guilds = await self._guild_ids(None)
        pipe = self.redis.pipeline(transaction=False)
        for guild in guilds:
            pipe.zcard(self.guild_key(guild, "convs"))
        counts = await pipe.execute()
        return [g for g, n in zip(guilds, counts, strict=True) if n]

    @_reads
    async def _infos(self, guild_id: str | None) -> list[ConversationInfo]:
        infos: list[ConversationInfo] = []
        for guild in await self._guild_ids(guild_id):
            threads = [
                t.decode() for t in await self.redis.zrange(self.guild_key(guild, "convs"), 0, -1)
            ]
            for start in range(0, len(threads), _PIPELINE_CHUNK):
                chunk = threads[start : start + _PIPELINE_CHUNK]
                pipe = self.redis.pipeline(transaction=False)
                for thread in chunk:
                    keys = self._conv_keys(guild, thread)
                    pipe.hgetall(keys[0])
                    pipe.lrange(keys[3], 0, -1)
                results = await pipe.execute()
                for header, people in zip(results[0::2], results[1::2], strict=True):
                    if not header:
                        continue
                    try:
                        conversation = Conversation.model_validate(_header(header, people))
                    except ValueError as exc:
                        log.error(
                            "a conversation header of guild %s does not parse: %s", guild, exc
                        )
                        continue
                    infos.append(ConversationInfo.of(conversation))
        return infos

    async def _changed(self, pipe: Any, guild: str, thread: str) -> None:
        """Note that this conversation (or its memory) changed, for other processes' caches.

        With ``pipe``, queued in that transaction; otherwise sent at once.
        """
        keys = [self.guild_key(guild, "gen"), self.guild_key(guild, "changes")]
        if pipe is None:
            await self._changed_script(keys=keys, args=[thread])
        else:
            await self._changed_script(keys=keys, args=[thread], client=pipe)

    def memory_queue(self) -> RedisMemoryQueue:
        """The memory queue beside this store: a Redis Stream on its pool, under its prefix."""
        from memory.stores.redis.queue import RedisMemoryQueue

        return RedisMemoryQueue.for_store(self)

    @_reads
    async def changes_since(self, guild_id: str, generation: int | None) -> tuple[int, set[str]]:
        """The guild's generation now, and the threads whose conversation or memory changed
        after ``generation`` (all that ever changed, for None); ``SCRUB`` among them if text
        was deleted since (a forget, a deleted conversation or memory).

        The recall index of each process uses it to catch up with what other processes wrote.
        """
        guild = validate_snowflake(guild_id, "guild_id")
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(self.guild_key(guild, "gen"))
        low = "-inf" if generation is None else f"({generation}"
        pipe.zrangebyscore(self.guild_key(guild, "changes"), low, "+inf")
        now, threads = await pipe.execute()
        return int(now or 0), {t.decode() for t in threads}

    # --- memories -----------------------------------------------------------------------------

    @_reads
    async def _save_memory(self, record: MemoryRecord) -> None:
        guild = record.guild_id
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.sadd(self._guilds_key, guild)
            await pipe.execute()
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(self.guild_key(guild, "mem", record.thread_id), record.to_json())
            pipe.sadd(self.guild_key(guild, "mems"), record.thread_id)
            await self._changed(pipe, guild, record.thread_id)
            await pipe.execute()
        except _UNREACHABLE as exc:
            raise StoreError(
                f"could not save the memory of {record.thread_id}: Redis is unreachable"
            ) from exc

    @_reads
    async def _load_memory(self, guild_id: str, thread_id: str) -> MemoryRecord | None:
        key = self.guild_key(guild_id, "mem", thread_id)
        data = await self.redis.get(key)
        return None if data is None else _memory(key, data)

    @_reads
    async def _list_memories(self, guild_id: str) -> list[MemoryRecord]:
        members = await self.redis.smembers(self.guild_key(guild_id, "mems"))
        threads = sorted(t.decode() for t in members)
        records: list[MemoryRecord] = []
        for start in range(0, len(threads), _PIPELINE_CHUNK):
            chunk = threads[start : start + _PIPELINE_CHUNK]
            keys = [self.guild_key(guild_id, "mem", t) for t in chunk]
            for key, data in zip(keys, await self.redis.mget(keys), strict=True):
                if data is not None and (record := _memory(key, data)) is not None:
                    records.append(record)
        return records

    @_reads
    async def _delete_memory(self, guild_id: str, thread_id: str) -> bool:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.guild_key(guild_id, "mem", thread_id))
        pipe.srem(self.guild_key(guild_id, "mems"), thread_id)
        await self._changed(pipe, guild_id, thread_id)
        await self._changed(pipe, guild_id, SCRUB)
        deleted = (await pipe.execute())[0]
        return bool(deleted)

    def pinned_threads(self) -> set[str]:
        return set()

    def attach_cache(self, active: Callable[[], Iterable[Conversation]]) -> None:
        self._cache = active


# --- encoding -----------------------------------------------------------------------------------


def _header_fields(conversation: Conversation) -> dict[str, str]:
    """The hash fields of a header: each value as JSON; participants live in their own list."""
    fields = {
        key: json.dumps(value, ensure_ascii=False)
        for key, value in conversation.header().items()
        if key != "participants"
    }
    fields["_updated_us"] = _micros(conversation.updated_at)
    return fields


def _header(raw: dict[bytes, bytes], people: list[bytes]) -> dict[str, Any]:
    header: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.decode()
        if not name.startswith("_"):
            header[name] = json.loads(value)
    header["participants"] = [p.decode() for p in people]
    return header


async def _build(raw: dict[bytes, bytes], items: list[bytes], people: list[bytes]) -> Conversation:
    """A conversation from its hash, history and participants; ``ValueError`` if invalid."""
    conversation = Conversation.model_validate(_header(raw, people))
    messages: list[Message] = []
    for start in range(0, len(items), _SLICE):
        messages.extend(Message.model_validate_json(m) for m in items[start : start + _SLICE])
        if start + _SLICE < len(items):
            await asyncio.sleep(0)
    conversation.restore_history(messages)
    return conversation


def _write_back(
    pipe: Any,
    keys: list[str],
    conversation: Conversation,
    before: list[Message],
    items: list[bytes],
) -> None:
    """Queue the writes that turn the stored conversation into ``conversation``."""
    hdr, log_key, ids_key, people_key = keys
    after = conversation.history
    pipe.hset(hdr, mapping=_header_fields(conversation))
    if "ended_at" not in conversation.header():
        pipe.hdel(hdr, "ended_at")
    pipe.delete(people_key)
    pipe.rpush(people_key, *conversation.participants)
    if len(after) == len(before):
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            if old is not new:
                pipe.lset(log_key, index, new.to_json())
        return
    # Messages went (a delete, a forget): write the list anew, reusing the stored JSON.
    stored = {id(m): items[i] for i, m in enumerate(before)}
    pipe.delete(log_key)
    lines = [stored.get(id(m)) or m.to_json().encode() for m in after]
    for start in range(0, len(lines), _PIPELINE_CHUNK):
        pipe.rpush(log_key, *lines[start : start + _PIPELINE_CHUNK])
    pipe.delete(ids_key)
    ids = [m.message_id for m in after if m.message_id]
    if ids:
        pipe.sadd(ids_key, *ids)


def _memory(key: str, data: bytes) -> MemoryRecord | None:
    try:
        return MemoryRecord.from_json(data)
    except ValueError as exc:
        log.warning("memory %s in Redis does not parse, left as it is: %s", key, first_line(exc))
        return None


def _micros(moment: datetime) -> str:
    """Microseconds since the epoch, zero-padded so that Lua compares them as strings."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return str(micros).zfill(_SEQ_WIDTH)


def _score(moment: datetime) -> float:
    return moment.timestamp()
