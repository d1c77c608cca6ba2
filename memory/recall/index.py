"""Recall: a ranked full-text search over one guild's conversations and their memories.

The engine is SQLite FTS5 (BM25 built in, in the standard library). Choices, each measured
on the LoCoMo dev split with ``python -m bench.locomo`` (numbers in ``bench/README.md``):

- **Passages, not whole conversations.** A conversation is indexed as overlapping passages of
  ``window`` messages (every ``stride`` messages), and ranked by its best passage. An answer
  usually sits in two or three messages; BM25 over a whole long conversation dilutes them.
- **Its date, in words.** Every passage carries the day the conversation started ("Monday 8
  May 2023"), in a column of its own with a higher weight: questions say "in May 2023".
- **The dates its words mean.** "yesterday", "last Friday", "two weeks ago" are resolved
  against the message's date and go in the dates column as words too, with a mark on any
  passage that places something in time; a question asking when adds the mark, so the passage
  that says when ranks first (``recall_temporal``). Relative dates in a question are resolved
  against the time of asking.
- **Its memory.** The memory record (summary, topics, facts, decisions, action items, open
  questions) and the conversation's rolling summary are one more passage of the conversation.
- **People over Echo.** What people said, and Echo's own answers and tool results, are
  separate columns; Echo's weigh less (they restate). Thinking and tool calls are not indexed.
- **Porter stemming** (``porter unicode61 remove_diacritics 2``).

**A large match set is not scored whole.** FTS5 scores every passage a query matches (about
2 us each), so a query matching more than 2,000 passages (a big guild, a common word) is
ranked the way of Lucene's "common terms" query: the candidates are the passages holding the
query's rarest words (2,000 at most), each scored with every word of the query, exactly as an
exact ranking would score it; a passage holding only the common words is left out (such words
weigh little in BM25). At 100,000 conversations this took search p95 from ~150 ms to under
20 ms with the same top result in 98% of queries (``python -m bench --only recall``). Smaller
guilds, LoCoMo's among them, are ranked exactly.

**One SQLite file per guild** (``<path>/<guild_id>.sqlite3``): a search opens only its own
guild's file, so nothing of another guild can be returned, and BM25's statistics are the
guild's own, so another guild's words cannot even change the order of the results. A search
costs the same however many other guilds there are, opening the index reads nothing, and
forgetting a guild is removing one file.

Calls block (each is a short SQLite transaction); from asyncio, run them with
``asyncio.to_thread``. One lock serialises them, so one ``RecallIndex`` may be shared across
threads. Several processes may use the same folder (WAL mode): an operator's CLI can search
while the bot writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import sqlite3
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from memory.longterm.summarizer import STOPWORDS
from memory.recall.temporal import TIME_MARK, asks_for_time, time_words
from memory.records.memories import MemoryRecord
from memory.records.models import Conversation, Message, MessageType, validate_snowflake
from memory.stores.base import ConversationStore

log = logging.getLogger(__name__)

__all__ = [
    "RecallError",
    "RecallHit",
    "RecallIndex",
    "RecallSettings",
    "SyncReport",
    "date_words",
    "match_expression",
    "query_terms",
    "sync",
]

SCHEMA_VERSION = 2

# Passage rowids are ``conversation id << _PASSAGE_BITS | n``: all passages of a conversation
# are one rowid range, which FTS5 deletes without scanning. Passage 0 is the memory.
_PASSAGE_BITS = 20
_MAX_PASSAGES = (1 << _PASSAGE_BITS) - 1
_SUFFIX = ".sqlite3"
# A query is bounded: more terms than this add cost, not recall.
_MAX_TERMS = 64
_MAX_LIMIT = 100
# The best passages grouped into conversations: at least this many, 20 per result asked for.
_MIN_PASSAGES = 100
# Ranking costs FTS5 about 2 us per matching passage (bm25() reads each one's positions and
# length), so a query whose words match more passages than this (a large guild, a common word)
# is ranked the way of Lucene's "common terms" query instead: see ``_rank_common``.
_EXACT_MATCHES = 2_000
# ... where the candidates are the passages holding the query's rarest words, up to this many.
_RARE_MATCHES = 2_000
# Errors that mean the file is not a usable database (as opposed to busy, full, ...).
_DAMAGED = frozenset({sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT})
# Attachment text is indexed, up to this much per message.
_MAX_ATTACHMENT_CHARS = 20_000

# The tokenizer splits "didn't" into "didn" and "t": those halves say nothing either.
_QUERY_STOPWORDS = STOPWORDS | frozenset(
    "didn doesn don isn wasn aren weren won wouldn couldn shouldn haven hasn hadn ve ll re".split()
)
_TOKEN = re.compile(r"[^\W_]+")


class RecallError(Exception):
    """The index cannot be used (no FTS5 in this SQLite, an unusable file)."""


@dataclass(frozen=True)
class RecallSettings:
    """How conversations are cut and weighed. Measured defaults; see the module docstring.

    ``window``, ``stride`` and ``tokenizer`` shape the stored index: opening a guild file made
    with other values resets it (it is rebuildable from the conversation files). The weights
    apply at query time.
    """

    window: int = 5
    stride: int = 3
    tokenizer: str = "porter unicode61 remove_diacritics 2"
    people_weight: float = 1.0
    echo_weight: float = 0.5
    memory_weight: float = 0.5
    names_weight: float = 0.5
    dates_weight: float = 2.0
    index_echo: bool = True

    def __post_init__(self) -> None:
        if self.window < 1 or not 1 <= self.stride <= self.window:
            raise ValueError("need window >= 1 and 1 <= stride <= window")

    def fingerprint(self) -> str:
        shape = f"v{SCHEMA_VERSION}|{self.window}|{self.stride}|{self.tokenizer}|{self.index_echo}"
        return hashlib.sha256(shape.encode()).hexdigest()[:16]

    @property
    def weights(self) -> tuple[float, ...]:
        # In the column order of the passages table.
        return (
            self.people_weight,
            self.echo_weight,
            self.memory_weight,
            self.names_weight,
            self.dates_weight,
        )


@dataclass(frozen=True)
class RecallHit:
    """One conversation found, best first. ``score`` is BM25 of its best passage (higher is
    better; comparable only within one search)."""

    thread_id: str
    guild_id: str
    score: float
    summary: str
    created_at: str | None
    requester: str
    snippet: str = ""
    topics: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["topics"] = list(self.topics)
        return data


def query_terms(query: str) -> list[str]:
    """The words of a query that can match: stopwords dropped, each once, at most 64.

    Only runs of letters and digits survive, so FTS5 syntax in user input (quotes, ``*``,
    ``NEAR``, ``col:``, ``AND``/``OR``/``NOT``, ``-``, parentheses) is never syntax: each term
    is then quoted as an FTS5 string.
    """
    seen: dict[str, None] = {}
    for word in _TOKEN.findall(query.lower()):
        if word in _QUERY_STOPWORDS or word == TIME_MARK or (len(word) < 2 and not word.isdigit()):
            continue
        seen.setdefault(word, None)
        if len(seen) >= _MAX_TERMS:
            break
    return list(seen)


def match_expression(terms: Iterable[str]) -> str:
    """Terms OR-ed as quoted FTS5 strings: any term may match, BM25 ranks by all of them."""
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


def date_words(moment: datetime | None) -> str:
    """A day as people say it: "Monday 8 May 2023"."""
    if moment is None:
        return ""
    day = moment.astimezone(UTC)
    return f"{day:%A} {day.day} {day:%B} {day.year}"


# --- what is indexed -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Passage:
    people: str
    echo: str
    names: str
    times: str  # the dates its messages refer to, resolved (see recall_temporal)


def _attachment_text(message: Message) -> str:
    attachments = (message.meta.model_extra or {}).get("attachments")
    if not isinstance(attachments, list):
        return ""
    parts: list[str] = []
    for item in attachments:
        if not isinstance(item, dict):
            continue
        for key in ("filename", "description", "text"):
            value = item.get(key)
            if isinstance(value, str) and value:
                parts.append(value[:_MAX_ATTACHMENT_CHARS])
    return "\n".join(parts)


def _passages(conversation: Conversation, settings: RecallSettings) -> list[_Passage]:
    """Overlapping windows over the messages that carry words people can ask about."""
    # (people text, echo text, author name, the dates it refers to)
    units: list[tuple[str, str, str, str]] = []
    for message in conversation.history:
        kind = message.message_type
        text = message.message_content
        extra = _attachment_text(message)
        if extra:
            text = f"{text}\n{extra}" if text else extra
        if not text.strip():
            continue
        said = message.created_at or conversation.created_at
        if kind is MessageType.CHAT and message.requester is not None:
            units.append((text, "", message.author_name or "", time_words(text, said)))
        elif settings.index_echo and kind in (MessageType.CHAT, MessageType.TOOL_CALL_RESPONSE):
            units.append(("", text, "", time_words(text, said)))
    if not units:
        return []
    window, stride = settings.window, settings.stride
    starts = list(range(0, max(1, len(units) - window + stride), stride))
    if len(starts) > _MAX_PASSAGES:  # more than a million passages: widen the last one
        starts = starts[:_MAX_PASSAGES]
    passages: list[_Passage] = []
    for number, start in enumerate(starts):
        end = len(units) if number == len(starts) - 1 else start + window
        chunk = units[start:end]
        names = dict.fromkeys(name for _, _, name, _ in chunk if name)
        times = dict.fromkeys(w for *_, t in chunk for w in t.split())
        passages.append(
            _Passage(
                people="\n".join(p for p, _, _, _ in chunk if p),
                echo="\n".join(e for _, e, _, _ in chunk if e),
                names=" ".join(names),
                times=" ".join(times),
            )
        )
    return passages


_Rows = tuple[list[_Passage], str, str]


def _memory_columns(memory: MemoryRecord) -> tuple[str, str, str]:
    """(searchable text, summary, topics) of a memory record."""
    text = "\n".join(str(value) for value in memory.searchable_text().values() if value)
    data = memory.memory_data
    return text, data.summary, " ".join(data.topics)


def _memory_text(conversation_summary: str, memory: str) -> str:
    """Passage 0: the conversation's rolling summary and its memory record."""
    return "\n".join(part for part in (conversation_summary, memory) if part)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


# --- the index -----------------------------------------------------------------------------------

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
    memory TEXT NOT NULL DEFAULT '',
    memory_summary TEXT NOT NULL DEFAULT '',
    topics TEXT NOT NULL DEFAULT '',
    names TEXT NOT NULL DEFAULT '',
    passages INTEGER NOT NULL DEFAULT 0
);
CREATE VIRTUAL TABLE passages USING fts5(people, echo, memory, names, dates, tokenize={tok});
"""

# A conversation ranks by its best passage, so the best ``limit`` conversations are the first
# ``limit`` distinct ones among the best passages: only the top passages are grouped (the last
# column says how many there were; if the cut was too tight, the search runs again uncut).
# ``hits.pid`` beside MIN() is SQLite's bare column: the passage the minimum came from.
_SEARCH = """
WITH hits AS MATERIALIZED (
    SELECT rowid AS pid, rowid >> {bits} AS cid, bm25(passages, {weights}) AS rank
    FROM passages WHERE passages MATCH ? ORDER BY rank LIMIT ?
)
SELECT c.id, c.thread_id, c.guild_id, c.requester, c.created_at,
       CASE WHEN c.memory_summary != '' THEN c.memory_summary ELSE c.conversation_summary END,
       c.topics,
       MIN(hits.rank) AS best,
       hits.pid,
       (SELECT count(*) FROM hits)
FROM hits JOIN conversations AS c ON c.id = hits.cid
WHERE c.guild_id = ?
GROUP BY c.id
ORDER BY best, c.created_at DESC, c.thread_id
LIMIT ?
"""

_INSERT_MEMORY_PASSAGE = (
    "INSERT INTO passages(rowid, people, echo, memory, names, dates) VALUES (?, '', '', ?, ?, ?)"
)

# The rows of conversations ranked outside SQL (see ``_rank_common``).
_CONVERSATIONS = """
SELECT c.id, c.thread_id, c.guild_id, c.requester, c.created_at,
       CASE WHEN c.memory_summary != '' THEN c.memory_summary ELSE c.conversation_summary END,
       c.topics
FROM conversations AS c WHERE c.guild_id = ? AND c.id IN ({marks})
"""

# Every passage a query matches, with its score (lower is better, as bm25() gives it).
_SCORES = "SELECT rowid, bm25(passages, {weights}) FROM passages WHERE passages MATCH ?"

# How many passages match, counted no further than the limit (reads no more of the index).
_PROBE = "SELECT count(*) FROM (SELECT 1 FROM passages WHERE passages MATCH ? LIMIT ?)"

# The snippet of the passage that ranked its conversation (bm25() is not needed to find it:
# in FTS5 every bm25() call of a statement first counts each query word's passages).
_SNIPPET = """
SELECT snippet(passages, -1, '', '', '…', 24) FROM passages
WHERE passages MATCH ? AND rowid = ?
"""


class RecallIndex:
    """The recall index of every guild, in one folder (``<data>/index/recall``).

    ``upsert_conversation`` and ``upsert_memory`` keep it current as conversations and
    memories are saved; ``rebuild`` remakes it from the files.
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
        weights = ", ".join(repr(float(w)) for w in self.settings.weights)
        self._search_sql = _SEARCH.format(bits=_PASSAGE_BITS, weights=weights)
        self._scores_sql = _SCORES.format(weights=weights)

    @classmethod
    def in_data_dir(cls, data_dir: str | os.PathLike[str], **kwargs: Any) -> RecallIndex:
        """The index of an Echo data folder: ``<data>/index/recall``."""
        return cls(Path(data_dir) / "index" / "recall", **kwargs)

    def __repr__(self) -> str:
        return f"RecallIndex({str(self.path)!r})"

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
        """What is written of a conversation: its passages, its date in words, its names."""
        passages = _passages(conversation, self.settings)
        dates = date_words(conversation.created_at)
        names = " ".join(dict.fromkeys(n for p in passages for n in p.names.split() if n))
        return passages, dates, names

    def _upsert(
        self,
        db: sqlite3.Connection,
        conversation: Conversation,
        memory: MemoryRecord | None,
        rows: _Rows,
    ) -> None:
        passages, dates, names = rows
        row = db.execute(
            "SELECT id, memory, memory_summary, topics FROM conversations WHERE thread_id = ?",
            (conversation.thread_id,),
        ).fetchone()
        if memory is not None:
            kept = _memory_columns(memory)
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
            " conversation_summary = ?, names = ?, memory = ?, memory_summary = ?,"
            " topics = ?, passages = ? WHERE id = ?",
            (
                conversation.requester,
                _iso(conversation.created_at),
                _iso(conversation.updated_at),
                conversation.summary,
                names,
                *kept,
                len(passages),
                cid,
            ),
        )
        base = cid << _PASSAGE_BITS
        if row is not None:  # a new conversation has no passages to delete
            db.execute(
                "DELETE FROM passages WHERE rowid BETWEEN ? AND ?", (base, base + _MAX_PASSAGES)
            )
        # Passage 0 first: FTS5 keeps a transaction's inserts in memory only while their rowids
        # ascend (anything else writes them out as a new segment).
        text = _memory_text(conversation.summary, kept[0])
        db.execute(_INSERT_MEMORY_PASSAGE, (base, text, names, dates))
        db.executemany(
            "INSERT INTO passages(rowid, people, echo, memory, names, dates)"
            " VALUES (?, ?, ?, '', ?, ?)",
            (
                # The conversation's date, then the dates its words refer to.
                (base + n, p.people, p.echo, p.names, f"{dates} {p.times}".strip())
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
                        _iso(memory.conversation_created_at),
                    ),
                )
                cid = int(db.execute("SELECT last_insert_rowid()").fetchone()[0])
            else:
                cid = int(row[0])
            db.execute(
                "UPDATE conversations SET memory = ?, memory_summary = ?, topics = ? WHERE id = ?",
                (*_memory_columns(memory), cid),
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
                    base = row[0] << _PASSAGE_BITS
                    db.execute(
                        "DELETE FROM passages WHERE rowid BETWEEN ? AND ?",
                        (base, base + _MAX_PASSAGES),
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

    def rebuild(self, conversations: Iterable[tuple[Conversation, MemoryRecord | None]]) -> int:
        """Remake the whole index from these conversations (every guild not among them is
        dropped). Returns how many were indexed."""
        with self._lock:
            for guild in self.guilds():
                self.drop_guild(guild)
            return self.upsert_many(conversations)

    # --- reading ----------------------------------------------------------------------------

    def search(
        self, guild_id: str, query: str, limit: int = 5, *, now: datetime | None = None
    ) -> list[RecallHit]:
        """This guild's conversations that best match ``query``, best first.

        The query is words, not FTS5 syntax: see ``query_terms``. A query of stopwords only
        finds nothing. Relative dates in it ("last week") are resolved against ``now`` (the
        time of asking; default: the current time).
        """
        guild_id = validate_snowflake(guild_id, "guild_id")
        terms = query_terms(query)
        limit = min(max(int(limit), 0), _MAX_LIMIT)
        if not terms or limit == 0:
            return []
        # The snippet shows what was said: never the date words of a passage, nor the mark.
        shown = f"{{people echo memory}} : ({match_expression(terms)})"
        asked = time_words(query, now or datetime.now(UTC))
        terms.extend(t for t in query_terms(asked) if t not in terms)
        if asks_for_time(query):
            terms.append(TIME_MARK)
        expression = match_expression(terms)
        with self._lock, self._transaction(guild_id, create=False) as db:
            if db is None:
                return []
            rows = None
            if len(terms) > 1 and _probe(db, expression, _EXACT_MATCHES) > _EXACT_MATCHES:
                rows = self._rank_common(db, guild_id, terms, limit)
            if rows is None:
                rows = self._rank_exact(db, guild_id, expression, limit)
            hits: list[RecallHit] = []
            for _, thread, guild, requester, created, summary, topics, best, pid in rows:
                found = db.execute(_SNIPPET, (shown, pid)).fetchone()
                hits.append(
                    RecallHit(
                        thread_id=thread,
                        guild_id=guild,
                        score=round(-best, 4),
                        summary=summary,
                        created_at=created,
                        requester=requester,
                        snippet=" ".join((found[0] if found else "").split()),
                        topics=tuple(topics.split()),
                    )
                )
            return hits

    def _rank_exact(
        self, db: sqlite3.Connection, guild_id: str, expression: str, limit: int
    ) -> list[tuple[Any, ...]]:
        """BM25 over every passage that matches; the best ``limit`` conversations."""
        cut = max(_MIN_PASSAGES, limit * 20)
        rows = db.execute(self._search_sql, (expression, cut, guild_id, limit)).fetchall()
        if len(rows) < limit and rows and rows[0][-1] >= cut:
            rows = db.execute(self._search_sql, (expression, -1, guild_id, limit)).fetchall()
        return [row[:-1] for row in rows]

    def _rank_common(
        self, db: sqlite3.Connection, guild_id: str, terms: list[str], limit: int
    ) -> list[tuple[Any, ...]] | None:
        """Rank a query that matches too many passages to score them all; None: rank exactly.

        The candidates are the passages holding the query's rarest words (together in at most
        ``_RARE_MATCHES`` passages); each is scored with every word of the query, exactly as
        ``_rank_exact`` would score it. A passage holding only common words is not a candidate:
        BM25 gives such words little weight, and scoring the tens of thousands of passages that
        hold them is what made a search slow. If no word is rare, the candidates are the
        passages holding all the words. Too few conversations found either way: None.

        FTS5 scores only the words of the MATCH: a candidate holding a common word is scored
        again by ``(R) AND (C)``, which has every word once, as the query has (AND moves the
        common words' lists only to the candidates, it does not walk them).
        """
        counts = {t: _probe(db, match_expression([t]), _RARE_MATCHES) for t in terms}
        rare: list[str] = []
        found = 0
        for term in sorted(terms, key=counts.__getitem__):
            if found + counts[term] > _RARE_MATCHES:
                break
            rare.append(term)
            found += counts[term]
        common = [t for t in terms if t not in rare]
        scores: dict[int, float] = {}
        if rare and common:
            rare_expression = match_expression(rare)
            scores = dict(db.execute(self._scores_sql, (rare_expression,)).fetchall())
            both = f"({rare_expression}) AND ({match_expression(common)})"
            scores.update(db.execute(self._scores_sql, (both,)).fetchall())
        elif common:
            scores = dict(
                db.execute(
                    self._scores_sql, (" AND ".join(match_expression([t]) for t in terms),)
                ).fetchall()
            )
        # A conversation's score is its best passage's.
        best: dict[int, tuple[float, int]] = {}
        for pid, score in scores.items():
            cid = pid >> _PASSAGE_BITS
            if cid not in best or score < best[cid][0]:
                best[cid] = (score, pid)
        if len(best) < limit:
            return None
        ranked = sorted(best, key=lambda c: best[c][0])
        # Ties are ordered as _rank_exact orders them (newest first, then by thread id): take
        # every conversation tied with the last one kept, then sort with the tie-breaks.
        last = best[ranked[limit - 1]][0]
        chosen = [c for c in ranked if best[c][0] <= last]
        marks = ", ".join("?" * len(chosen))
        rows = db.execute(_CONVERSATIONS.format(marks=marks), (guild_id, *chosen)).fetchall()
        rows.sort(key=lambda r: r[1])  # thread id
        rows.sort(key=lambda r: (r[4] is not None, r[4] or ""), reverse=True)  # newest first
        rows.sort(key=lambda r: best[r[0]][0])
        return [(*row, *best[row[0]]) for row in rows[:limit]]

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

    def versions(self, guild_id: str) -> dict[str, str | None]:
        """thread id -> the conversation ``updated_at`` (ISO) that was indexed: lets a caller
        reindex only what changed since."""
        guild_id = validate_snowflake(guild_id, "guild_id")
        with self._lock, self._transaction(guild_id, create=False) as db:
            if db is None:
                return {}
            return dict(db.execute("SELECT thread_id, updated_at FROM conversations"))

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

    @staticmethod
    def _write_memory_passage(db: sqlite3.Connection, cid: int) -> None:
        """Passage 0: the conversation's rolling summary and its memory record."""
        summary, memory, names, created = db.execute(
            "SELECT conversation_summary, memory, names, created_at FROM conversations"
            " WHERE id = ?",
            (cid,),
        ).fetchone()
        dates = date_words(datetime.fromisoformat(created)) if created else ""
        base = cid << _PASSAGE_BITS
        db.execute("DELETE FROM passages WHERE rowid = ?", (base,))
        db.execute(_INSERT_MEMORY_PASSAGE, (base, _memory_text(summary, memory), names, dates))

    @staticmethod
    def _check_memory(memory: MemoryRecord, guild_id: str, thread_id: str) -> None:
        if memory.guild_id != guild_id or memory.thread_id != thread_id:
            raise ValueError(
                f"memory of {memory.guild_id}/{memory.thread_id} given for {guild_id}/{thread_id}"
            )


@dataclass
class SyncReport:
    """What ``sync`` did: conversations (re)indexed, removed, and left as they were."""

    indexed: int = 0
    removed: int = 0
    unchanged: int = 0


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
            if indexed.pop(info.thread_id, None) == _iso(info.updated_at):
                report.unchanged += 1
                continue
            conversation = await store.load(info.thread_id)
            if conversation is None or conversation.guild_id != guild:
                continue
            memory = await store.load_memory(guild, info.thread_id)
            await asyncio.to_thread(index.upsert_conversation, conversation, memory)
            report.indexed += 1
        for thread_id in indexed:  # indexed, but no longer stored
            await asyncio.to_thread(index.delete, thread_id, guild)
            report.removed += 1
    return report


def _probe(db: sqlite3.Connection, expression: str, most: int) -> int:
    """How many passages match ``expression``, counted no further than ``most + 1``."""
    return int(db.execute(_PROBE, (expression, most + 1)).fetchone()[0])


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
