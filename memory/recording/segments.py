"""The journal's segment files: their names, what an earlier process left in one, and
deleting them off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = [
    "JournalRecord",
    "Segment",
    "SegmentUnlinker",
    "close_quietly",
    "fsync_all",
    "records_of",
    "segment_numbers",
    "segment_path",
]

_SEGMENT_SUFFIX = ".log"


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One parsed line of a segment left by an earlier process."""

    segment: Path
    line: int
    data: dict[str, Any]
    raw: bytes


@dataclass(slots=True)
class Segment:
    """A segment this process writes (the open one) or wrote (sealed, not yet deleted)."""

    number: int
    path: Path
    fd: int
    size: int = 0
    # thread id -> position of its last record in this segment
    threads: dict[str, int] = field(default_factory=dict)
    # threads whose last record here is not yet saved: the segment may go once it is empty
    unsaved: set[str] = field(default_factory=set)


def segment_path(directory: Path, number: int) -> Path:
    return directory / f"{number:020d}{_SEGMENT_SUFFIX}"


def segment_numbers(directory: Path) -> Iterator[int]:
    """The numbers of the segments in ``directory``, in no particular order."""
    for entry in os.scandir(directory):
        name = entry.name
        if name.endswith(_SEGMENT_SUFFIX) and name[: -len(_SEGMENT_SUFFIX)].isdigit():
            yield int(name[: -len(_SEGMENT_SUFFIX)])


def records_of(
    path: Path, data: bytes, unreadable: Callable[[Path, int, str], None]
) -> Iterator[JournalRecord]:
    """The records of segment ``path`` (its bytes ``data``), in order; a torn last line is
    skipped, and ``unreadable(path, line, why)`` is told of every line that is no record."""
    lines = data.split(b"\n")
    # A complete file ends with "\n", leaving an empty last element; anything else there
    # is a record cut short by the crash, which by definition had not been acknowledged.
    tail = lines[-1]
    if tail and _cut_short(tail):
        log.info("journal %s: ignoring a torn last record (%d bytes)", path, len(tail))
    elif tail:  # not the start of a record: damage, not a crash mid-write
        why = f"its last {len(tail)} bytes are not a record cut short"
        unreadable(path, len(lines), why)
    for number, raw in enumerate(lines[:-1], start=1):
        if not raw.strip():
            continue
        try:
            parsed = json.loads(raw)
            if not isinstance(parsed, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            unreadable(path, number, f"unreadable ({exc})")
            continue
        yield JournalRecord(path, number, parsed, raw)


def _cut_short(tail: bytes) -> bool:
    """Whether a segment's unterminated tail is what a crash leaves: the start of a record (a
    JSON object) or the zeros a file system can leave past the last completed write."""
    return tail.startswith(b"{") or not tail.strip(b"\0")


class SegmentUnlinker:
    """Unlinks collected segments in a worker thread, in order (oldest first, as collected).

    Unlinking a segment of several megabytes has the file system free its blocks, long enough
    to stall the event loop once per segment. A crash before the unlink leaves a segment whose
    records are all saved; replay skips them by the checkpoints, exactly as after a crash just
    before an unlink on the loop.
    """

    def __init__(self) -> None:
        self._doomed: list[Path] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        """Segments wait or are being unlinked: a later one must not go before them."""
        return bool(self._doomed) or (self._task is not None and not self._task.done())

    def add(self, path: Path) -> None:
        self._doomed.append(path)

    def start(self) -> None:
        """Unlink what was added, in a task (at once if no event loop runs)."""
        if not self._doomed:
            return
        if self._task is not None and not self._task.done():
            return  # the running task picks up what was added
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            paths, self._doomed = self._doomed, []
            _unlink_all(paths)
            return
        self._task = loop.create_task(self._unlink_doomed(), name="echo-journal-unlink")

    async def _unlink_doomed(self) -> None:
        while self._doomed:
            paths, self._doomed = self._doomed, []
            try:
                await asyncio.to_thread(_unlink_all, paths)
            except OSError as exc:
                log.warning("could not delete saved journal segments %s: %s", paths, exc)

    async def finish(self) -> None:
        """Return once everything added is unlinked (or could not be)."""
        task = self._task
        if task is not None:
            with contextlib.suppress(Exception):
                await task
            self._task = None
        if self._doomed:  # added after the task finished its last batch
            paths, self._doomed = self._doomed, []
            with contextlib.suppress(OSError):
                await asyncio.to_thread(_unlink_all, paths)


def fsync_all(fds: list[int]) -> None:
    for fd in fds:
        os.fsync(fd)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
