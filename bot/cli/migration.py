"""Copying every conversation and memory from one open store to another, for ``store migrate``.

The source is the truth: a conversation or memory the target holds in another version is
replaced, one it holds as it is stays untouched, so the migration can run again at any time
(after an interruption, to catch up) and copies only what differs. Nothing is ever deleted, on
either side. What became of each record is counted in a ``Tally``; a store failing as a whole
(not one record) raises ``Stopped``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.cli.progress import Progress
from memory import ConversationStore, StoreError
from memory.records.memories import MemoryRecord
from memory.stores import FileBacked

__all__ = [
    "CONCURRENCY",
    "Report",
    "Stopped",
    "Tally",
    "copy_conversation",
    "copy_each",
    "copy_memory",
    "guilds_of",
    "memories_of",
]

# Records copied at once: enough to overlap round trips to Redis, few enough to hold lightly.
CONCURRENCY = 8


@dataclass
class Tally:
    """What became of one kind of record (conversations or memories)."""

    total: int = 0
    copied: int = 0
    replaced: int = 0  # of the copied: the target held another version, now overwritten
    already: int = 0
    unreadable: list[tuple[str, str, str]] = field(default_factory=list)  # thread, guild, why
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # thread, guild, why

    def line(self) -> str:
        copied = f"{self.copied} copied"
        if self.replaced:
            copied += f" ({self.replaced} replaced)"
        text = f"{copied}, {self.already} already there, {len(self.unreadable)} unreadable"
        return text + (f", {len(self.failed)} failed" if self.failed else "")

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "copied": self.copied,
            "replaced": self.replaced,
            "already_there": self.already,
            "unreadable": [
                {"thread_id": t, "guild_id": g, "why": why} for t, g, why in self.unreadable
            ],
            "failed": [{"thread_id": t, "guild_id": g, "why": why} for t, g, why in self.failed],
        }


@dataclass
class Report:
    """What a migration did: where from, where to, and a tally per kind of record."""

    source: str
    target: str
    conversations: Tally = field(default_factory=Tally)
    memories: Tally = field(default_factory=Tally)

    @property
    def complete(self) -> bool:
        return not any(t.unreadable or t.failed for t in (self.conversations, self.memories))

    def line(self) -> str:
        return f"conversations: {self.conversations.line()}; memories: {self.memories.line()}"


class Stopped(Exception):
    """A store as a whole failed (not one record): the migration cannot go on."""


def _cause(exc: Exception) -> str:
    return str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"


async def copy_each(
    items: list[Any], copy: Callable[[Any], Awaitable[None]], bar: Progress
) -> None:
    """Copy a few at a time, so that waiting for one store overlaps work on another record.

    A ``Stopped`` from one copy stops them all, as one ``Stopped``."""
    pending = iter(items)

    async def worker() -> None:
        for item in pending:
            await copy(item)
            bar.step()

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(CONCURRENCY):
                group.create_task(worker())
    except* Stopped as stopped:
        raise stopped.exceptions[0] from None


async def guilds_of(store: ConversationStore) -> list[str]:
    """Every guild of the store that holds a conversation or a memory, in id order."""
    guilds = set(await store.list_guilds())
    if isinstance(store, FileBacked):
        # A guild folder may hold memories whose conversations are gone; list_guilds knows
        # guilds by their conversations only.
        guilds.update(await asyncio.to_thread(store.memory_file_guilds))
    return sorted(guilds, key=int)


async def copy_conversation(
    source: ConversationStore,
    target: ConversationStore,
    thread_id: str,
    guild_id: str,
    tally: Tally,
) -> None:
    """Copy one conversation unless the target holds it as it is; counted in ``tally``."""
    try:
        conversation = await source.load(thread_id)
    except StoreError as exc:
        if not isinstance(source, FileBacked):
            raise Stopped(f"could not read conversation {thread_id}: {exc}") from exc
        # One file that cannot be read (permissions, a bad disk block) is that file's problem.
        tally.unreadable.append((thread_id, guild_id, str(exc)))
        return
    if conversation is None:
        # The store logged why (a JSON file that does not parse is set aside as *.corrupt).
        tally.unreadable.append((thread_id, guild_id, "the source could not read it"))
        return
    wanted = conversation.to_json()
    try:
        existing = await target.load(thread_id)
    except StoreError:
        existing = None  # unreadable in the target: replaced below
    if existing is not None and existing.to_json() == wanted:
        tally.already += 1
        return
    try:
        await target.put(conversation)
        stored = await target.load(thread_id)
    except Exception as exc:  # the target refuses writes (unreachable, full, read-only)
        raise Stopped(f"could not write conversation {thread_id}: {_cause(exc)}") from exc
    if stored is None or stored.to_json() != wanted:
        tally.failed.append(
            (thread_id, guild_id, "the target holds something else after writing it")
        )
        return
    tally.copied += 1
    if existing is not None:
        tally.replaced += 1


async def memories_of(
    store: ConversationStore, guilds: list[str], tally: Tally
) -> list[MemoryRecord]:
    """The memories of ``guilds``; a memory file that does not parse counts as unreadable."""
    records: list[MemoryRecord] = []
    for guild in guilds:
        if not isinstance(store, FileBacked):
            records += await store.list_memories(guild)
            continue
        # list_memories leaves out (and sets aside) a file that does not parse: name it.
        files = await asyncio.to_thread(store.memory_file_ids, guild)
        found = await store.list_memories(guild)
        records += found
        for thread in sorted(files.keys() - {record.thread_id for record in found}, key=int):
            tally.total += 1
            why = f"{files[thread]} does not parse (set aside as *.corrupt)"
            tally.unreadable.append((thread, guild, why))
    return records


async def copy_memory(target: ConversationStore, record: MemoryRecord, tally: Tally) -> None:
    """Copy one memory unless the target holds it as it is; counted in ``tally``."""
    wanted = record.to_json()
    guild, thread = record.guild_id, record.thread_id
    try:
        existing = await target.load_memory(guild, thread)
    except StoreError:
        existing = None
    if existing is not None and existing.to_json() == wanted:
        tally.already += 1
        return
    try:
        await target.save_memory(record)
        stored = await target.load_memory(guild, thread)
    except Exception as exc:
        raise Stopped(f"could not write the memory of {thread}: {_cause(exc)}") from exc
    if stored is None or stored.to_json() != wanted:
        tally.failed.append((thread, guild, "the target holds something else after writing it"))
        return
    tally.copied += 1
    if existing is not None:
        tally.replaced += 1
