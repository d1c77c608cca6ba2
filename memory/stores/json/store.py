"""The default store: one JSON file per conversation, in one folder per guild.

```
<data>/guilds/<guild_id>/<yyyy-mm-dd>_conversation-with-<requester>-in-<guild_id>_<thread_id>.json
<data>/journal/<segment>.log     mutations not yet in a saved file
```
Files are replaced atomically (temp file in the same folder, fsync, rename, fsync of the
folder), so a reader never sees half a file. A file that does not parse is moved aside as
``*.corrupt`` and logged; it is never deleted and never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from pathlib import Path

import aiofiles
import aiofiles.os

from memory.recording.journal import FsyncPolicy, Journal, JournalError
from memory.records.fileformat import render_chunks
from memory.records.memories import MemoryRecord
from memory.records.models import Conversation
from memory.records.mutations import Mutation, Purge, encode
from memory.stores.base import ConversationInfo, ConversationRef, ConversationStore, StoreError
from memory.stores.data_folder import check_data_folder, lock_folder
from memory.stores.json.files import (
    FILENAME,
    fsync_dir,
    in_threads,
    path_of,
    read_file,
    read_headers,
    ref_for,
    remove_quietly,
    rename_all,
    scan,
    temp_beside,
    write_files,
)
from memory.stores.json.memory_files import MemoryFiles
from memory.stores.json.recovery import parse_or_quarantine, quarantine, recover

log = logging.getLogger(__name__)

__all__ = ["JsonFileStore"]


class JsonFileStore(ConversationStore):
    """Conversations as per-guild JSON files, mutations in a write-ahead journal."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        fsync: FsyncPolicy | str = FsyncPolicy.EVERYSEC,
        journal_segment_bytes: int | None = None,
        read_only: bool = False,
    ) -> None:
        """``read_only``: look at the files without the folder lock or the journal, so that
        an operator's tools can read while the bot runs; writes raise ``StoreError``."""
        super().__init__()
        self.data_dir = Path(data_dir)
        self.read_only = read_only
        self.guilds_dir = self.data_dir / "guilds"
        self.fsync = FsyncPolicy(fsync)
        kwargs = {} if journal_segment_bytes is None else {"segment_bytes": journal_segment_bytes}
        self.journal = Journal(self.data_dir / "journal", self.fsync, **kwargs)
        # thread id -> where its file is (see ``files.scan``).
        self._index: dict[str, ConversationRef] = {}
        self._lock_fd: int | None = None
        # Guild folders known to exist: a save does not ask again (a thread hop each time).
        self._folders: set[Path] = set()
        # path -> ((mtime_ns, size), header): headers are re-read only for changed files.
        self._headers: dict[Path, tuple[tuple[int, int], ConversationInfo]] = {}
        durable = self.fsync is not FsyncPolicy.NO
        self._memories = MemoryFiles(self.guilds_dir, durable=durable, read_only=read_only)

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"JsonFileStore({str(self.data_dir)!r}, fsync={self.fsync.value!r}{mode})"

    # --- life cycle ---------------------------------------------------------------------------

    async def _open(self) -> None:
        await asyncio.to_thread(check_data_folder, self.data_dir)
        if self.read_only:
            try:
                found = self.guilds_dir.is_dir()
                self._index = await asyncio.to_thread(self._scan) if found else {}
            except OSError as exc:  # unreadable: never to be shown as an empty folder
                raise StoreError(f"cannot read data folder {self.data_dir}: {exc}") from exc
            return
        try:
            self.guilds_dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = lock_folder(self.data_dir)
        except OSError as exc:
            raise StoreError(f"cannot use data folder {self.data_dir}: {exc}") from exc
        try:
            self._index = await asyncio.to_thread(self._scan)
            self.journal.open()
        except BaseException:
            self._unlock()
            raise
        log.debug("opened %r: %d conversations on disk", self, len(self._index))

    async def _close(self) -> None:
        if self.read_only:
            return
        try:
            await self.journal.close()
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def _scan(self) -> dict[str, ConversationRef]:
        return scan(self.guilds_dir, remove_temps=not self.read_only)

    # --- recording ----------------------------------------------------------------------------

    async def _record(self, mutation: Mutation) -> None:
        self._writable()
        await self.journal.append(mutation.thread_id, encode(mutation))

    # --- saving: the save protocol -------------------------------------------------------------

    async def _save(self, conversation: Conversation) -> None:
        self._writable()
        try:
            await self._save_batch([conversation])
        except (OSError, JournalError) as exc:
            path = self.guilds_dir / conversation.guild_id / conversation.filename
            raise StoreError(
                f"could not save conversation {conversation.thread_id} to {path}: {exc}"
            ) from exc

    async def _save_batch(self, conversations: list[Conversation]) -> None:
        """Save conversations (one, or the many a recovery brings back) in four steps, each
        taken for all of them together: few thread hops, one journal flush, one fsync per folder.

        1. Each file is written to a temp file beside it, and fsynced.
        2. A checkpoint per file (its SHA-256) goes to the journal, flushed: the rename that
           follows must never be on disk without the record that explains it.
        3. The temp files are renamed into place, then each folder is fsynced.
        4. The journal learns they are saved (its segments can go), the index where they are.

        A crash anywhere leaves the old file or the new one, and the journal accounts for
        either. Raises ``OSError`` or ``JournalError`` with the temp files removed.
        """
        durable = self.fsync is not FsyncPolicy.NO
        # Rendered first: the file is the conversation as it was when the save began.
        rendered = [await render_chunks(c) for c in conversations]
        jobs: list[tuple[Conversation, Path, Path]] = []  # conversation, final path, temp file
        try:
            for conversation in conversations:
                folder = self.guilds_dir / conversation.guild_id
                if folder not in self._folders:
                    await self._make_folder(folder, durable)
                path = folder / conversation.filename
                jobs.append((conversation, path, temp_beside(path)))
            digests = await self._write_temps(
                [(temp, chunks) for (_, _, temp), chunks in zip(jobs, rendered, strict=True)],
                durable,
            )
            marks = [(c.thread_id, d) for (c, _, _), d in zip(jobs, digests, strict=True)]
            if len(marks) == 1:  # the usual save, of one conversation
                positions = [await self.journal.checkpoint(*marks[0])]
            else:
                positions = await self.journal.checkpoint_many(marks)
            folders = sorted({path.parent for _, path, _ in jobs}) if durable else []
            # The renames and the folders' fsyncs in one thread call (a hop costs as much).
            await asyncio.to_thread(rename_all, [(t, p) for _, p, t in jobs], folders)
        except (OSError, JournalError):
            await asyncio.to_thread(remove_quietly, [temp for _, _, temp in jobs])
            raise
        for (conversation, path, _), position in zip(jobs, positions, strict=True):
            self.journal.mark_saved(conversation.thread_id, position)
            previous = self._index.get(conversation.thread_id)
            if previous is not None and previous.location != str(path):
                # Only a hand-renamed file can differ; the canonical name wins.
                with contextlib.suppress(OSError):
                    await aiofiles.os.remove(previous.location)
            self._index[conversation.thread_id] = ref_for(conversation, path)

    async def _write_temps(
        self, writes: list[tuple[Path, list[bytes]]], durable: bool
    ) -> list[str]:
        """Write (and fsync) the temp files; their SHA-256s, in order.

        Each thread call opens, writes, fsyncs and closes its files: a caller cancelled
        half-way cannot strand an open file, as separate aiofiles hops could."""
        write = functools.partial(write_files, durable=durable)
        digests = await in_threads(write, writes)
        again = [i for i, d in enumerate(digests) if isinstance(d, FileNotFoundError)]
        if again:  # a folder was removed since (by hand): made again, written once more
            for folder in {writes[i][0].parent for i in again}:
                self._folders.discard(folder)
                await self._make_folder(folder, durable)
            retried = await in_threads(write, [writes[i] for i in again])
            for i, digest in zip(again, retried, strict=True):
                digests[i] = digest
        failed = next((d for d in digests if isinstance(d, BaseException)), None)
        if failed is not None:
            raise failed
        return [str(d) for d in digests]

    async def _make_folder(self, folder: Path, durable: bool) -> None:
        if not await aiofiles.os.path.isdir(folder):
            await aiofiles.os.makedirs(folder, exist_ok=True)
            if durable:
                await asyncio.to_thread(fsync_dir, self.guilds_dir)
        self._folders.add(folder)

    # --- loading ------------------------------------------------------------------------------

    async def _load(self, thread_id: str) -> Conversation | None:
        entry = self._index.get(thread_id)
        if entry is None:
            return None
        path = path_of(entry)
        try:
            data, _ = await asyncio.to_thread(read_file, path, False)
        except FileNotFoundError:
            log.warning("conversation file %s disappeared; forgetting it", path)
            self._index.pop(thread_id, None)
            return None
        except OSError as exc:
            raise StoreError(f"cannot read conversation {thread_id} from {path}: {exc}") from exc
        return await parse_or_quarantine(
            self._index, thread_id, path, data, read_only=self.read_only
        )

    async def _infos(self, guild_id: str | None) -> list[ConversationInfo]:
        paths = [path_of(ref) for ref in self._index.values() if guild_id in (None, ref.guild_id)]
        infos, bad = await asyncio.to_thread(read_headers, paths, self._headers)
        for path, why in bad:
            thread = FILENAME.match(path.name)
            if thread is not None:
                await quarantine(self._index, thread["thread"], path, why, read_only=self.read_only)
        return infos

    # --- memories -----------------------------------------------------------------------------

    async def _save_memory(self, record: MemoryRecord) -> None:
        self._writable()
        await self._memories.save(record)

    async def _load_memory(self, guild_id: str, thread_id: str) -> MemoryRecord | None:
        return await self._memories.load(guild_id, thread_id)

    async def _list_memories(self, guild_id: str) -> list[MemoryRecord]:
        return await self._memories.of_guild(guild_id)

    async def _delete_memory(self, guild_id: str, thread_id: str) -> bool:
        self._writable()
        return await self._memories.delete(guild_id, thread_id)

    # --- the rest -----------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"{self!r} was opened read-only")

    async def _exists(self, thread_id: str) -> bool:
        return thread_id in self._index

    async def _list(self, guild_id: str | None) -> list[ConversationRef]:
        return [ref for ref in self._index.values() if guild_id in (None, ref.guild_id)]

    async def _list_guilds(self) -> list[str]:
        return list({ref.guild_id for ref in self._index.values()})

    async def _delete(self, thread_id: str) -> bool:
        self._writable()
        # The purge goes to disk first: a crash after it can never bring the conversation back.
        position = await self.journal.append(thread_id, encode(Purge(thread_id)))
        if self.fsync is not FsyncPolicy.NO:
            await self.journal.sync(position)
        entry = self._index.pop(thread_id, None)
        if entry is not None:
            try:
                await aiofiles.os.remove(entry.location)
            except FileNotFoundError:
                pass
            except OSError as exc:
                self._index[thread_id] = entry
                raise StoreError(f"could not delete {entry.location}: {exc}") from exc
        self.journal.mark_saved(thread_id, position)
        return entry is not None

    @property
    def journal_dir(self) -> Path:
        return self.journal.directory

    def file_of(self, guild_id: str, thread_id: str) -> Path | None:
        found = sorted((self.guilds_dir / guild_id).glob(f"*_{thread_id}.json"))
        return found[0] if found else None

    def memory_file_guilds(self) -> set[str]:
        return self._memories.guilds()

    def memory_file_ids(self, guild_id: str) -> dict[str, Path]:
        return self._memories.files(guild_id)

    def pinned_threads(self) -> set[str]:
        return self.journal.pinned_threads()

    # --- recovery (see ``recovery``) ---------------------------------------------------------

    async def _recover(self) -> list[Conversation]:
        if self.read_only or not self.journal.has_leftovers:
            return []
        return await recover(self.journal, self._index, self._save_batch)
