"""Recall: a ranked full-text search over one guild's conversations and their memories.

The engine is SQLite FTS5 (BM25 built in, in the standard library). ``RecallIndex`` is the
whole of it, in layers: what is indexed of a conversation (``memory.recall.passages``), the
guild files (``memory.recall.files``), searching them (``memory.recall.ranking``, with
``memory.recall.query``), and here, keeping them current: conversations and memories added,
replaced and removed, deleted text scrubbed, the index rebuilt.

Calls block (each is a short SQLite transaction); from asyncio, run them with
``asyncio.to_thread``. One lock serialises them, so one ``RecallIndex`` may be shared across
threads. Several processes may use the same folder (WAL mode): an operator's CLI can search
while the bot writes.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from memory.recall.coverage import speech_of
from memory.recall.passages import (
    MAX_PASSAGES,
    PASSAGE_BITS,
    Passage,
    date_words,
    held_on,
    iso,
    memory_columns,
    memory_text,
    passages_of,
    said_in,
)
from memory.recall.ranking import RankedSearch
from memory.records.memories import MemoryRecord
from memory.records.models import Conversation, validate_snowflake

__all__ = ["RecallIndex"]

_Rows = tuple[list[Passage], str, str, str]


_INSERT_MEMORY_PASSAGE = (
    "INSERT INTO passages(rowid, people, echo, memory, names, dates) VALUES (?, '', '', ?, ?, ?)"
)


class RecallIndex(RankedSearch):
    """The recall index of every guild, in one folder (``<data>/index/recall``).

    ``upsert_conversation`` and ``upsert_memory`` keep it current as conversations and
    memories are saved; ``rebuild`` remakes it from the files.
    """

    @classmethod
    def in_data_dir(cls, data_dir: str | os.PathLike[str], **kwargs: Any) -> RecallIndex:
        """The index of an Echo data folder: ``<data>/index/recall``."""
        return cls(Path(data_dir) / "index" / "recall", **kwargs)

    def __repr__(self) -> str:
        return f"RecallIndex({str(self.path)!r})"

    # --- writing ----------------------------------------------------------------------------

    def upsert_conversation(
        self, conversation: Conversation, memory: MemoryRecord | None = None
    ) -> None:
        """(Re)index one conversation: its passages, date and, if given, its memory.

        Without ``memory``, a memory indexed before is kept (a conversation is resaved more
        often than its memory is remade).
        """
        if memory is not None:
            self._check_memory(memory, conversation.guild_id, conversation.thread_id)
        rows = self._rows(conversation)
        with self._lock, self._transaction(conversation.guild_id, create=True) as db:
            self._upsert(db, conversation, memory, rows)

    def upsert_many(
        self,
        items: Iterable[tuple[Conversation, MemoryRecord | None]],
        *,
        batch: int = 500,
    ) -> int:
        """``upsert_conversation`` for many conversations, ``batch`` of a guild per transaction
        (a transaction per conversation costs most of indexing: FTS5 writes its pending terms
        out at every commit). Returns how many were indexed."""
        indexed = 0
        pending: list[tuple[Conversation, MemoryRecord | None, _Rows]] = []

        def flush() -> None:
            if not pending:
                return
            with self._lock, self._transaction(pending[0][0].guild_id, create=True) as db:
                for conversation, memory, rows in pending:
                    self._upsert(db, conversation, memory, rows)
            pending.clear()

        for conversation, memory in items:
            if memory is not None:
                self._check_memory(memory, conversation.guild_id, conversation.thread_id)
            if pending and (
                pending[0][0].guild_id != conversation.guild_id or len(pending) >= batch
            ):
                flush()
            pending.append((conversation, memory, self._rows(conversation)))
            indexed += 1
        flush()
        return indexed

    def _rows(self, conversation: Conversation) -> _Rows:
        """What is written of a conversation: its passages, the days it was held on in words,
        its names, each speaker's words."""
        # Read once: the passages and each speaker's words are two views of the same messages.
        said = said_in(conversation, index_echo=self.settings.index_echo)
        passages = passages_of(said, self.settings)
        days = held_on(said, conversation.created_at)
        names = " ".join(dict.fromkeys(n for p in passages for n in p.names.split() if n))
        return passages, " ".join(days), names, speech_of(said, days)

    def _upsert(
        self,
        db: sqlite3.Connection,
        conversation: Conversation,
        memory: MemoryRecord | None,
        rows: _Rows,
    ) -> None:
        passages, dates, names, speech = rows
        started = date_words(conversation.created_at)
        row = db.execute(
            "SELECT id, memory, memory_summary, topics FROM conversations WHERE thread_id = ?",
            (conversation.thread_id,),
        ).fetchone()
        if memory is not None:
            kept = memory_columns(memory)
        elif row is not None:
            kept = (row[1], row[2], row[3])
        else:
            kept = ("", "", "")
        if row is None:
            db.execute(
                "INSERT INTO conversations(thread_id, guild_id) VALUES (?, ?)",
                (conversation.thread_id, conversation.guild_id),
            )
            cid = int(db.execute("SELECT last_insert_rowid()").fetchone()[0])
        else:
            cid = int(row[0])
        db.execute(
            "UPDATE conversations SET requester = ?, created_at = ?, updated_at = ?,"
            " conversation_summary = ?, days = ?, names = ?, speech = ?, memory = ?,"
            " memory_summary = ?, topics = ?, passages = ? WHERE id = ?",
            (
                conversation.requester,
                iso(conversation.created_at),
                iso(conversation.updated_at),
                conversation.summary,
                dates,
                names,
                speech,
                *kept,
                len(passages),
                cid,
            ),
        )
        base = cid << PASSAGE_BITS
        if row is not None:  # a new conversation has no passages to delete
            db.execute(
                "DELETE FROM passages WHERE rowid BETWEEN ? AND ?", (base, base + MAX_PASSAGES)
            )
        # Passage 0 first: FTS5 keeps a transaction's inserts in memory only while their rowids
        # ascend (anything else writes them out as a new segment).
        text = memory_text(conversation.summary, kept[0])
        db.execute(_INSERT_MEMORY_PASSAGE, (base, text, names, dates))
        db.executemany(
            "INSERT INTO passages(rowid, people, echo, memory, names, dates)"
            " VALUES (?, ?, ?, '', ?, ?)",
            (
                # The days it was started and said, then the dates its words refer to.
                (base + n, p.people, p.echo, p.names, _dates(started, p))
                for n, p in enumerate(passages, start=1)
            ),
        )

    def upsert_memory(self, memory: MemoryRecord) -> None:
        """Index a conversation's new memory; its passages stay. A conversation not indexed
        yet is indexed by its memory alone until ``upsert_conversation``."""
        self._check_memory(memory, memory.guild_id, memory.thread_id)
        with self._lock, self._transaction(memory.guild_id, create=True) as db:
            row = db.execute(
                "SELECT id FROM conversations WHERE thread_id = ?", (memory.thread_id,)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO conversations(thread_id, guild_id, requester, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (
                        memory.thread_id,
                        memory.guild_id,
                        memory.requester,
                        iso(memory.conversation_created_at),
                    ),
                )
                cid = int(db.execute("SELECT last_insert_rowid()").fetchone()[0])
            else:
                cid = int(row[0])
            db.execute(
                "UPDATE conversations SET memory = ?, memory_summary = ?, topics = ? WHERE id = ?",
                (*memory_columns(memory), cid),
            )
            self._write_memory_passage(db, cid)

    def delete(self, thread_id: str, guild_id: str | None = None) -> bool:
        """Remove a conversation; True if it was indexed. Give ``guild_id`` when known:
        without it every guild's file is looked at."""
        validate_snowflake(thread_id, "thread_id")
        guilds = [validate_snowflake(guild_id, "guild_id")] if guild_id else self.guilds()
        found = False
        with self._lock:
            for guild in guilds:
                with self._transaction(guild, create=False) as db:
                    if db is None:
                        continue
                    row = db.execute(
                        "SELECT id FROM conversations WHERE thread_id = ?", (thread_id,)
                    ).fetchone()
                    if row is None:
                        continue
                    base = row[0] << PASSAGE_BITS
                    db.execute(
                        "DELETE FROM passages WHERE rowid BETWEEN ? AND ?",
                        (base, base + MAX_PASSAGES),
                    )
                    db.execute("DELETE FROM conversations WHERE id = ?", (row[0],))
                    found = True
        return found

    def scrub(self, guild_id: str) -> None:
        """Leave no trace of deleted text in this guild's file (after a forget).

        A delete only marks FTS5 index entries as gone and frees pages without clearing them,
        so a forgotten word stays in the file's bytes until a merge. Here the index is merged
        into one segment, the file rebuilt from live rows (VACUUM) and the write-ahead log
        emptied: what was deleted is then in no byte of the index.
        """
        guild_id = validate_snowflake(guild_id, "guild_id")
        with self._lock:
            db = self._connection(guild_id, create=False)
            if db is None:
                return
            db.execute("INSERT INTO passages(passages) VALUES ('optimize')")
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def rebuild(self, conversations: Iterable[tuple[Conversation, MemoryRecord | None]]) -> int:
        """Remake the whole index from these conversations (every guild not among them is
        dropped). Returns how many were indexed."""
        with self._lock:
            for guild in self.guilds():
                self.drop_guild(guild)
            return self.upsert_many(conversations)

    # --- what is indexed --------------------------------------------------------------------

    def count(self, guild_id: str | None = None) -> int:
        """How many conversations are indexed (in one guild, or in all)."""
        guilds = [validate_snowflake(guild_id, "guild_id")] if guild_id else self.guilds()
        total = 0
        with self._lock:
            for guild in guilds:
                with self._transaction(guild, create=False) as db:
                    if db is not None:
                        total += db.execute("SELECT count(*) FROM conversations").fetchone()[0]
        return total

    def versions(self, guild_id: str) -> dict[str, str | None]:
        """thread id -> the conversation ``updated_at`` (ISO) that was indexed: lets a caller
        reindex only what changed since."""
        guild_id = validate_snowflake(guild_id, "guild_id")
        with self._lock, self._transaction(guild_id, create=False) as db:
            if db is None:
                return {}
            return dict(db.execute("SELECT thread_id, updated_at FROM conversations"))

    # --- internals --------------------------------------------------------------------------

    @staticmethod
    def _write_memory_passage(db: sqlite3.Connection, cid: int) -> None:
        """Passage 0: the conversation's rolling summary and its memory record."""
        summary, memory, names, days, created = db.execute(
            "SELECT conversation_summary, memory, names, days, created_at FROM conversations"
            " WHERE id = ?",
            (cid,),
        ).fetchone()
        # A conversation known so far by its memory alone has no days yet: its creation's.
        dates = days or (date_words(datetime.fromisoformat(created)) if created else "")
        base = cid << PASSAGE_BITS
        db.execute("DELETE FROM passages WHERE rowid = ?", (base,))
        db.execute(_INSERT_MEMORY_PASSAGE, (base, memory_text(summary, memory), names, dates))

    @staticmethod
    def _check_memory(memory: MemoryRecord, guild_id: str, thread_id: str) -> None:
        if memory.guild_id != guild_id or memory.thread_id != thread_id:
            raise ValueError(
                f"memory of {memory.guild_id}/{memory.thread_id} given for {guild_id}/{thread_id}"
            )


def _dates(started: str, passage: Passage) -> str:
    """A passage's dates column: the day its conversation started, the days its messages were
    said, then the dates its words refer to."""
    days = " ".join(dict.fromkeys(day for day in (started, *passage.days) if day))
    return f"{days} {passage.times}".strip()
