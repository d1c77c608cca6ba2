"""The in-memory conversation manager: the public API the bot records through.

Active conversations live in memory; every mutation is made durable by the store (the
journal) before it is applied and before the call returns. A conversation idle for
``idle_time`` seconds is saved and evicted; a later message resumes it from the store.
All mutations of one conversation are serialised by a per-conversation lock, so a message
that races an idle save waits for the save and then resumes the conversation: it is never
lost and never recorded twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from types import TracebackType
from typing import Self

from memory.recording.active import ActiveConversations
from memory.recording.events import ConversationEvent, Listener, Listeners
from memory.recording.idle import IdleClock, IdleSweeper, RetryBackoff
from memory.recording.locks import LockTable
from memory.records.models import Conversation, Message, utcnow, validate_snowflake
from memory.records.mutations import (
    Append,
    Create,
    Delete,
    Edit,
    End,
    ForgetPerson,
    Mutation,
    Reopen,
    SetSummary,
)
from memory.stores.base import ConversationStore, Spooling, StoreError

log = logging.getLogger(__name__)

# ConversationEvent and Listener: the manager's callers name them from here.
__all__ = [
    "IDLE_TIME",
    "ConversationEvent",
    "InMemoryConversationManager",
    "Listener",
]

IDLE_TIME = 300.0
"""Seconds without a message before a conversation is saved and evicted (DESIGN.md)."""

SAVE_RETRY_BASE = 5.0
SAVE_RETRY_CAP = 300.0
"""An idle conversation that cannot be saved (a full disk) is tried again after
min(idle_time, SAVE_RETRY_BASE) seconds, then twice as long each time, at most SAVE_RETRY_CAP."""


class InMemoryConversationManager:
    """Records conversations durably and keeps the active ones in memory.

    Use as ``async with InMemoryConversationManager(store=store) as manager:``. Entering
    opens the store (which replays a crashed run's journal); leaving saves every active
    conversation and closes the store if the manager opened it.
    """

    def __init__(
        self,
        store: ConversationStore,
        idle_time: float = IDLE_TIME,
        *,
        save_concurrency: int = 16,
        maintenance_interval: float = 30.0,
    ) -> None:
        self.store = store
        self.idle_time = float(idle_time)
        self._clock = IdleClock(self.idle_time)
        self._retries = RetryBackoff(
            max(min(self.idle_time, SAVE_RETRY_BASE), 0.001), SAVE_RETRY_CAP
        )
        self._locks = LockTable()
        self._listeners = Listeners()
        self._save_slots = asyncio.Semaphore(save_concurrency)
        self._idle = IdleSweeper(
            self._clock,
            self._retries,
            evict=self._evict_idle,
            maintain=self._release_journal,
            maintenance_interval=maintenance_interval,
        )
        self._sweeper: asyncio.Task[None] | None = None
        self._active = ActiveConversations(store, self._idle)
        self._owns_store = False
        self._running = False
        self._closed = False

    # --- life cycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def start(self) -> None:
        """Open the store (replaying any journal a crash left) and start the idle sweeper."""
        if self._running:
            return
        if self._closed:
            raise RuntimeError("this manager was shut down; make a new one")
        self.store.attach_cache(self.get_all_conversations)
        if not self.store.is_open:
            await self.store.open()
            self._owns_store = True
        self._running = True
        self._sweeper = self._idle.start()

    async def shutdown(self) -> None:
        """Stop the sweeper, save every active conversation, close the store if we opened it."""
        if not self._running:
            return
        self._running = False
        self._closed = True
        if self._sweeper is not None:
            # Let it finish the evictions it has started rather than cancel them half-saved.
            self._idle.stop()
            try:
                await self._sweeper
            except Exception:
                log.exception("the idle sweeper failed")
            self._sweeper = None
        try:
            await self.save_all_conversations()
        finally:
            if self._owns_store:
                await self.store.close()

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` on saved / idle / deleted events (sync or async)."""
        self._listeners.add(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    # --- reading ------------------------------------------------------------------------------

    def get_conversation(self, thread_id: str) -> Conversation | None:
        """The active conversation of this thread, or None. Treat it as read-only."""
        return self._active.get(thread_id)

    def get_all_conversations(self) -> list[Conversation]:
        """Every active conversation."""
        return self._active.all()

    async def get_or_resume(self, thread_id: str) -> Conversation | None:
        """The active conversation, else the stored one (made active again), else None."""
        thread_id = validate_snowflake(thread_id, "thread_id")
        active = self._active.get(thread_id)
        if active is not None and thread_id not in self._active.partial:
            return active
        async with self._locks.hold(thread_id):
            return await self._active.get_or_resume(thread_id)

    # --- recording ----------------------------------------------------------------------------

    async def create_conversation(
        self,
        *,
        thread_id: str,
        guild_id: str,
        requester: str,
        channel_id: str,
        guild_name: str = "",
        created_at: datetime | None = None,
    ) -> Conversation:
        """Start the conversation of a thread; an existing one (active or stored) is returned.

        If the stored one cannot be read because the store's server is away, and the store
        records while away (``Spooling``), the conversation starts from this process's copy:
        its creation and every later change wait in the spool, which merges them into the
        stored conversation (never over it) once the server is back.
        """
        now = created_at or utcnow()
        conversation = Conversation(
            thread_id=thread_id,
            channel_id=channel_id,
            guild_id=guild_id,
            guild_name=guild_name,
            requester=requester,
            created_at=now,
            updated_at=now,
        )
        thread_id = conversation.thread_id
        async with self._locks.hold(thread_id):
            try:
                existing = await self._active.get_or_resume(thread_id)
            except StoreError as exc:
                if not (isinstance(self.store, Spooling) and self.store.records_while_away):
                    raise
                log.debug("thread %s: the store cannot be read (%s); starting here", thread_id, exc)
                existing = None
                self._active.partial.add(thread_id)
            if existing is not None:
                if existing.guild_id != conversation.guild_id:
                    raise ValueError(
                        f"thread {thread_id} already has a conversation in guild "
                        f"{existing.guild_id}, not {conversation.guild_id}"
                    )
                return existing
            await self.store.record(Create(conversation))
            conversation = Create(conversation).apply(None)
            self._active.activate(thread_id, conversation, dirty=True)
            return conversation

    async def add_message_to_conversation(self, thread_id: str, message: Message) -> bool:
        """Record ``message``; durable on return. False if its Discord id was recorded already.

        Raises ``KeyError`` if the thread has no conversation (active or stored).
        """
        return await self._mutate(Append(validate_snowflake(thread_id, "thread_id"), message))

    async def edit_message(
        self, thread_id: str, message_id: str, content: str, *, edited_at: datetime | None = None
    ) -> bool:
        """Replace a recorded message's content; False if no message has that Discord id."""
        return await self._mutate(
            Edit(
                validate_snowflake(thread_id, "thread_id"),
                validate_snowflake(message_id, "message_id"),
                content,
                edited_at or utcnow(),
            )
        )

    async def delete_message(self, thread_id: str, message_id: str) -> bool:
        """Remove a recorded message; False if no message has that Discord id."""
        return await self._mutate(
            Delete(
                validate_snowflake(thread_id, "thread_id"),
                validate_snowflake(message_id, "message_id"),
            )
        )

    async def set_summary(self, thread_id: str, summary: str) -> None:
        await self._mutate(SetSummary(validate_snowflake(thread_id, "thread_id"), summary))

    async def end_conversation(self, thread_id: str) -> None:
        """Mark the conversation ended (it stays readable and can still be resumed)."""
        thread_id = validate_snowflake(thread_id, "thread_id")
        if await self._mutate(End(thread_id)):
            await self._listeners.emit("ended", thread_id, self._active.get(thread_id))

    async def reopen_conversation(self, thread_id: str) -> None:
        """Take an ended conversation up again."""
        await self._mutate(Reopen(validate_snowflake(thread_id, "thread_id")))

    async def forget_person(self, thread_id: str, user_id: str) -> bool:
        """Remove a person's part of one conversation (see ``Conversation.forget_person``)."""
        return await self._mutate(
            ForgetPerson(
                validate_snowflake(thread_id, "thread_id"), validate_snowflake(user_id, "user_id")
            )
        )

    async def _mutate(self, mutation: Mutation) -> bool:
        thread_id = mutation.thread_id
        async with self._locks.hold(thread_id):
            conversation = self._active.get(thread_id)
            if conversation is None:
                conversation = await self._active.get_or_resume(thread_id)
                if conversation is None:
                    raise KeyError(f"no conversation for thread {thread_id}")
            if not mutation.changes(conversation):
                return False
            # Journal first: if this raises, memory is untouched and the caller knows.
            await self.store.record(mutation)
            mutation.apply(conversation)
            self._active.dirty.add(thread_id)
            self._idle.touch(thread_id)
            return True

    # --- saving, evicting, deleting -----------------------------------------------------------

    async def save_conversation(self, thread_id: str) -> bool:
        """Write the active conversation's file now; False if it is not active."""
        thread_id = validate_snowflake(thread_id, "thread_id")
        async with self._locks.hold(thread_id):
            conversation = self._active.get(thread_id)
            if conversation is None:
                return False
            await self._save_locked(conversation)
        await self._listeners.emit("saved", thread_id, conversation)
        return True

    async def remove_conversation(self, thread_id: str) -> bool:
        """Save the conversation if it changed, then drop it from memory."""
        thread_id = validate_snowflake(thread_id, "thread_id")
        async with self._locks.hold(thread_id):
            conversation = self._active.get(thread_id)
            if conversation is None:
                return False
            saved = thread_id in self._active.dirty
            if saved:
                await self._save_locked(conversation)
            self._active.deactivate(thread_id)
        if saved:
            await self._listeners.emit("saved", thread_id, conversation)
        await self._listeners.emit("removed", thread_id, conversation)
        return True

    async def save_all_conversations(self) -> int:
        """Save every active conversation that changed; returns how many were saved."""

        async def save_one(thread_id: str) -> bool:
            async with self._save_slots, self._locks.hold(thread_id):
                conversation = self._active.get(thread_id)
                if conversation is None or thread_id not in self._active.dirty:
                    return False
                await self._save_locked(conversation)
            await self._listeners.emit("saved", thread_id, conversation)
            return True

        results = await asyncio.gather(
            *(save_one(t) for t in list(self._active.dirty)), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            log.error("saving a conversation failed: %s", failure)
        if failures:
            raise StoreError(
                f"{len(failures)} conversation(s) could not be saved; their journal is kept"
            ) from failures[0]
        return sum(1 for r in results if r is True)

    async def delete_conversation(self, thread_id: str) -> bool:
        """Forget a conversation everywhere (memory, file, journal); False if there was none."""
        thread_id = validate_snowflake(thread_id, "thread_id")
        async with self._locks.hold(thread_id):
            was_active = thread_id in self._active
            self._active.deactivate(thread_id)
            self._active.partial.discard(thread_id)
            removed = await self.store.delete(thread_id)
        if was_active or removed:
            await self._listeners.emit("deleted", thread_id, None)
        return was_active or removed

    async def _save_locked(self, conversation: Conversation) -> None:
        await self.store.save(conversation)
        self._active.dirty.discard(conversation.thread_id)
        self._retries.forget(conversation.thread_id)

    # --- what the idle sweeper calls ----------------------------------------------------------

    async def _evict_idle(self, thread_id: str) -> None:
        try:
            async with self._save_slots, self._locks.hold(thread_id):
                conversation = self._active.get(thread_id)
                if conversation is None or thread_id in self._clock:
                    return  # gone already, or a message arrived after it was picked
                if thread_id in self._active.dirty:
                    await self._save_locked(conversation)
                    saved = True
                else:
                    saved = False
                self._active.deactivate(thread_id)
        except Exception as exc:
            # Keep it in memory (the journal has it too) and try again later, less and less
            # often while it keeps failing: a full disk stays full for a while.
            if thread_id not in self._active or thread_id in self._clock:
                log.error("could not save idle conversation %s: %s", thread_id, exc)
                return
            delay = self._retries.failed(thread_id)
            log.error(
                "could not save idle conversation %s, will retry in %g s: %s", thread_id, delay, exc
            )
            return
        log.debug("conversation %s idle: saved=%s, evicted", thread_id, saved)
        if saved:
            await self._listeners.emit("saved", thread_id, conversation)
        await self._listeners.emit("idle", thread_id, conversation)

    async def _release_journal(self) -> None:
        """Save active conversations that keep old journal segments from being deleted."""
        for thread_id in self.store.pinned_threads():
            if thread_id in self._active.dirty:
                try:
                    await self.save_conversation(thread_id)
                except Exception as exc:
                    log.error("checkpoint of conversation %s failed: %s", thread_id, exc)
