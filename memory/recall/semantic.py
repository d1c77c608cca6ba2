"""The semantic re-ranker: recall's best conversations, ordered again by meaning as well.

Optional (``pip install -e '.[semantic]'``; an operator turns it on with
``ECHO_RECALL_RERANKER=semantic``). Recall finds a conversation by the question's words; a
question often says in other words what was said ("a pet" for "my dog Max"). The re-ranker
takes recall's best ``candidates`` conversations and orders them by a blend of

- their recall score (``RecallHit.score``: BM25 relative to the best, plus coverage of the
  question), relative to the best one's (so it is on the same 0..1 scale whatever the
  question), and
- the cosine of the question to the conversation's closest passage (all-MiniLM-L6-v2
  sentence vectors, ``memory.recall.encoder``),

with ``weight`` the share of the cosine. Conversations past the candidates keep recall's
order behind them, and each hit keeps recall's ``score``. Both settings were chosen on LoCoMo
with one dialogue held out at a time (``python -m bench.locomo``; ``bench/README.md``).

**A passage's vector is the mean of its lines' vectors** (a line: one message, or one line of
a message of several), not the vector of the passage as one text: the model was trained on
sentences, and it ranked at least as well that way, for less work: passages overlap, and each
line is embedded once. The memory passage is used only by a conversation that has no other.

**Vectors are kept** in the guild's index file (``memory.recall.vectors``): a conversation is
embedded the first time it is a candidate, and again only after it changed. Nothing leaves the
guild's file: the candidates are the guild's own, so a result never comes from another guild.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from memory.recall import vectors
from memory.recall.encoder import Encoder, MiniLMEncoder, missing_extra
from memory.recall.index import RecallIndex
from memory.recall.ranking import RecallHit
from memory.recall.vectors import PassageText

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "RERANKERS",
    "RerankSettings",
    "RerankerUnavailable",
    "Searcher",
    "SemanticReranker",
    "fuse",
    "make_searcher",
]

log = logging.getLogger(__name__)

# The values of ECHO_RECALL_RERANKER.
RERANKERS = ("none", "semantic")
# A passage of a pasted file can hold hundreds of lines: its first ones say what it is.
_MAX_LINES = 32


class RerankerUnavailable(Exception):
    """The re-ranker was asked for but cannot run here; the message is one line."""


class Searcher(Protocol):
    """What answers a recall question: the index itself, or a re-ranker over it."""

    def search(
        self, guild_id: str, query: str, limit: int = 5, *, now: datetime | None = None
    ) -> list[RecallHit]: ...


@dataclass(frozen=True)
class RerankSettings:
    """How many of recall's best conversations are ordered again, and the cosine's share."""

    candidates: int = 20
    weight: float = 0.6

    def __post_init__(self) -> None:
        if self.candidates < 1 or not 0.0 <= self.weight <= 1.0:
            raise ValueError("need candidates >= 1 and 0 <= weight <= 1")


def fuse(scores: Sequence[float], similarities: Sequence[float], weight: float) -> list[int]:
    """The order (indices) of candidates by ``(1 - weight) * score / best + weight * cosine``.

    ``scores`` are recall's (higher is better), best first; ties keep recall's order."""
    best = max(scores, default=0.0) or 1.0
    blended = [
        (1.0 - weight) * score / best + weight * similarity
        for score, similarity in zip(scores, similarities, strict=True)
    ]
    return sorted(range(len(blended)), key=lambda i: (-blended[i], i))


def lines_of(passage: PassageText, memory_only: bool) -> list[str]:
    """The lines of a passage that are embedded: what people and Echo said (the memory's
    lines, for a conversation known by its memory alone)."""
    parts = (passage.memory,) if memory_only else (passage.people, passage.echo)
    lines = [line.strip() for part in parts for line in part.split("\n")]
    return [line for line in lines if line][:_MAX_LINES]


class SemanticReranker:
    """A ``Searcher``: ``index.search``, then its best candidates ordered again by meaning.

    The candidates are a search for ``candidates`` results, so they are ordered as the index
    orders that many (its coverage re-ordering goes as deep as the results asked for).

    Calls block (the encoder runs on the CPU); from asyncio, run them with
    ``asyncio.to_thread``. Give ``encoder`` to use another model (tests use a small fake);
    by default it is all-MiniLM-L6-v2, and the semantic extra must be installed."""

    def __init__(
        self,
        index: RecallIndex,
        encoder: Encoder | None = None,
        settings: RerankSettings | None = None,
    ) -> None:
        if encoder is None:
            why = missing_extra()
            if why is not None:
                raise RerankerUnavailable(why)
            encoder = MiniLMEncoder()
        self.index = index
        self.encoder = encoder
        self.settings = settings or RerankSettings()

    def load(self) -> None:
        """Load the model now rather than at the first search."""
        self.encoder.load()

    def search(
        self, guild_id: str, query: str, limit: int = 5, *, now: datetime | None = None
    ) -> list[RecallHit]:
        cut = self.settings.candidates
        hits = self.index.search(guild_id, query, max(limit, cut), now=now)
        head, tail = hits[:cut], hits[cut:]
        if len(head) < 2:
            return hits[:limit]
        try:
            similarities = self.similarities(guild_id, query, head)
        except sqlite3.Error as exc:  # the file busy past the timeout: recall's order beats none
            log.warning("recall: not re-ranked (guild %s's index: %s)", guild_id, exc)
            return hits[:limit]
        order = fuse([h.score for h in head], similarities, self.settings.weight)
        return [*(head[i] for i in order), *tail][:limit]

    def similarities(self, guild_id: str, query: str, hits: Sequence[RecallHit]) -> list[float]:
        """The cosine of ``query`` to each hit's closest passage (0.0: nothing to compare)."""
        import numpy as np

        asked = self.encoder.encode([query])[0]
        with self._database(guild_id) as db:
            if db is None:
                return [0.0] * len(hits)
            matrices = self._vectors(db, [h.thread_id for h in hits])
        return [
            float(np.max(matrices[h.thread_id] @ asked)) if h.thread_id in matrices else 0.0
            for h in hits
        ]

    # --- vectors ----------------------------------------------------------------------------

    def _vectors(
        self, db: sqlite3.Connection, thread_ids: list[str]
    ) -> dict[str, NDArray[np.float32]]:
        """thread id -> its passages' vectors (one row each), embedding what is not kept."""
        import numpy as np

        vectors.prepare(db, self.encoder.name)
        cids = vectors.conversation_ids(db, thread_ids)
        kept = vectors.stored(db, cids.values())
        kept.update(self._embed(db, [cid for cid in cids.values() if cid not in kept]))
        return {
            thread_id: np.stack(
                [np.frombuffer(rows[pid], dtype=np.float32) for pid in sorted(rows)]
            )
            for thread_id, cid in cids.items()
            if (rows := kept.get(cid))
        }

    def _embed(self, db: sqlite3.Connection, cids: list[int]) -> dict[int, dict[int, bytes]]:
        """Embed these conversations' passages and keep the vectors. All their lines go to the
        model at once, each once: it batches texts of like length, which pads least."""
        import numpy as np

        texts = {cid: vectors.passages(db, cid) for cid in cids}
        chosen: dict[int, dict[int, list[str]]] = {}
        for cid, passages in texts.items():
            # The memory passage counts only for a conversation that has no other.
            memory_only = all(p.number == 0 for p in passages)
            chosen[cid] = {
                p.pid: lines
                for p in passages
                if (memory_only or p.number) and (lines := lines_of(p, memory_only))
            }
        unique = list(
            dict.fromkeys(
                line for by_pid in chosen.values() for ls in by_pid.values() for line in ls
            )
        )
        if not unique:
            return {cid: {} for cid in cids}
        encoded = self.encoder.encode(unique)
        at = {line: n for n, line in enumerate(unique)}
        made: dict[int, dict[int, bytes]] = {}
        for cid, by_pid in chosen.items():
            rows: dict[int, bytes] = {}
            for pid, lines in by_pid.items():
                mean = encoded[[at[line] for line in lines]].mean(axis=0)
                rows[pid] = (
                    (mean / (float(np.linalg.norm(mean)) or 1.0)).astype(np.float32).tobytes()
                )
            # The text may have changed while it was embedded: then the rows serve this search
            # (they match what it ranked) but are not kept.
            vectors.store(db, cid, texts[cid], rows)
            made[cid] = rows
        return made

    @contextlib.contextmanager
    def _database(self, guild_id: str) -> Iterator[sqlite3.Connection | None]:
        """A connection of its own to the guild's index file, for one search (the index may
        have made the file anew since the last one)."""
        path = self.index.guild_file(guild_id)
        if not path.exists():
            yield None
            return
        db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        try:
            yield db
        finally:
            db.close()


def make_searcher(name: str, index: RecallIndex) -> Searcher:
    """The searcher ``ECHO_RECALL_RERANKER`` names: the index itself (``none``) or the
    semantic re-ranker over it. ``RerankerUnavailable`` when the extra is missing."""
    if name == "none":
        return index
    if name == "semantic":
        return SemanticReranker(index)
    raise ValueError(f"no re-ranker named {name!r} (one of {', '.join(RERANKERS)})")
