"""The recall index's files: one SQLite file per guild, its schema, connections and transactions.

**One SQLite file per guild** (``<path>/<guild_id>.sqlite3``): a search opens only its own
guild's file, so nothing of another guild can be returned, and BM25's statistics are the
guild's own, so another guild's words cannot even change the order of the results. A search
costs the same however many other guilds there are, opening the index reads nothing, and
forgetting a guild is removing one file.

A file made with other settings (``RecallSettings.fingerprint``) is reset, and a damaged one
set aside: the index is a cache of the conversation files, rebuildable from them. Several
processes may use the same folder (WAL mode): an operator's CLI can search while the bot
writes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from memory.recall.passages import SCHEMA_VERSION, RecallSettings
from memory.records.models import validate_snowflake

log = logging.getLogger(__name__)

__all__ = ["GuildFiles", "RecallError"]

_SUFFIX = ".sqlite3"
# Errors that mean the file is not a usable database (as opposed to busy, full, ...).
_DAMAGED = frozenset({sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT})

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    thread_id TEXT NOT NULL UNIQUE,
    guild_id TEXT NOT NULL,
    requester TEXT NOT NULL DEFAULT '',
    created_at TEXT,
    updated_at TEXT,
    conversation_summary TEXT NOT NULL DEFAULT '',
    days TEXT NOT NULL DEFAULT '',
    memory TEXT NOT NULL DEFAULT '',
    memory_summary TEXT NOT NULL DEFAULT '',
    topics TEXT NOT NULL DEFAULT '',
    names TEXT NOT NULL DEFAULT '',
    speech TEXT NOT NULL DEFAULT '',
    passages INTEGER NOT NULL DEFAULT 0
);
CREATE VIRTUAL TABLE passages USING fts5(people, echo, memory, names, dates, tokenize={tok});
"""


class RecallError(Exception):
    """The index cannot be used (no FTS5 in this SQLite, an unusable file)."""


class GuildFiles:
    """The guild files of one index folder: opened on first use, at most ``max_open`` at once.

    One lock serialises every call, so one instance may be shared across threads.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        settings: RecallSettings | None = None,
        max_open: int = 32,
    ) -> None:
        self.path = Path(path)
        self.settings = settings or RecallSettings()
        self.max_open = max(1, max_open)
        self._lock = threading.RLock()
        self._connections: OrderedDict[str, sqlite3.Connection] = OrderedDict()
        self._open = False

    # --- life cycle -------------------------------------------------------------------------

    def open(self) -> Self:
        """Check that SQLite has FTS5. Reads no index file: guild files open on first use."""
        _require_fts5()
        with self._lock:
            self._open = True
        return self

    def close(self) -> None:
        with self._lock:
            while self._connections:
                _, connection = self._connections.popitem()
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
            self._open = False

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the files --------------------------------------------------------------------------

    def made(self, guild_id: str) -> str | None:
        """Which making of this guild's file is there (None: no file): it changes when the
        file is made anew (first use, other settings, damage), so a cache of what the index
        holds knows to start over."""
        guild_id = validate_snowflake(guild_id, "guild_id")
        with self._lock, self._transaction(guild_id, create=False) as db:
            if db is None:
                return None
            row = db.execute("SELECT value FROM meta WHERE key = 'made'").fetchone()
            return str(row[0]) if row else None

    def guilds(self) -> list[str]:
        """Guilds that have an index file."""
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        return sorted(
            n.removesuffix(_SUFFIX)
            for n in names
            if n.endswith(_SUFFIX) and n.removesuffix(_SUFFIX).isdigit()
        )

    def guild_file(self, guild_id: str) -> Path:
        """The SQLite file of a guild's index (it may not exist yet)."""
        return self._file(validate_snowflake(guild_id, "guild_id"))

    def drop_guild(self, guild_id: str) -> None:
        """Forget a guild's whole index (its file)."""
        guild_id = validate_snowflake(guild_id, "guild_id")
        with self._lock:
            connection = self._connections.pop(guild_id, None)
            if connection is not None:
                connection.close()
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self._file(guild_id).with_name(f"{guild_id}{_SUFFIX}{suffix}"))

    # --- internals --------------------------------------------------------------------------

    def _file(self, guild_id: str) -> Path:
        return self.path / f"{guild_id}{_SUFFIX}"

    @contextlib.contextmanager
    def _transaction(self, guild_id: str, *, create: bool) -> Iterator[Any]:
        db = self._connection(guild_id, create=create)
        if db is None:
            yield None
            return
        db.execute("BEGIN IMMEDIATE" if create else "BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _connection(self, guild_id: str, *, create: bool) -> sqlite3.Connection | None:
        if not self._open:
            raise RecallError(f"{self!r} is not open")
        connection = self._connections.get(guild_id)
        if connection is not None:
            self._connections.move_to_end(guild_id)
            return connection
        path = self._file(guild_id)
        if not create and not path.exists():
            return None
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
        try:
            connection = self._connect(path, guild_id)
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorcode", None) not in _DAMAGED:
                raise RecallError(f"recall index {path} is unusable: {exc}") from exc
            # The index is a cache of the files: set the damaged one aside, start afresh.
            target = path.with_name(f"{path.name}.corrupt")
            os.replace(path, target)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(f"{path}{suffix}")
            log.warning(
                "recall index %s is damaged (%s); moved aside to %s and started empty "
                "(rebuild the index to fill it again)",
                path,
                exc,
                target.name,
            )
            try:
                connection = self._connect(path, guild_id)
            except sqlite3.DatabaseError as again:
                raise RecallError(f"recall index {path} is unusable: {again}") from again
        self._connections[guild_id] = connection
        while len(self._connections) > self.max_open:
            _, old = self._connections.popitem(last=False)
            old.close()
        return connection

    def _connect(self, path: Path, guild_id: str) -> sqlite3.Connection:
        connection = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._prepare(connection, guild_id)
        except BaseException:
            connection.close()
            raise
        return connection

    def _prepare(self, db: sqlite3.Connection, guild_id: str) -> None:
        """Create the schema in a new file; reset a file made by other settings."""
        fingerprint = self.settings.fingerprint()
        db.execute("BEGIN IMMEDIATE")
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            if "meta" in tables:
                stored = db.execute("SELECT value FROM meta WHERE key = 'shape'").fetchone()
                if stored is not None and stored[0] == fingerprint:
                    db.execute("COMMIT")
                    return
                log.warning(
                    "recall index of guild %s was made with other settings; it is reset "
                    "(rebuild the index to fill it again)",
                    guild_id,
                )
                # passage_vectors: the semantic re-ranker's (memory.recall.vectors), if any.
                for name in ("passages", "conversations", "meta", "passage_vectors"):
                    db.execute(f"DROP TABLE IF EXISTS {name}")
            tok = "'" + self.settings.tokenizer.replace("'", "''") + "'"
            for statement in _SCHEMA.format(tok=tok).split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT INTO meta VALUES ('shape', ?)", (fingerprint,))
            db.execute("INSERT INTO meta VALUES ('guild_id', ?)", (guild_id,))
            db.execute("INSERT INTO meta VALUES ('made', ?)", (uuid.uuid4().hex,))
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise


def _require_fts5() -> None:
    try:
        db = sqlite3.connect(":memory:")
        try:
            db.execute("CREATE VIRTUAL TABLE probe USING fts5(x)")
        finally:
            db.close()
    except sqlite3.OperationalError as exc:
        raise RecallError(
            f"this Python's SQLite ({sqlite3.sqlite_version}) has no FTS5, which recall needs"
        ) from exc
