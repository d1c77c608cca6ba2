"""Catching the recall index up with the store: what changed since it was indexed, and only that."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass

from memory.recall.files import RecallError
from memory.recall.index import RecallIndex
from memory.recall.passages import iso
from memory.records.memories import MemoryRecord
from memory.records.models import Conversation
from memory.stores.base import ConversationStore

__all__ = ["SyncReport", "index_conversation", "sync"]

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    """What ``sync`` did: conversations (re)indexed, removed, left as they were, and those
    whose content could not be indexed (``index_conversation``)."""

    indexed: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: int = 0


def index_conversation(
    index: RecallIndex, conversation: Conversation, memory: MemoryRecord | None
) -> bool:
    """(Re)index one conversation; False, with a log line naming it and the cause, if what it
    holds cannot be indexed. One such conversation must not stop a catch-up: the ones after
    it, in its guild and in others, are still indexed, and it is tried again when it changes
    or at the next catch-up. The index's own failures (closed, SQLite, the disk) are raised:
    every conversation would fail alike."""
    try:
        index.upsert_conversation(conversation, memory)
    except (RecallError, sqlite3.Error, OSError):
        raise
    except Exception:
        log.exception(
            "recall: conversation %s of server %s could not be indexed; it is left out of "
            "recall until this is fixed",
            conversation.thread_id,
            conversation.guild_id,
        )
        return False
    return True


async def sync(
    index: RecallIndex, store: ConversationStore, guild_id: str | None = None
) -> SyncReport:
    """Bring the index up to date with the store, reading only what changed.

    Conversations are compared by header (``updated_at``), so nothing unchanged is loaded;
    a changed one is reindexed with its stored memory; one that is gone from the store is
    removed from the index. The store is the truth: this is how a process that did not see
    the writes (the CLI, a restart after a crash) catches up without a rebuild.
    """
    report = SyncReport()
    guilds = (
        [guild_id]
        if guild_id is not None
        else sorted(set(await store.list_guilds()) | set(index.guilds()))
    )
    for guild in guilds:
        infos = await store.conversation_infos(guild)
        indexed = await asyncio.to_thread(index.versions, guild)
        for info in infos:
            if indexed.pop(info.thread_id, None) == iso(info.updated_at):
                report.unchanged += 1
                continue
            conversation = await store.load(info.thread_id)
            if conversation is None or conversation.guild_id != guild:
                continue
            memory = await store.load_memory(guild, info.thread_id)
            if await asyncio.to_thread(index_conversation, index, conversation, memory):
                report.indexed += 1
            else:
                report.failed += 1
        for thread_id in indexed:  # indexed, but no longer stored
            await asyncio.to_thread(index.delete, thread_id, guild)
            report.removed += 1
    return report
