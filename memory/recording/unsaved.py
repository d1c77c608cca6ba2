"""Conversations that so far exist only in a journal, read without touching it.

A conversation is written to its file when it goes idle; until then (and, after a crash,
until the next start replays the journal) it lives only in ``journal/``. With Redis, a
conversation begun while Redis was unreachable lives only in the process's spool (a journal
too, ``spool/journal/``) until Redis is back or the next start flushes it. The operator's
tools read without the folder's lock, so they must not replay either (a running bot owns
them); they rebuild those conversations in memory instead, from their ``create`` record and
the records after it, so that a listing never passes over them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from memory.records.models import Conversation
from memory.records.mutations import Create, MutationError, Purge, decode
from memory.stores.base import StoreError

log = logging.getLogger(__name__)

__all__ = ["JOURNAL", "SPOOL", "has_segments", "unsaved_conversations"]

JOURNAL = Path("journal")
"""The JSON store's journal, under the data folder."""
SPOOL = Path("spool") / "journal"
"""The Redis store's spool, under the data folder: each record wraps its mutation."""


def has_segments(journal: Path) -> bool:
    """Whether the journal (or spool) folder ``journal`` holds any segment at all."""
    try:
        return journal.is_dir() and any(journal.glob("*.log"))
    except OSError as exc:
        raise StoreError(f"cannot read the journal {journal}: {exc.strerror or exc}") from exc


def unsaved_conversations(journal: Path, saved: set[str]) -> list[Conversation]:
    """The conversations the journal (or spool) folder ``journal`` holds that the store does
    not (not in ``saved``), as its records leave them. Unreadable lines and a torn last one
    are passed over: this is a view, and the bot's replay is what keeps them."""
    try:
        segments = sorted(journal.glob("*.log")) if journal.is_dir() else []
    except OSError as exc:
        raise StoreError(f"cannot read the journal {journal}: {exc.strerror or exc}") from exc
    building: dict[str, Conversation] = {}
    for path in segments:
        try:
            lines = path.read_bytes().split(b"\n")[:-1]
        except FileNotFoundError:
            continue  # the running bot saved what it held and dropped the segment
        except OSError as exc:  # what it holds cannot be shown: never pass over it
            raise StoreError(f"cannot read journal segment {path}: {exc.strerror or exc}") from exc
        for raw in lines:
            try:
                mutation = decode(_unwrapped(json.loads(raw)))
            except (ValueError, MutationError):
                continue  # a checkpoint, or a line the bot's replay will set aside
            if mutation.thread_id in saved:
                continue
            if isinstance(mutation, Create):
                building[mutation.thread_id] = mutation.apply(None)
            elif isinstance(mutation, Purge):
                building.pop(mutation.thread_id, None)
            elif mutation.thread_id in building:
                try:
                    building[mutation.thread_id] = mutation.apply(building[mutation.thread_id])
                except MutationError:
                    continue
    return list(building.values())


def _unwrapped(record: Any) -> Any:
    """A spool record's mutation (``{"seq", "spool", "guild", "mutation"}``); a journal
    record is its mutation."""
    if isinstance(record, dict) and "mutation" in record and "op" not in record:
        return record["mutation"]
    return record
