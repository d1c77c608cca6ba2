"""Keeps the recall index in step with the store, and answers recall questions.

Conversations are reindexed when saved and dropped when deleted; a memory is indexed when
it is made. On start the index catches up with whatever was written without it (``sync``),
in the background so start-up does not wait for it.

On a shared store (Redis) other processes write too: a bot process saves conversations, a
memory worker makes memories. Such a store tells which threads of a guild changed since a
generation (``changes_since``); before each search the index reindexes exactly those, so a
search never misses what another process wrote. The generation last caught up with is kept
beside the index, so a restart catches up with what changed while it was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from memory.recall.index import RecallIndex
from memory.recall.ranking import RecallHit
from memory.recall.semantic import Searcher
from memory.recall.sync import index_conversation, sync
from memory.recording.manager import ConversationEvent, InMemoryConversationManager
from memory.records.memories import MemoryRecord
from memory.records.models import Conversation
from memory.stores import ChangeFeed

log = logging.getLogger(__name__)

_SCRUB = "scrub"  # memory.stores.redis.store.SCRUB, without importing the redis extra

__all__ = ["RecallService"]


class RecallService:
    def __init__(
        self,
        index: RecallIndex,
        manager: InMemoryConversationManager,
        searcher: Searcher | None = None,
    ) -> None:
        self.index = index
        # What answers: the index, or a re-ranker over it (memory.recall.semantic).
        self.searcher: Searcher = searcher or index
        self.manager = manager
        self.store = manager.store
        self._catch_up: asyncio.Task[None] | None = None
        self._feed = self.store if isinstance(self.store, ChangeFeed) else None
        self._changes: Callable[[str, int | None], Awaitable[tuple[int, set[str]]]] | None = (
            None if self._feed is None else self._feed.changes_since
        )
        # guild -> (the generation caught up with, the making of the guild's index file then)
        self._seen: dict[str, tuple[int, str | None]] = (
            self._read_seen() if self._changes is not None else {}
        )
        self._refresh_locks: dict[str, asyncio.Lock] = {}
        self._refresh_failing = False

    @property
    def _seen_path(self) -> Path:
        prefix = "shared" if self._feed is None else self._feed.prefix
        return Path(self.index.path) / f"generations-{prefix}.json"

    def _read_seen(self) -> dict[str, tuple[int, str | None]]:
        try:
            raw: Any = json.loads(self._seen_path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(raw, dict):
            return {}
        # An entry without the index file's making (an older format) is dropped: one full
        # catch-up, instead of trusting a generation for a file that may since be new.
        return {
            str(k): (v[0], v[1] if isinstance(v[1], str) else None)
            for k, v in raw.items()
            if isinstance(v, list) and len(v) == 2 and isinstance(v[0], int)
        }

    def _write_seen(self) -> None:
        try:
            self._seen_path.parent.mkdir(parents=True, exist_ok=True)
            temp = self._seen_path.with_suffix(".tmp")
            temp.write_text(json.dumps(self._seen, sort_keys=True))
            temp.replace(self._seen_path)
        except OSError as exc:  # a cache: losing it costs one catch-up, nothing else
            log.warning("could not keep the recall generations in %s: %s", self._seen_path, exc)

    def attach(self) -> None:
        """Listen to the manager, and catch up with the store in the background."""
        self.manager.add_listener(self.on_conversation)
        self._catch_up = asyncio.get_running_loop().create_task(
            self.catch_up(), name="echo-recall-catch-up"
        )

    async def close(self) -> None:
        self.manager.remove_listener(self.on_conversation)
        if self._catch_up is not None and not self._catch_up.done():
            self._catch_up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._catch_up

    async def catch_up(self) -> None:
        try:
            if self._changes is not None:
                for guild in await self.store.list_guilds():
                    await self.refresh(guild)
                return
            report = await sync(self.index, self.store)
        except Exception:
            log.exception("the recall index could not catch up with the store")
            return
        if report.indexed or report.removed or report.failed:
            log.info(
                "recall index: %d conversation(s) indexed, %d removed, %d could not be indexed",
                report.indexed,
                report.removed,
                report.failed,
            )

    async def on_conversation(self, event: ConversationEvent) -> None:
        try:
            if event.kind == "saved" and event.conversation is not None:
                await asyncio.to_thread(self.index.upsert_conversation, event.conversation)
            elif event.kind == "deleted":
                await asyncio.to_thread(self.index.delete, event.thread_id)
        except Exception:
            log.exception("recall index update for %s failed", event.thread_id)

    async def on_memory(self, conversation: Conversation, record: MemoryRecord) -> None:
        await asyncio.to_thread(self.index.upsert_conversation, conversation, record)

    async def reindex_without_memory(self, thread_ids: Iterable[str]) -> None:
        """After a forget: the memory passages of these conversations must go too."""
        for thread_id in thread_ids:
            conversation = await self.store.load(thread_id)
            await asyncio.to_thread(self.index.delete, thread_id)
            if conversation is not None:
                await asyncio.to_thread(self.index.upsert_conversation, conversation, None)

    async def forget(self, guild_id: str, changed: Iterable[str]) -> None:
        """After a forget in this guild: reindex the conversations it changed, then scrub the
        guild's index file so no deleted word is left in its bytes."""
        await self.reindex_without_memory(changed)
        await asyncio.to_thread(self.index.scrub, guild_id)

    async def refresh(self, guild_id: str) -> int:
        """On a shared store: reindex what other processes changed in this guild since the
        last refresh; returns how many conversations were reindexed."""
        if self._changes is None:
            return 0
        lock = self._refresh_locks.setdefault(guild_id, asyncio.Lock())
        async with lock:
            made = await asyncio.to_thread(self.index.made, guild_id)
            kept = self._seen.get(guild_id)
            # The generation counts for the index file it was reached with: a file made anew
            # since (other settings, a new schema, damage) is empty and needs everything again.
            seen = kept[0] if kept is not None and kept[1] == made else None
            now, threads = await self._changes(guild_id, seen)
            if seen is not None and now == seen:
                return 0
            scrub = _SCRUB in threads
            changed = sorted((t for t in threads if t.isdigit()), key=int)
            for thread_id in changed:
                await self._reindex(guild_id, thread_id)
            if scrub and seen is not None:  # another process deleted text: none may stay here
                await asyncio.to_thread(self.index.scrub, guild_id)
            self._seen[guild_id] = (now, await asyncio.to_thread(self.index.made, guild_id))
            await asyncio.to_thread(self._write_seen)
            return len(changed)

    async def _reindex(self, guild_id: str, thread_id: str) -> None:
        conversation = await self.store.load(thread_id)
        memory = await self.store.load_memory(guild_id, thread_id)
        if conversation is not None and conversation.guild_id == guild_id:
            await asyncio.to_thread(index_conversation, self.index, conversation, memory)
        elif memory is not None:
            await asyncio.to_thread(self.index.upsert_memory, memory)
        else:
            await asyncio.to_thread(self.index.delete, thread_id, guild_id)

    async def search(self, guild_id: str, query: str, limit: int = 5) -> list[RecallHit]:
        if self._changes is not None:
            try:
                await self.refresh(guild_id)
                self._refresh_failing = False
            except Exception as exc:  # a stale answer beats none (Redis may be away)
                if not self._refresh_failing:  # once, not once per search
                    log.warning("recall: searching without the latest changes: %s", exc)
                self._refresh_failing = True
        return await asyncio.to_thread(self.searcher.search, guild_id, query, limit)
