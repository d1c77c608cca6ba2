"""Searching the recall index: BM25 over passages, a conversation ranked by its best passage,
BM25's best ordered again by their coverage of the question (``memory.recall.coverage``).

**A large match set is not scored whole.** FTS5 scores every passage a query matches (reading
each one's positions and length), so a query matching more than ``_EXACT_MATCHES`` passages
(a big guild, a common word) is ranked the way of Lucene's "common terms" query: the
candidates are the passages holding the query's rarest words (``_RARE_MATCHES`` at most), each
scored with every word of the query, exactly as an exact ranking would score it; a passage
holding only the common words is left out (such words weigh little in BM25). In a large guild
this keeps a search fast and almost always gives the same top result as the exact ranking
(``python -m bench --only recall`` measures both). Smaller guilds, LoCoMo's among them, are
ranked exactly.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from memory.recall.coverage import DEPTH, coverage_order
from memory.recall.files import GuildFiles
from memory.recall.passages import PASSAGE_BITS, RecallSettings
from memory.recall.query import match_expression, phrase_pairs, query_terms
from memory.recall.temporal import TIME_MARK, asks_for_time, time_words
from memory.records.models import validate_snowflake

__all__ = ["RankedSearch", "RecallHit"]

_MAX_LIMIT = 100
# The best passages grouped into conversations: at least this many, 20 per result asked for.
_MIN_PASSAGES = 100
# Ranking makes FTS5 read every matching passage (bm25() reads each one's positions and
# length), so a query whose words match more passages than this (a large guild, a common word)
# is ranked the way of Lucene's "common terms" query instead: see ``_rank_common``.
_EXACT_MATCHES = 2_000
# ... where the candidates are the passages holding the query's rarest words, up to this many.
_RARE_MATCHES = 2_000

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
       c.topics, c.speech,
       MIN(hits.rank) AS best,
       hits.pid,
       (SELECT count(*) FROM hits)
FROM hits JOIN conversations AS c ON c.id = hits.cid
WHERE c.guild_id = ?
GROUP BY c.id
ORDER BY best, c.created_at DESC, c.thread_id
LIMIT ?
"""

# The rows of conversations ranked outside SQL (see ``_rank_common``).
_CONVERSATIONS = """
SELECT c.id, c.thread_id, c.guild_id, c.requester, c.created_at,
       CASE WHEN c.memory_summary != '' THEN c.memory_summary ELSE c.conversation_summary END,
       c.topics, c.speech
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


@dataclass(frozen=True)
class RecallHit:
    """One conversation found, best first. ``score`` is its relevance: BM25 of its best
    passage relative to the best one found, plus its coverage of the question
    (``memory.recall.coverage``); higher is better, comparable only within one search."""

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


class RankedSearch(GuildFiles):
    """The guild files, searched: ``search`` ranks a guild's conversations for a query."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        settings: RecallSettings | None = None,
        max_open: int = 32,
    ) -> None:
        super().__init__(path, settings=settings, max_open=max_open)
        weights = ", ".join(repr(float(w)) for w in self.settings.weights)
        self._search_sql = _SEARCH.format(bits=PASSAGE_BITS, weights=weights)
        self._scores_sql = _SCORES.format(weights=weights)

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
        asked_about = list(terms)
        asked = time_words(query, now or datetime.now(UTC))
        terms.extend(t for t in query_terms(asked) if t not in terms)
        asks_when = asks_for_time(query)
        if asks_when:
            terms.append(TIME_MARK)
        expression = match_expression(terms)
        # Pairs match no passage their words do not: the words alone tell how many match.
        # They are left out of the "common terms" ranking of a large guild, whose cost is
        # kept by scoring few passages; a phrase costs FTS5 the positions of its words.
        with_pairs = expression
        if self.settings.phrase_pairs and (self.settings.phrase_pairs_when or not asks_when):
            with_pairs = match_expression([*terms, *phrase_pairs(query, asked_about)])
        with self._lock, self._transaction(guild_id, create=False) as db:
            if db is None:
                return []
            rows = None
            depth = min(max(limit, DEPTH), _MAX_LIMIT)
            if len(terms) > 1 and _probe(db, expression, _EXACT_MATCHES) > _EXACT_MATCHES:
                rows = self._rank_common(db, guild_id, terms, limit, depth)
            if rows is None:
                rows = self._rank_exact(db, guild_id, with_pairs, limit, depth)
            # BM25's best, ordered again by how much of the question they cover.
            order, relevance = coverage_order(
                asked_about,
                [-row[8] for row in rows],
                [row[7] for row in rows],
                self.settings.coverage_weight,
                kinds=self.settings.kinds,
                verb_forms=self.settings.verb_forms,
                timed_weight=self.settings.timed_weight if asks_when else 0.0,
            )
            hits: list[RecallHit] = []
            for n, score in zip(order[:limit], relevance, strict=False):
                _, thread, guild, requester, created, summary, topics, _, _, pid = rows[n]
                found = db.execute(_SNIPPET, (shown, pid)).fetchone()
                hits.append(
                    RecallHit(
                        thread_id=thread,
                        guild_id=guild,
                        score=round(score, 4),
                        summary=summary,
                        created_at=created,
                        requester=requester,
                        snippet=" ".join((found[0] if found else "").split()),
                        topics=tuple(topics.split()),
                    )
                )
            return hits

    def _rank_exact(
        self, db: sqlite3.Connection, guild_id: str, expression: str, limit: int, depth: int
    ) -> list[tuple[Any, ...]]:
        """BM25 over every passage that matches; the best ``depth`` conversations (at least
        the best ``limit``, when there are that many)."""
        cut = max(_MIN_PASSAGES, depth * 20)
        rows = db.execute(self._search_sql, (expression, cut, guild_id, depth)).fetchall()
        if len(rows) < limit and rows and rows[0][-1] >= cut:
            rows = db.execute(self._search_sql, (expression, -1, guild_id, depth)).fetchall()
        return [row[:-1] for row in rows]

    def _rank_common(
        self, db: sqlite3.Connection, guild_id: str, terms: list[str], limit: int, depth: int
    ) -> list[tuple[Any, ...]] | None:
        """Rank a query that matches too many passages to score them all: the best ``depth``
        conversations; None (rank exactly) if fewer than ``limit`` are found.

        The candidates are the passages holding the query's rarest words (together in at most
        ``_RARE_MATCHES`` passages); each is scored with every word of the query, exactly as
        ``_rank_exact`` would score it. A passage holding only common words is not a candidate:
        BM25 gives such words little weight, and scoring every passage that holds them is what
        made a search slow. If no word is rare, the candidates are the
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
            cid = pid >> PASSAGE_BITS
            if cid not in best or score < best[cid][0]:
                best[cid] = (score, pid)
        if len(best) < limit:
            return None
        ranked = sorted(best, key=lambda c: best[c][0])
        # Ties are ordered as _rank_exact orders them (newest first, then by thread id): take
        # every conversation tied with the last one kept, then sort with the tie-breaks.
        depth = min(depth, len(ranked))
        last = best[ranked[depth - 1]][0]
        chosen = [c for c in ranked if best[c][0] <= last]
        marks = ", ".join("?" * len(chosen))
        rows = db.execute(_CONVERSATIONS.format(marks=marks), (guild_id, *chosen)).fetchall()
        rows.sort(key=lambda r: r[1])  # thread id
        rows.sort(key=lambda r: (r[4] is not None, r[4] or ""), reverse=True)  # newest first
        rows.sort(key=lambda r: best[r[0]][0])
        return [(*row, *best[row[0]]) for row in rows[:depth]]


def _probe(db: sqlite3.Connection, expression: str, most: int) -> int:
    """How many passages match ``expression``, counted no further than ``most + 1``."""
    return int(db.execute(_PROBE, (expression, most + 1)).fetchone()[0])
