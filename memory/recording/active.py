"""The conversations a manager holds in memory, and resuming one from its store.

Besides the conversations themselves: which changed since their last save (saved before they
are evicted), and which were started while the store could not be read (its server away):
for those this process holds what it recorded, perhaps not all of the conversation, and reads
it whole again once the store has caught up.
"""

from __future__ import annotations

import logging

from memory.recording.idle import IdleSweeper
from memory.records.models import Conversation
from memory.stores.base import ConversationStore, Spooling, StoreError

log = logging.getLogger(__name__)

__all__ = ["ActiveConversations"]


class ActiveConversations:
    """The active conversations by thread id; activity on one keeps it from the sweeper.

    The manager holds a thread's lock around every change to it here and every resume.
    """

    def __init__(self, store: ConversationStore, idle: IdleSweeper) -> None:
        self.store = store
        self._idle = idle
        self._conversations: dict[str, Conversation] = {}
        self.dirty: set[str] = set()
        self.partial: set[str] = set()
        # The dict's own get: it runs for every message recorded.
        self.get = self._conversations.get

    def __contains__(self, thread_id: object) -> bool:
        return thread_id in self._conversations

    def all(self) -> list[Conversation]:
        return list(self._conversations.values())

    async def get_or_resume(self, thread_id: str) -> Conversation | None:
        """The active conversation, else the stored one (made active again), else None."""
        conversation = self._conversations.get(thread_id)
        if conversation is not None and thread_id in self.partial and self.caught_up():
            conversation = await self._read_whole(thread_id, conversation)
        if conversation is None:
            conversation = await self.store.load(thread_id)
            if conversation is not None:
                log.debug("resumed conversation %s from the store", thread_id)
                if self.caught_up():
                    self.partial.discard(thread_id)
                self.activate(thread_id, conversation, dirty=False)
        return conversation

    def caught_up(self) -> bool:
        return not isinstance(self.store, Spooling) or self.store.caught_up

    async def _read_whole(self, thread_id: str, partial: Conversation) -> Conversation:
        """The store's copy of a conversation started while it could not be read: once the
        spool is flushed it holds the history from before the outage, then what came since."""
        try:
            whole = await self.store.load(thread_id)
        except StoreError as exc:
            log.debug("thread %s: still cannot read the stored conversation: %s", thread_id, exc)
            return partial
        self.partial.discard(thread_id)
        if whole is None:
            return partial
        log.info(
            "thread %s: read whole from the store again (%d messages, %d held here)",
            thread_id,
            len(whole.history),
            len(partial.history),
        )
        self._conversations[thread_id] = whole
        return whole

    def activate(self, thread_id: str, conversation: Conversation, *, dirty: bool) -> None:
        self._conversations[thread_id] = conversation
        if dirty:
            self.dirty.add(thread_id)
        self._idle.touch(thread_id)

    def deactivate(self, thread_id: str) -> None:
        self._conversations.pop(thread_id, None)
        self.dirty.discard(thread_id)
        self._idle.forget(thread_id)
