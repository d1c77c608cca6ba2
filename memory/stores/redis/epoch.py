"""A Redis that came back without its data (a restart with persistence off, a flush).

Each process remembers a token (``<prefix>:epoch``) that Redis holds while it keeps Echo's data.
A mutation that finds its conversation gone, or a reconnect, compares it: a different or
missing token means Redis lost everything, so the process writes back every conversation it
holds in memory before it goes on.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoPermissionError, ResponseError

from memory.records.models import Conversation
from memory.records.mutations import Mutation
from memory.stores.redis.urls import shown_url
from memory.stores.redis.writes import Missing

if TYPE_CHECKING:
    from memory.stores.redis.store import RedisStore

log = logging.getLogger(__name__)

__all__ = ["DataLossGuard"]


class DataLossGuard:
    """``RedisStore``'s epoch checks (methods only: the state is the store's)."""

    async def _adopt_epoch(self: RedisStore) -> None:
        """Remember the token that marks Redis's data as the data this process has seen."""
        key = self.keys.epoch
        try:
            await self.redis.set(key, uuid.uuid4().hex, nx=True)
        except NoPermissionError:
            if self.spool_dir is not None:  # a process that records: it must be let write
                raise
        except ResponseError as exc:  # a server refusing writes can still be read from
            log.debug("could not set %s: %s", key, exc)
        value = await self.redis.get(key)
        self._epoch = value.decode() if value is not None else None

    async def _restore_if_lost(self: RedisStore, *, drop_backlog: bool) -> bool:
        """If Redis came back without its data, put back every conversation this process
        holds in memory; True if it did.

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
            current = await self.redis.get(self.keys.epoch)
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
            await self.redis.delete(self.keys.epoch)
            await self._adopt_epoch()
            log.error(
                "Redis at %s came back without Echo's data (is its persistence off? see README, "
                "'Running on Redis'): %d conversation(s) active in this process were written "
                "back; older conversations and memories are gone from Redis",
                shown_url(self.url),
                len(snapshot),
            )
            return True

    async def _apply_or_restore(
        self: RedisStore, mutation: Mutation, marker: str, seq: str
    ) -> None:
        """Apply; if the conversation is gone because Redis lost its data, restore what this
        process holds in memory first, then apply."""
        try:
            await self._apply(mutation, marker, seq)
        except Missing:
            if not await self._restore_if_lost(drop_backlog=False):
                raise
            await self._apply(mutation, marker, seq)
