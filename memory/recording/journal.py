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
import logging
import os
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

from memory.recording.aside import move_aside
from memory.recording.segments import (
    JournalRecord,
    Segment,
    SegmentUnlinker,
    close_quietly,
    fsync_all,
    records_of,
    segment_numbers,
    segment_path,
)

log = logging.getLogger(__name__)

__all__ = ["FsyncPolicy", "Journal", "JournalError", "JournalRecord"]

DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024
# Segments at least this big are unlinked in a worker thread (see SegmentUnlinker).
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
        self._current: Segment | None = None
        self._sealed: dict[int, Segment] = {}  # sealed, not yet deleted, in number order
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
        # Collected segments waiting to be unlinked, oldest first.
        self._unlinker = SegmentUnlinker()
        self._opened = False

    # --- life cycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Create the folder and take note of segments an earlier process left for replay."""
        self.directory.mkdir(parents=True, exist_ok=True)
        numbers = sorted(segment_numbers(self.directory))
        self._old_segments = [segment_path(self.directory, n) for n in numbers]
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
            await self._unlinker.finish()
            for segment in [*self._sealed.values(), self._current]:
                if segment is not None and segment.fd >= 0:
                    close_quietly(segment.fd)
                    segment.fd = -1
            for fd in self._closing_fds:
                close_quietly(fd)
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
            yield from records_of(path, data, self.keep_unreadable)

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

    def _open_segment(self) -> Segment:
        number = self._next_number
        self._next_number += 1
        path = segment_path(self.directory, number)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise JournalError(exc.errno, f"cannot create journal segment {path}: {exc}") from exc
        self._current = Segment(number, path, fd)
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
            close_quietly(fd)
            return
        # Its last records may still need an fsync, or one may be running in a thread right
        # now: the sync closes it afterwards, so an fd number is never closed under it.
        self._closing_fds.add(fd)
        if fd not in self._unsynced_fds and not self._sync_running:
            self._closing_fds.discard(fd)
            close_quietly(fd)

    def _collect(self) -> None:
        """Delete sealed segments, oldest first, while nothing in them is unsaved."""
        for number in list(self._sealed):
            segment = self._sealed[number]
            if segment.unsaved:
                break
            del self._sealed[number]
            if segment.size < _INLINE_UNLINK_BYTES and not self._unlinker.busy:
                with contextlib.suppress(FileNotFoundError):
                    segment.path.unlink()
            else:
                self._unlinker.add(segment.path)
        self._unlinker.start()
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
            await asyncio.to_thread(fsync_all, fds)
        except OSError as exc:
            self._unsynced_fds.update(fds)
            raise JournalError(exc.errno, f"journal fsync failed: {exc}") from exc
        self._synced = max(self._synced, target)
        # Sealed segments whose last records are now on disk can be closed.
        for fd in [fd for fd in self._closing_fds if fd not in self._unsynced_fds]:
            self._closing_fds.discard(fd)
            close_quietly(fd)

    async def _flush_every_second(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._synced < self._position:
                try:
                    await self.sync()
                except JournalError as exc:
                    log.error("journal flush failed, will retry in a second: %s", exc)


def _checkpoint_line(thread_id: str, digest: str) -> bytes:
    return f'{{"op":"checkpoint","thread_id":"{thread_id}","sha256":"{digest}"}}\n'.encode()
