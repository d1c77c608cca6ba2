"""Keeps the recall index in step with the store, and answers recall questions.

Conversations are reindexed when saved and dropped when deleted; a memory is indexed when
it is made. On start the index catches up with whatever was written without it (``sync``),
in the background so start-up does not wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from .manager import ConversationEvent, InMemoryConversationManager
from .memories import MemoryRecord
from .models import Conversation
from .recall import RecallHit, RecallIndex, sync

log = logging.getLogger(__name__)

__all__ = ["RecallService"]


class RecallService:
    def __init__(self, index: RecallIndex, manager: InMemoryConversationManager) -> None:
        self.index = index
        self.manager = manager
        self.store = manager.store
        self._catch_up: asyncio.Task[None] | None = None

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
            report = await sync(self.index, self.store)
        except Exception:
            log.exception("the recall index could not catch up with the store")
            return
        if report.indexed or report.removed:
            log.info(
                "recall index: %d conversation(s) indexed, %d removed",
                report.indexed,
                report.removed,
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

    async def search(self, guild_id: str, query: str, limit: int = 5) -> list[RecallHit]:
        return await asyncio.to_thread(self.index.search, guild_id, query, limit)
