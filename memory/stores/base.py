"""The storage interface every backend implements.

Public methods validate their arguments (ids become file paths and keys) and then call the
backend's primitives, so a backend never sees an unchecked id.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable

from memory.records.memories import MemoryRecord
from memory.records.models import Conversation, validate_snowflake
from memory.records.mutations import Mutation

if TYPE_CHECKING:
    from memory.longterm.queue import MemoryQueue

log = logging.getLogger(__name__)

__all__ = [
    "ChangeFeed",
    "ConversationInfo",
    "ConversationRef",
    "ConversationStore",
    "QueueHost",
    "RecoveryError",
    "Spooling",
    "StoreConfigError",
    "StoreError",
]


# --- optional capabilities: what some backends have, declared so callers ask with isinstance ---


@runtime_checkable
class ChangeFeed(Protocol):
    """A store that several processes write (Redis): it tells which threads changed since a
    generation, so each process's local recall cache can catch up with what the others wrote.
    A store only this process writes (JSON files) has no feed: the cache compares versions."""

    prefix: str
    """Names the feed, so caches of two stores in one data folder keep their places apart."""

    async def changes_since(self, guild_id: str, generation: int | None) -> tuple[int, set[str]]:
        """The guild's generation now, and the threads changed after ``generation``."""
        ...


@runtime_checkable
class QueueHost(Protocol):
    """A store that carries a memory queue of its own, which workers elsewhere share."""

    def memory_queue(self) -> MemoryQueue:
        """The queue beside this opened store."""
        ...


@runtime_checkable
class FileBacked(Protocol):
    """A store that keeps each conversation and memory in a file an operator can read (JSON).

    Its ``ConversationRef.location`` is the conversation's file, and one unreadable file is
    that file's problem (named, skipped), where a store without files stops instead. Changes
    not yet in a file wait in ``journal_dir``.
    """

    @property
    def journal_dir(self) -> Path:
        """The folder of the write-ahead journal."""
        ...

    def file_of(self, guild_id: str, thread_id: str) -> Path | None:
        """The conversation's file, if one is on disk yet."""
        ...

    def memory_file_guilds(self) -> set[str]:
        """Guilds with a memory folder, even where their conversations are gone."""
        ...

    def memory_file_ids(self, guild_id: str) -> dict[str, Path]:
        """The guild's memory files by thread id, readable or not."""
        ...


class StoreError(Exception):
    """A storage operation failed; the message says what and why."""


class StoreConfigError(StoreError):
    """The store's settings are wrong (a password, a permission, an address that is not the
    server): retrying cannot help, so the process stops with this one line."""


@runtime_checkable
class Spooling(Protocol):
    """A store whose server can be away for a while: it still records every mutation (to a
    local spool, flushed in order once the server is back) though it cannot read meanwhile."""

    @property
    def records_while_away(self) -> bool:
        """True if a mutation is accepted even while stored conversations cannot be read."""
        ...

    @property
    def caught_up(self) -> bool:
        """The server answers and holds every mutation recorded so far (the spool is empty)."""
        ...


class RecoveryError(StoreError):
    """What an earlier process left could not be fully recovered; nothing was discarded."""


@dataclass(frozen=True, slots=True)
class ConversationRef:
    """Where a stored conversation is, known without reading it."""

    thread_id: str
    guild_id: str
    requester: str
    created: date
    location: str


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    """A stored conversation's header: everything but the history, read without loading it."""

    thread_id: str
    guild_id: str
    guild_name: str
    requester: str
    participants: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    summary: str
    ended: bool

    @classmethod
    def of(cls, conversation: Conversation) -> ConversationInfo:
        """The header of ``conversation`` (its history is not looked at)."""
        return cls(
            thread_id=conversation.thread_id,
            guild_id=conversation.guild_id,
            guild_name=conversation.guild_name,
            requester=conversation.requester,
            participants=tuple(conversation.participants),
            created_at=conversation.created_at,
            updated_at=conversation.updated_at,
            summary=conversation.summary,
            ended=conversation.ended,
        )


class ConversationStore(ABC):
    """Durable home of conversations: a journal for every mutation, a record per conversation.

    Use as an async context manager. ``open()`` recovers whatever a killed process left, so
    a store is never used on top of an unreplayed journal.
    """

    def __init__(self) -> None:
        self._is_open = False

    @property
    def is_open(self) -> bool:
        return self._is_open

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> list[Conversation]:
        """Open the store and recover what a crashed process left; returns what was recovered."""
        if self._is_open:
            return []
        await self._open()
        self._is_open = True
        try:
            return await self._recover()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if not self._is_open:
            return
        self._is_open = False
        await self._close()

    # --- public API ---------------------------------------------------------------------------

    async def record(self, mutation: Mutation) -> None:
        """Make ``mutation`` durable (per the store's promise) before returning."""
        self._require_open()
        validate_snowflake(mutation.thread_id, "thread_id")
        await self._record(mutation)

    async def save(self, conversation: Conversation) -> None:
        """Write the whole conversation, atomically; its journal records become obsolete."""
        self._require_open()
        await self._save(conversation)

    async def put(self, conversation: Conversation) -> None:
        """Store this conversation whole, replacing whatever is stored for its thread.

        For moving conversations between stores (``python -m bot store migrate``). Unlike
        ``save`` it may overwrite history: use it only when nothing else is writing.
        """
        self._require_open()
        await self._put(conversation)

    async def load(self, thread_id: str) -> Conversation | None:
        """The stored conversation of this thread, or None (also when its record was unreadable)."""
        self._require_open()
        return await self._load(validate_snowflake(thread_id, "thread_id"))

    async def exists(self, thread_id: str) -> bool:
        self._require_open()
        return await self._exists(validate_snowflake(thread_id, "thread_id"))

    async def list_conversations(self, guild_id: str | None = None) -> list[ConversationRef]:
        """Stored conversations of one guild (or all), newest first, without reading them."""
        self._require_open()
        if guild_id is not None:
            guild_id = validate_snowflake(guild_id, "guild_id")
        refs = await self._list(guild_id)
        return sorted(refs, key=lambda r: (r.created, int(r.thread_id)), reverse=True)

    async def conversation_infos(self, guild_id: str | None = None) -> list[ConversationInfo]:
        """Headers of the stored conversations of one guild (or all), without their histories."""
        self._require_open()
        if guild_id is not None:
            guild_id = validate_snowflake(guild_id, "guild_id")
        return await self._infos(guild_id)

    # --- long-term memories -------------------------------------------------------------------

    async def save_memory(self, record: MemoryRecord) -> None:
        """Upsert the memory of one conversation, atomically."""
        self._require_open()
        await self._save_memory(record)

    async def load_memory(self, guild_id: str, thread_id: str) -> MemoryRecord | None:
        self._require_open()
        return await self._load_memory(
            validate_snowflake(guild_id, "guild_id"), validate_snowflake(thread_id, "thread_id")
        )

    async def list_memories(self, guild_id: str) -> list[MemoryRecord]:
        self._require_open()
        return await self._list_memories(validate_snowflake(guild_id, "guild_id"))

    async def delete_memory(self, guild_id: str, thread_id: str) -> bool:
        self._require_open()
        return await self._delete_memory(
            validate_snowflake(guild_id, "guild_id"), validate_snowflake(thread_id, "thread_id")
        )

    async def list_guilds(self) -> list[str]:
        self._require_open()
        return sorted(await self._list_guilds(), key=int)

    async def delete(self, thread_id: str) -> bool:
        """Forget a conversation for good: its record and everything the journal holds of it."""
        self._require_open()
        return await self._delete(validate_snowflake(thread_id, "thread_id"))

    def pinned_threads(self) -> set[str]:
        """Conversations whose unsaved journal records keep old journal segments on disk."""
        return set()

    def attach_cache(self, active: Callable[[], Iterable[Conversation]]) -> None:  # noqa: B027
        """Told by the manager how to read the conversations it holds in memory. A store whose
        server can lose data (Redis without persistence) restores them from there."""

    def _require_open(self) -> None:
        if not self._is_open:
            raise StoreError(f"{type(self).__name__} is not open (use 'async with store:')")

    # --- primitives ---------------------------------------------------------------------------

    @abstractmethod
    async def _open(self) -> None: ...

    @abstractmethod
    async def _close(self) -> None: ...

    @abstractmethod
    async def _recover(self) -> list[Conversation]: ...

    @abstractmethod
    async def _record(self, mutation: Mutation) -> None: ...

    @abstractmethod
    async def _save(self, conversation: Conversation) -> None: ...

    async def _put(self, conversation: Conversation) -> None:
        # A store whose save writes the whole conversation needs nothing more.
        await self._save(conversation)

    @abstractmethod
    async def _load(self, thread_id: str) -> Conversation | None: ...

    @abstractmethod
    async def _exists(self, thread_id: str) -> bool: ...

    @abstractmethod
    async def _list(self, guild_id: str | None) -> list[ConversationRef]: ...

    @abstractmethod
    async def _list_guilds(self) -> list[str]: ...

    @abstractmethod
    async def _delete(self, thread_id: str) -> bool: ...

    @abstractmethod
    async def _infos(self, guild_id: str | None) -> list[ConversationInfo]: ...

    @abstractmethod
    async def _save_memory(self, record: MemoryRecord) -> None: ...

    @abstractmethod
    async def _load_memory(self, guild_id: str, thread_id: str) -> MemoryRecord | None: ...

    @abstractmethod
    async def _list_memories(self, guild_id: str) -> list[MemoryRecord]: ...

    @abstractmethod
    async def _delete_memory(self, guild_id: str, thread_id: str) -> bool: ...
