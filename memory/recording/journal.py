"""The write-ahead journal: every mutation is on disk before the call that made it returns.

One append-only log, cut into numbered segment files. Appends are a single ``os.write`` on
the event loop (a page-cache copy of a few hundred bytes: once it returns, a killed process
loses nothing), and ``fsync`` runs in a worker thread according to the policy, as Redis's
AOF does: ``always`` (group commit: concurrent appends share one fsync), ``everysec`` (a
background flush about once a second) or ``no``.

Saving a conversation writes a *checkpoint* record holding the SHA-256 of the file about to
be renamed into place. On replay, the newest checkpoint whose digest matches the file on
disk tells exactly which records the file already contains, so a crash between the rename
and the journal clean-up can never apply a record twice. Segments are deleted oldest first,
once every conversation with records in them has been saved past those records.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from memory.recording.aside import move_aside

log = logging.getLogger(__name__)

__all__ = ["FsyncPolicy", "Journal", "JournalError", "JournalRecord"]

_SEGMENT_SUFFIX = ".log"
DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024
# Segments at least this big are unlinked in a worker thread (see Journal._start_unlinking).
_INLINE_UNLINK_BYTES = 1024 * 1024
# Unreadable records of one segment logged one by one; the rest only counted.
_UNREADABLE_SHOWN = 3


class FsyncPolicy(StrEnum):
    """When journal writes are forced to the disk (the Redis AOF ``appendfsync`` choices)."""

    ALWAYS = "always"
    EVERYSEC = "everysec"
    NO = "no"


class JournalError(OSError):
    """A journal write or flush failed; the mutation it carried was not recorded."""


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One parsed line of a segment left by an earlier process."""

    segment: Path
    line: int
    data: dict[str, Any]
    raw: bytes


@dataclass(slots=True)
class _Segment:
    number: int
    path: Path
    fd: int
    size: int = 0
    # thread id -> position of its last record in this segment
    threads: dict[str, int] = field(default_factory=dict)
    # threads whose last record here is not yet saved: the segment may go once it is empty
    unsaved: set[str] = field(default_factory=set)


class Journal:
    """Append-only, segmented, fsync-policy-driven log of conversation mutations."""

    def __init__(
        self,
        directory: Path,
        fsync: FsyncPolicy | str = FsyncPolicy.EVERYSEC,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        self.directory = Path(directory)
        self.policy = FsyncPolicy(fsync)
        self.segment_bytes = segment_bytes
        self._old_segments: list[Path] = []
        self._current: _Segment | None = None
        self._sealed: dict[int, _Segment] = {}  # sealed, not yet deleted, in number order
        self._next_number = 1
        self._position = 0  # records written by this process
        self._synced = 0  # records known to be on disk
        self._unsynced_fds: set[int] = set()
        self._closing_fds: set[int] = set()  # sealed segments waiting for their last fsync
        self._saved: dict[str, int] = {}  # thread id -> position it is saved through
        self._prune_saved_at = 64  # size of _saved at which entries of gone threads are dropped
        self._sync_task: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        # Earlier segments holding records that could not be read, and how many: they are
        # moved aside (``*.corrupt``) instead of deleted once the rest is replayed.
        self._unreadable: dict[Path, int] = {}
        # Collected segments waiting to be unlinked, oldest first, and the task doing it.
        self._doomed: list[Path] = []
        self._unlinker: asyncio.Task[None] | None = None
        self._opened = False

    # --- life cycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Create the folder and take note of segments an earlier process left for replay."""
        self.directory.mkdir(parents=True, exist_ok=True)
        numbers = sorted(self._segment_numbers())
        self._old_segments = [self._segment_path(n) for n in numbers]
        self._next_number = (numbers[-1] + 1) if numbers else 1
        self._opened = True
        if self.policy is FsyncPolicy.EVERYSEC:
            self._flusher = asyncio.get_running_loop().create_task(
                self._flush_every_second(), name="echo-journal-everysec"
            )

    async def close(self) -> None:
        """Flush what is written (unless the policy is ``no``) and close every file."""
        if not self._opened:
            return
        self._opened = False
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        try:
            if self.policy is not FsyncPolicy.NO:
                await self.sync()
        finally:
            await self._finish_unlinking()
            for segment in [*self._sealed.values(), self._current]:
                if segment is not None and segment.fd >= 0:
                    _close_quietly(segment.fd)
                    segment.fd = -1
            for fd in self._closing_fds:
                _close_quietly(fd)
            self._closing_fds.clear()
            self._unsynced_fds.clear()
            self._current = None

    # --- replay of what an earlier process left -------------------------------------------------

    @property
    def has_leftovers(self) -> bool:
        return bool(self._old_segments)

    def read_leftovers(self) -> Iterator[JournalRecord]:
        """Records of earlier processes, in log order. A torn last line is skipped."""
        for path in self._old_segments:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise JournalError(exc.errno, f"cannot read journal segment {path}: {exc}") from exc
            lines = data.split(b"\n")
            # A complete file ends with "\n", leaving an empty last element; anything else there
            # is a record cut short by the crash, which by definition had not been acknowledged.
            tail = lines[-1]
            if tail and _cut_short(tail):
                log.info("journal %s: ignoring a torn last record (%d bytes)", path, len(tail))
            elif tail:  # not the start of a record: damage, not a crash mid-write
                why = f"its last {len(tail)} bytes are not a record cut short"
                self.keep_unreadable(path, len(lines), why)
            for number, raw in enumerate(lines[:-1], start=1):
                if not raw.strip():
                    continue
                try:
                    parsed = json.loads(raw)
                    if not isinstance(parsed, dict):
                        raise ValueError("not a JSON object")
                except ValueError as exc:
                    self.keep_unreadable(path, number, f"unreadable ({exc})")
                    continue
                yield JournalRecord(path, number, parsed, raw)

    def keep_unreadable(self, segment: Path, line: int, why: str) -> None:
        """A record of ``segment`` could not be used: keep the segment, aside, not delete it.

        The first few are logged one by one; a damaged segment can hold thousands, and the
        line ``discard_leftovers`` writes gives their count."""
        count = self._unreadable.get(segment, 0) + 1
        self._unreadable[segment] = count
        if count <= _UNREADABLE_SHOWN:
            log.warning("journal %s line %d: %s; skipped", segment, line, why)
        elif count == _UNREADABLE_SHOWN + 1:
            log.warning("journal %s: more unreadable records; counted, not shown", segment)

    def discard_leftovers(self) -> None:
        """Delete the earlier process's segments once everything in them is saved elsewhere;
        one with unreadable records is moved aside (``<segment>.corrupt``) for the operator,
        as an unreadable conversation file is: what could be read was replayed, and what
        could not is kept, never destroyed."""
        for path in self._old_segments:
            count = self._unreadable.pop(path, 0)
            if count:
                try:
                    target = move_aside(path)
                except OSError as exc:
                    log.error("journal %s: could not move it aside: %s", path, exc)
                else:
                    log.warning(
                        "journal %s: %d unreadable record(s) kept in %s; the rest was replayed",
                        path,
                        count,
                        target.name,
                    )
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._old_segments = []

    # --- writing --------------------------------------------------------------------------------

    async def append(self, thread_id: str, line: bytes) -> int:
        """Write one record (a JSON line) for ``thread_id``; durable per the policy on return."""
        position = self._write(thread_id, line)
        if self.policy is FsyncPolicy.ALWAYS:
            await self.sync(position)
        return position

    async def checkpoint(self, thread_id: str, digest: str) -> int:
        """Record that the file about to be renamed into place has this SHA-256.

        Always flushed (unless the policy is ``no``): the rename that follows must never be
        on disk without the record that explains it.
        """
        position = self._write(thread_id, _checkpoint_line(thread_id, digest))
        if self.policy is not FsyncPolicy.NO:
            await self.sync(position)
        return position

    async def checkpoint_many(self, checkpoints: list[tuple[str, str]]) -> list[int]:
        """``checkpoint`` for several (thread id, SHA-256) pairs, flushed once for all."""
        positions = [self._write(t, _checkpoint_line(t, d)) for t, d in checkpoints]
        if positions and self.policy is not FsyncPolicy.NO:
            await self.sync(positions[-1])
        return positions

    def mark_saved(self, thread_id: str, position: int) -> None:
        """Everything of ``thread_id`` up to ``position`` is now in a saved file (or purged)."""
        saved = self._saved.get(thread_id, 0)
        if position > saved:
            self._saved[thread_id] = saved = position
        # Only this thread's entries change: O(segments) per call, not O(threads in them)
        # (start-up saves a thousand recovered conversations, each calling this).
        current = self._current
        for segment in (*self._sealed.values(), current):
            if (
                segment is not None
                and thread_id in segment.unsaved
                and segment.threads[thread_id] <= saved
            ):
                segment.unsaved.discard(thread_id)
        if current is not None and current.threads and not current.unsaved:
            # Nothing live left in the open segment: start a new one so this one can go.
            self._seal_current()
        self._collect()

    def pinned_threads(self) -> set[str]:
        """Threads whose unsaved records keep the oldest sealed segment (and all after) alive."""
        oldest = next(iter(self._sealed.values()), None)
        if oldest is None:
            return set()
        return set(oldest.unsaved)

    @property
    def _sync_running(self) -> bool:
        return self._sync_task is not None and not self._sync_task.done()

    @property
    def segment_count(self) -> int:
        """Segments of this process still on disk (the open one included)."""
        return len(self._sealed) + (1 if self._current is not None else 0)

    def _write(self, thread_id: str, line: bytes) -> int:
        if not self._opened:
            raise JournalError("the journal is not open")
        segment = self._current
        if segment is None or segment.size >= self.segment_bytes:
            if segment is not None:
                self._seal_current()
            segment = self._open_segment()
        try:
            written = os.write(segment.fd, line)
            while written < len(line):
                written += os.write(segment.fd, line[written:])
        except OSError as exc:
            # Cut the partial record off, or the next append would be glued to it.
            with contextlib.suppress(OSError):
                os.ftruncate(segment.fd, segment.size)
            raise JournalError(exc.errno, f"journal write failed ({segment.path}): {exc}") from exc
        segment.size += len(line)
        self._position += 1
        segment.threads[thread_id] = self._position
        segment.unsaved.add(thread_id)
        self._unsynced_fds.add(segment.fd)
        return self._position

    def _open_segment(self) -> _Segment:
        number = self._next_number
        self._next_number += 1
        path = self._segment_path(number)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise JournalError(exc.errno, f"cannot create journal segment {path}: {exc}") from exc
        self._current = _Segment(number, path, fd)
        return self._current

    def _seal_current(self) -> None:
        segment = self._current
        if segment is None:
            return
        self._current = None
        self._sealed[segment.number] = segment
        fd, segment.fd = segment.fd, -1
        if self.policy is FsyncPolicy.NO:
            self._unsynced_fds.discard(fd)
            _close_quietly(fd)
            return
        # Its last records may still need an fsync, or one may be running in a thread right
        # now: the sync closes it afterwards, so an fd number is never closed under it.
        self._closing_fds.add(fd)
        if fd not in self._unsynced_fds and not self._sync_running:
            self._closing_fds.discard(fd)
            _close_quietly(fd)

    def _collect(self) -> None:
        """Delete sealed segments, oldest first, while nothing in them is unsaved."""
        for number in list(self._sealed):
            segment = self._sealed[number]
            if segment.unsaved:
                break
            del self._sealed[number]
            if segment.size < _INLINE_UNLINK_BYTES and not self._unlinking:
                with contextlib.suppress(FileNotFoundError):
                    segment.path.unlink()
            else:
                self._doomed.append(segment.path)
        if self._doomed:
            self._start_unlinking()
        if not self._sealed and self._current is None:
            self._saved.clear()  # no record left anywhere: nothing to compare against
        elif len(self._saved) > self._prune_saved_at:
            # Forget threads with no record left in any segment; amortised by doubling the
            # mark, so a call does not walk every segment's threads.
            live: set[str] = set()
            for segment in [*self._sealed.values(), self._current]:
                if segment is not None:
                    live.update(segment.threads)
            self._saved = {t: p for t, p in self._saved.items() if t in live}
            self._prune_saved_at = 2 * len(self._saved) + 64

    @property
    def _unlinking(self) -> bool:
        return bool(self._doomed) or (self._unlinker is not None and not self._unlinker.done())

    def _start_unlinking(self) -> None:
        """Unlink collected segments in a worker thread, in order (oldest first, as before).

        Unlinking a segment of a few megabytes takes milliseconds (the file system frees its
        blocks): on the event loop that was a stall every segment. Small segments are still
        unlinked at once, unless bigger ones wait before them. A crash before the unlink
        leaves a segment whose records are all saved; replay skips them by the checkpoints,
        exactly as after a crash just before an inline unlink.
        """
        if self._unlinker is not None and not self._unlinker.done():
            return  # the running task picks up what was added
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            paths, self._doomed = self._doomed, []
            _unlink_all(paths)
            return
        self._unlinker = loop.create_task(self._unlink_doomed(), name="echo-journal-unlink")

    async def _unlink_doomed(self) -> None:
        while self._doomed:
            paths, self._doomed = self._doomed, []
            try:
                await asyncio.to_thread(_unlink_all, paths)
            except OSError as exc:
                log.warning("could not delete saved journal segments %s: %s", paths, exc)

    async def _finish_unlinking(self) -> None:
        task = self._unlinker
        if task is not None:
            with contextlib.suppress(Exception):
                await task
            self._unlinker = None
        if self._doomed:  # added after the task finished its last batch
            paths, self._doomed = self._doomed, []
            with contextlib.suppress(OSError):
                await asyncio.to_thread(_unlink_all, paths)

    # --- flushing -------------------------------------------------------------------------------

    async def sync(self, position: int | None = None) -> None:
        """Return once every record up to ``position`` (default: all written) is fsynced."""
        target = self._position if position is None else position
        while self._synced < target:
            task = self._sync_task
            if task is None or task.done():
                task = self._sync_task = asyncio.get_running_loop().create_task(self._sync_once())
            await asyncio.shield(task)

    async def _sync_once(self) -> None:
        target = self._position
        fds = list(self._unsynced_fds)
        self._unsynced_fds.clear()
        try:
            await asyncio.to_thread(_fsync_all, fds)
        except OSError as exc:
            self._unsynced_fds.update(fds)
            raise JournalError(exc.errno, f"journal fsync failed: {exc}") from exc
        self._synced = max(self._synced, target)
        # Sealed segments whose last records are now on disk can be closed.
        for fd in [fd for fd in self._closing_fds if fd not in self._unsynced_fds]:
            self._closing_fds.discard(fd)
            _close_quietly(fd)

    async def _flush_every_second(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._synced < self._position:
                try:
                    await self.sync()
                except JournalError as exc:
                    log.error("journal flush failed, will retry in a second: %s", exc)

    # --- helpers --------------------------------------------------------------------------------

    def _segment_numbers(self) -> Iterator[int]:
        for entry in os.scandir(self.directory):
            name = entry.name
            if name.endswith(_SEGMENT_SUFFIX) and name[: -len(_SEGMENT_SUFFIX)].isdigit():
                yield int(name[: -len(_SEGMENT_SUFFIX)])

    def _segment_path(self, number: int) -> Path:
        return self.directory / f"{number:020d}{_SEGMENT_SUFFIX}"


def _cut_short(tail: bytes) -> bool:
    """Whether a segment's unterminated tail is what a crash leaves: the start of a record (a
    JSON object) or the zeros a file system can leave past the last completed write."""
    return tail.startswith(b"{") or not tail.strip(b"\0")


def _checkpoint_line(thread_id: str, digest: str) -> bytes:
    return f'{{"op":"checkpoint","thread_id":"{thread_id}","sha256":"{digest}"}}\n'.encode()


def _fsync_all(fds: list[int]) -> None:
    for fd in fds:
        os.fsync(fd)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
