"""Passage vectors of the semantic re-ranker, kept beside the passages in a guild's index file.

A vector is stored per passage, so a conversation is embedded once, not once per question.
The vectors are derived from people's words, so they live and die with the passages they
were computed from:

- **Triggers on the conversations table** delete a conversation's vectors whenever the index
  rewrites it (a resave, a new memory, a forget's reindex) or removes it. They are SQL in the
  file, so a process without the re-ranker (the CLI, a memory worker) drops them too.
- **A vector is written only for the text it was computed from**: in the write transaction
  that stores it, the passages are read again and must be what was embedded. An embedding of
  text deleted meanwhile is never written.
- **A file reset** (other index settings) drops this table with the passages, and ``scrub``
  (after a forget) rebuilds the whole file: no deleted vector stays in its bytes.
- **Another model's vectors** are dropped on first use of the new one.

Only the standard library: the store works, and is tested, without the semantic extra. A
vector is float32 in the machine's byte order, as ``numpy.ndarray.tobytes`` gives it; the
file is a local cache (rebuildable), never moved between machines.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from memory.recall.passages import MAX_PASSAGES, PASSAGE_BITS

__all__ = ["TABLE", "PassageText", "conversation_ids", "passages", "prepare", "store", "stored"]

# RecallIndex drops a table of this name when it resets a file made with other settings.
TABLE = "passage_vectors"

_SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
        cid INTEGER NOT NULL,
        pid INTEGER NOT NULL,
        vector BLOB NOT NULL,
        PRIMARY KEY (cid, pid)
    ) WITHOUT ROWID""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_rewritten AFTER UPDATE ON conversations BEGIN
        DELETE FROM {TABLE} WHERE cid = old.id;
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_removed AFTER DELETE ON conversations BEGIN
        DELETE FROM {TABLE} WHERE cid = old.id;
    END""",
)
_PARTS = ("table", "trigger", "trigger")
_NAMES = (TABLE, f"{TABLE}_rewritten", f"{TABLE}_removed")
_MODEL_KEY = "vectors_model"


@dataclass(frozen=True, slots=True)
class PassageText:
    """What a passage holds, as the index stores it. ``number`` 0 is the memory passage."""

    pid: int
    number: int
    people: str
    echo: str
    memory: str


def prepare(db: sqlite3.Connection, model: str) -> None:
    """Create the table and its triggers if missing; drop vectors made by another model.

    Reads only, unless something must be created or dropped (then one short write)."""
    have = {
        (kind, name)
        for kind, name in db.execute(
            "SELECT type, name FROM sqlite_master WHERE name IN (?, ?, ?)", _NAMES
        )
    }
    row = db.execute("SELECT value FROM meta WHERE key = ?", (_MODEL_KEY,)).fetchone()
    if have == set(zip(_PARTS, _NAMES, strict=True)) and row is not None and row[0] == model:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA:
            db.execute(statement)
        row = db.execute("SELECT value FROM meta WHERE key = ?", (_MODEL_KEY,)).fetchone()
        if row is None or row[0] != model:
            db.execute(f"DELETE FROM {TABLE}")
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (_MODEL_KEY, model))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def conversation_ids(db: sqlite3.Connection, thread_ids: Sequence[str]) -> dict[str, int]:
    """thread id -> the index's id of that conversation (absent: not indexed)."""
    if not thread_ids:
        return {}
    marks = ", ".join("?" * len(thread_ids))
    query = f"SELECT thread_id, id FROM conversations WHERE thread_id IN ({marks})"
    return {str(t): int(c) for t, c in db.execute(query, tuple(thread_ids))}


def passages(db: sqlite3.Connection, cid: int) -> list[PassageText]:
    """Every passage of a conversation, the memory passage first."""
    base = cid << PASSAGE_BITS
    return [
        PassageText(int(pid), int(pid) - base, people, echo, memory)
        for pid, people, echo, memory in db.execute(
            "SELECT rowid, people, echo, memory FROM passages WHERE rowid BETWEEN ? AND ?"
            " ORDER BY rowid",
            (base, base + MAX_PASSAGES),
        )
    ]


def stored(db: sqlite3.Connection, cids: Iterable[int]) -> dict[int, dict[int, bytes]]:
    """cid -> {pid: vector} for the conversations whose vectors are kept."""
    found: dict[int, dict[int, bytes]] = {}
    for cid in cids:
        rows = db.execute(f"SELECT pid, vector FROM {TABLE} WHERE cid = ?", (cid,)).fetchall()
        if rows:
            found[cid] = {int(pid): bytes(vector) for pid, vector in rows}
    return found


def store(
    db: sqlite3.Connection, cid: int, embedded: list[PassageText], vectors: dict[int, bytes]
) -> bool:
    """Keep a conversation's passage vectors, if its passages are still ``embedded``.

    Checked and written in one write transaction, so no rewrite of the conversation can come
    between: a vector of text that is gone is never stored. False: not stored (the text
    changed; the next search embeds it again)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if passages(db, cid) != embedded:
            db.execute("ROLLBACK")
            return False
        db.execute(f"DELETE FROM {TABLE} WHERE cid = ?", (cid,))
        db.executemany(
            f"INSERT INTO {TABLE}(cid, pid, vector) VALUES (?, ?, ?)",
            ((cid, pid, vector) for pid, vector in sorted(vectors.items())),
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return True
