"""What an earlier run left in the journal, brought back when the JSON store opens.

Each thread with journal records is rebuilt from its file (if it has one) and the records the
file does not hold yet: the newest checkpoint whose SHA-256 matches the file says which those
are. Records of a thread with neither a file nor a create record are set aside in the journal's
folder (``orphaned-*.jsonl``); a file that does not parse, or that the journal contradicts, is
quarantined (moved aside as ``*.corrupt``). Nothing is deleted but a file a purge condemned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiofiles
import aiofiles.os

from memory.errors import first_line
from memory.recording.aside import move_aside
from memory.recording.journal import Journal, JournalError, JournalRecord
from memory.records.fileformat import parse
from memory.records.models import Conversation, validate_snowflake
from memory.records.mutations import MutationError, decode
from memory.stores.base import ConversationRef, RecoveryError, StoreError
from memory.stores.json.files import in_threads, path_of, read_files

log = logging.getLogger(__name__)

__all__ = ["SaveBatch", "parse_or_quarantine", "quarantine", "recover"]

SaveBatch = Callable[[list[Conversation]], Awaitable[None]]
"""The store's save of several conversations (raises ``OSError`` or ``JournalError``)."""

# How many recovered conversations are saved together: the file bytes of one slice at a time
# are held in memory.
_RECOVERY_SLICE = 500


async def recover(
    journal: Journal, index: dict[str, ConversationRef], save: SaveBatch
) -> list[Conversation]:
    """Replay ``journal``'s leftovers onto the files of ``index`` (thread id -> file, kept up
    to date), save what changed with ``save``, and return those conversations."""
    return await _Recovery(journal, index, save).run()


async def quarantine(
    index: dict[str, ConversationRef], thread_id: str, path: Path, why: str, *, read_only: bool
) -> None:
    """Move a bad conversation file aside (``*.corrupt``) and forget it; a reader only forgets."""
    if read_only:
        log.warning("conversation file %s: %s (left as it is: read-only)", path, why)
        index.pop(thread_id, None)
        return
    try:
        target = await asyncio.to_thread(move_aside, path)
    except OSError as exc:
        log.error("conversation file %s: %s; could not move it aside: %s", path, why, exc)
    else:
        log.warning("conversation file %s: %s; moved aside to %s", path, why, target.name)
    index.pop(thread_id, None)


async def parse_or_quarantine(
    index: dict[str, ConversationRef],
    thread_id: str,
    path: Path,
    data: bytes,
    *,
    read_only: bool,
) -> Conversation | None:
    """The conversation in ``data``, read from ``path``; None (the file quarantined) if it
    does not parse."""
    try:
        return await parse(data)
    except ValueError as exc:
        why = f"it does not parse: {first_line(exc)}"
        await quarantine(index, thread_id, path, why, read_only=read_only)
        return None


class _Recovery:
    def __init__(
        self, journal: Journal, index: dict[str, ConversationRef], save: SaveBatch
    ) -> None:
        self.journal = journal
        self.index = index
        self.save = save

    async def run(self) -> list[Conversation]:
        by_thread: dict[str, list[JournalRecord]] = {}
        for record in self.journal.read_leftovers():
            try:
                thread_id = validate_snowflake(record.data.get("thread_id"), "thread_id")
            except ValueError:
                # A create record carries the id inside the conversation.
                conv = record.data.get("conversation")
                thread_id = conv.get("thread_id") if isinstance(conv, dict) else None
                if not isinstance(thread_id, str) or not thread_id.isdigit():
                    self.journal.keep_unreadable(record.segment, record.line, "names no thread")
                    continue
            by_thread.setdefault(thread_id, []).append(record)

        # Recovery does in bulk what a load and a save do one conversation at a time: with many
        # conversations to bring back, a thread hop per file costs more than the file.
        files = await self._read_for_replay(by_thread)
        recovered: list[Conversation] = []
        orphans: list[JournalRecord] = []
        for thread_id, records in by_thread.items():
            conversation = await self._replay(thread_id, records, orphans, files.get(thread_id))
            if conversation is not None:
                recovered.append(conversation)
        await self._save_recovered(recovered)
        if orphans:
            await self._set_aside(orphans)
        self.journal.discard_leftovers()
        if recovered:
            log.info(
                "recovered %d conversation(s) from the journal of an earlier run", len(recovered)
            )
        return recovered

    async def _read_for_replay(
        self, by_thread: dict[str, list[JournalRecord]]
    ) -> dict[str, tuple[bytes, str]]:
        """The bytes and SHA-256 of the file of every thread with journal records, read by a
        few threads at once (a file that vanished is forgotten, as a load does)."""
        wanted = [
            (thread_id, path_of(entry))
            for thread_id in by_thread
            if (entry := self.index.get(thread_id)) is not None
        ]
        found: dict[str, tuple[bytes, str]] = {}
        for (thread_id, path), result in zip(
            wanted, await in_threads(read_files, [p for _, p in wanted]), strict=True
        ):
            if isinstance(result, FileNotFoundError):
                log.warning("conversation file %s disappeared; forgetting it", path)
                self.index.pop(thread_id, None)
            elif isinstance(result, OSError):
                raise StoreError(f"cannot read conversation {thread_id} from {path}: {result}")
            else:
                found[thread_id] = result
        return found

    async def _save_recovered(self, conversations: list[Conversation]) -> None:
        # In slices: the file bytes of one slice at a time are held in memory.
        for start in range(0, len(conversations), _RECOVERY_SLICE):
            part = conversations[start : start + _RECOVERY_SLICE]
            try:
                await self.save(part)
            except (OSError, JournalError) as exc:
                raise RecoveryError(
                    f"recovered {len(part)} conversation(s) from the journal but could not "
                    f"save them ({exc}); the journal in {self.journal.directory} is kept, "
                    "nothing is lost"
                ) from exc

    async def _replay(
        self,
        thread_id: str,
        records: list[JournalRecord],
        orphans: list[JournalRecord],
        found: tuple[bytes, str] | None,
    ) -> Conversation | None:
        """Rebuild one conversation from its file (``found``: its bytes and SHA-256, None if
        it has none) and its journal records; None if unchanged."""
        ops = [r.data.get("op") for r in records]
        purged = "purge" in ops
        if purged:
            cut = len(ops) - 1 - ops[::-1].index("purge")
            records, ops = records[cut + 1 :], ops[cut + 1 :]

        base: Conversation | None = None
        pending = records
        entry = self.index.get(thread_id)
        path = path_of(entry) if entry is not None else None
        if path is not None and found is not None:
            data, digest = found
            matches = [
                i
                for i, r in enumerate(records)
                if ops[i] == "checkpoint" and r.data.get("sha256") == digest
            ]
            if matches:
                base = await self._parse_or_quarantine(thread_id, path, data)
                if base is not None:
                    pending = records[matches[-1] + 1 :]
            elif purged:
                # The file predates the purge (the delete was cut short): finish deleting it.
                with contextlib.suppress(OSError):
                    await aiofiles.os.remove(path)
                self.index.pop(thread_id, None)
            elif "create" in ops:
                why = "it does not match the journal"
                await quarantine(self.index, thread_id, path, why, read_only=False)
            else:
                base = await self._parse_or_quarantine(thread_id, path, data)

        if base is None:
            if "create" not in [r.data.get("op") for r in pending]:
                orphans.extend(r for r in pending if r.data.get("op") != "checkpoint")
                return None
            start = [r.data.get("op") for r in pending].index("create")
            pending = pending[start:]

        conversation = base
        applied = 0
        for record in pending:
            if record.data.get("op") == "checkpoint":
                continue
            try:
                conversation = decode(record.data).apply(conversation)
                applied += 1
            except MutationError as exc:
                # JSON, but not a record this version can apply: kept with the segment.
                self.journal.keep_unreadable(record.segment, record.line, str(exc))
        return conversation if applied else None

    async def _parse_or_quarantine(
        self, thread_id: str, path: Path, data: bytes
    ) -> Conversation | None:
        return await parse_or_quarantine(self.index, thread_id, path, data, read_only=False)

    async def _set_aside(self, orphans: list[JournalRecord]) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        target = self.journal.directory / f"orphaned-{stamp}-{os.getpid()}.jsonl"
        async with aiofiles.open(target, "ab") as handle:
            await handle.write(b"".join(r.raw + b"\n" for r in orphans))
        threads = sorted({str(r.data.get("thread_id")) for r in orphans})
        log.error(
            "%d journal record(s) of thread(s) %s have no conversation file or create record "
            "(was a file removed by hand?); kept in %s",
            len(orphans),
            ", ".join(threads),
            target,
        )
