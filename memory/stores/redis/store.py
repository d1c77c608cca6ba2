"""Conversations and memories in Redis, shared by every process of a large bot.

Redis is the source of truth: every mutation reaches it when it is recorded, and the
in-memory manager above is a cache. The keys are in ``keys``: everything of one guild shares
its hash tag, so each mutation is one atomic script or transaction on one Redis Cluster slot.

The store is made of parts, one module each: ``writes`` (mutations, whole conversations,
memories), ``reads`` (a conversation, the listings), ``changes`` (the change feed other
processes' caches follow), ``spool`` (recording while Redis is away), ``epoch`` (a Redis that
came back without its data), on ``connection`` (the shared pool) and ``encoding`` (hashes and
lists to and from records). ``save`` rewrites nothing (Redis already holds every mutation); it
only writes a conversation Redis does not have yet.

Opening waits for an unreachable Redis, retrying with backoff and saying so; a Redis that
refuses Echo (a password, an ACL) or a server that is not Redis is a ``StoreConfigError`` at
once (``refusals``), since no wait helps.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError, ResponseError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("RedisStore needs the 'redis' package: pip install -e '.[redis]'") from exc

from memory.errors import first_line
from memory.recording.journal import FsyncPolicy, Journal
from memory.records.models import Conversation
from memory.records.mutations import Create, Mutation
from memory.stores.base import ConversationStore, StoreError
from memory.stores.redis.batching import ScriptBatcher
from memory.stores.redis.changes import SCRUB, RedisChangeFeed
from memory.stores.redis.connection import UNREACHABLE, SharedPool, pool_for, reads, release_pool
from memory.stores.redis.epoch import DataLossGuard
from memory.stores.redis.keys import RedisKeys
from memory.stores.redis.reads import RedisReads
from memory.stores.redis.refusals import refusal
from memory.stores.redis.scripts import APPEND, CHANGED, CREATE
from memory.stores.redis.spool import OutageSpool
from memory.stores.redis.urls import shown_url
from memory.stores.redis.writes import RedisWrites

if TYPE_CHECKING:
    from memory.stores.redis.queue import RedisMemoryQueue

log = logging.getLogger(__name__)

__all__ = ["SCRUB", "RedisStore", "shown_url"]


class RedisStore(
    OutageSpool, DataLossGuard, RedisWrites, RedisReads, RedisChangeFeed, ConversationStore
):
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
        self.keys = RedisKeys(prefix)
        self.url = url
        self.prefix = prefix
        self.spool_dir = Path(spool_dir) if spool_dir is not None else None
        self.fsync = FsyncPolicy(fsync)
        self.wait_for_redis = wait_for_redis
        self._shared: SharedPool | None = None
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

    def guild_key(self, guild_id: str, *parts: str) -> str:
        """``<prefix>:{<guild>}:<parts...>``: every key of one guild shares one hash tag."""
        return self.keys.guild(guild_id, *parts)

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
        self._shared = pool_for(self.url)
        self._redis = aioredis.Redis(connection_pool=self._shared.pool)
        self._append_script = self._redis.register_script(APPEND)
        self._create_script = self._redis.register_script(CREATE)
        self._changed_script = self._redis.register_script(CHANGED)
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
            except UNREACHABLE as exc:
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

    async def _close(self) -> None:
        await self._close_spool()
        if self._appends is not None:
            await self._appends.aclose()
            self._appends = None
        if self._shared is not None:
            await release_pool(self.url, self._shared)
            self._shared = None
        self._redis = None

    # --- recording, saving, deleting ----------------------------------------------------------

    async def _record(self, mutation: Mutation) -> None:
        if isinstance(mutation, Create):
            self._guild_of[mutation.thread_id] = mutation.conversation.guild_id
        if self._spool is None:
            try:
                await self._apply_or_restore(mutation, "", "")
            except UNREACHABLE as exc:
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
            except UNREACHABLE as exc:
                # The write may or may not have happened; its sequence number makes the
                # flush skip it if it did.
                self._went_away(exc)
        await self._to_spool(mutation, seq)

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
            header_key = None if guild is None else self.keys.conversation(guild, thread)[0]
            if header_key is None or not await self.redis.exists(header_key):
                await self._put(conversation)
            else:
                await self._changed(None, guild, thread)
        except UNREACHABLE as exc:
            if self._spool is None:
                raise StoreError(
                    f"could not save conversation {thread}: {first_line(exc)}"
                ) from exc
            self._went_away(exc)
            self._held[thread] = conversation

    @reads
    async def _delete(self, thread_id: str) -> bool:
        self._held.pop(thread_id, None)
        guild = await self._guild(thread_id)
        if guild is None:
            return False
        try:
            return await self._purge(guild, thread_id)
        except UNREACHABLE as exc:
            raise StoreError(
                f"could not delete conversation {thread_id}: Redis is unreachable"
            ) from exc

    def memory_queue(self) -> RedisMemoryQueue:
        """The memory queue beside this store: a Redis Stream on its pool, under its prefix."""
        from memory.stores.redis.queue import RedisMemoryQueue

        return RedisMemoryQueue.for_store(self)

    def pinned_threads(self) -> set[str]:
        return set()

    def attach_cache(self, active: Callable[[], Iterable[Conversation]]) -> None:
        self._cache = active
