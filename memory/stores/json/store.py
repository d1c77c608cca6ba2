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
import fcntl
import functools
import hashlib
import itertools
import json
import logging
import os
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiofiles
import aiofiles.os

from memory.errors import first_line
from memory.recording.aside import move_aside
from memory.recording.journal import FsyncPolicy, Journal, JournalError, JournalRecord
from memory.records.fileformat import parse, render_chunks
from memory.records.memories import MemoryRecord
from memory.records.models import Conversation, validate_snowflake
from memory.records.mutations import Mutation, MutationError, Purge, decode, encode
from memory.stores.base import (
    ConversationInfo,
    ConversationRef,
    ConversationStore,
    RecoveryError,
    StoreError,
)
from memory.stores.data_folder import check_data_folder

log = logging.getLogger(__name__)

__all__ = ["JsonFileStore"]

_FILENAME = re.compile(
    r"^(?P<day>\d{4}-\d{2}-\d{2})_conversation-with-(?P<requester>\d{1,20})"
    r"-in-(?P<guild>\d{1,20})_(?P<thread>\d{1,20})\.json$"
)
_TEMP_SUFFIX = ".tmp"
# The header of a conversation file is everything before this line (see Conversation.render).
_HISTORY_MARKER = b',\n  "history": '
_HEADER_PROBE = 64 * 1024
_HEADER_KEYS = frozenset(
    {"thread_id", "channel_id", "created_at", "updated_at", "guild_id", "requester", "participants"}
)
MEMORIES_FOLDER = "memories"
T = TypeVar("T")
R = TypeVar("R")

# Worker threads reading and writing files at once when recovering a journal, and how many
# recovered conversations are saved together.
_RECOVERY_THREADS = 16
_RECOVERY_SLICE = 500


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
        # thread id -> where its file is. ``ref.location`` is the path as a string: a Path per
        # file would cost more than the rest of the scan of 100,000 names (``_path``).
        self._index: dict[str, ConversationRef] = {}
        self._lock_fd: int | None = None
        self._temp_names = itertools.count()
        # Guild folders known to exist: a save does not ask again (a thread hop each time).
        self._folders: set[Path] = set()
        # path -> ((mtime_ns, size), header): headers are re-read only for changed files.
        self._headers: dict[Path, tuple[tuple[int, int], ConversationInfo]] = {}

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
            self._lock_fd = _lock_folder(self.data_dir)
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
        """Index every conversation file by thread id, from names alone (no file is read)."""
        index: dict[str, ConversationRef] = {}
        match_name = _FILENAME.match
        for guild in os.scandir(self.guilds_dir):
            if not guild.is_dir() or not guild.name.isdigit():
                continue
            for entry in os.scandir(guild.path):
                name = entry.name
                if name.startswith(".") and name.endswith(_TEMP_SUFFIX):
                    # A save that never reached its rename; the journal still holds its data.
                    # A reader leaves it: it may be a running bot's save in progress.
                    if not self.read_only:
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)
                    continue
                match = match_name(name)
                if match is None or match["guild"] != guild.name or not entry.is_file():
                    continue
                day, requester, guild_id, thread_id = match.groups()
                if thread_id in index:
                    log.warning(
                        "two files for thread %s: %s and %s; using the first",
                        thread_id,
                        index[thread_id].location,
                        entry.path,
                    )
                    continue
                index[thread_id] = ConversationRef(
                    thread_id, guild_id, requester, date.fromisoformat(day), entry.path
                )
        return index

    # --- recording ----------------------------------------------------------------------------

    async def _record(self, mutation: Mutation) -> None:
        self._writable()
        await self.journal.append(mutation.thread_id, encode(mutation))

    # --- saving and loading -------------------------------------------------------------------

    async def _save(self, conversation: Conversation) -> None:
        self._writable()
        thread_id = conversation.thread_id
        folder = self.guilds_dir / conversation.guild_id
        path = folder / conversation.filename
        chunks = await render_chunks(conversation)
        durable = self.fsync is not FsyncPolicy.NO
        temp = self._temp_for(path)
        try:
            if folder not in self._folders:
                await self._make_folder(folder, durable)
            # One thread call opens, writes, fsyncs and closes: a caller cancelled half-way
            # cannot strand an open file, as separate aiofiles hops could.
            # The file's SHA-256 is taken in the same thread call: hashing on the event loop
            # lets the worker threads take the GIL, and getting it back costs more.
            try:
                digest = await asyncio.to_thread(_write_file, temp, chunks, durable, True)
            except FileNotFoundError:  # the folder was removed since (by hand): once more
                self._folders.discard(folder)
                await self._make_folder(folder, durable)
                digest = await asyncio.to_thread(_write_file, temp, chunks, durable, True)
            # Unlike _write_atomically, the journal's checkpoint must sit between the two.
            position = await self.journal.checkpoint(thread_id, digest)
            # The rename and the folder's fsync in one thread call (a hop costs as much).
            await asyncio.to_thread(_rename, temp, path, folder if durable else None)
        except (OSError, JournalError) as exc:
            with contextlib.suppress(OSError):
                await aiofiles.os.remove(temp)
            raise StoreError(f"could not save conversation {thread_id} to {path}: {exc}") from exc
        self.journal.mark_saved(thread_id, position)
        previous = self._index.get(thread_id)
        if previous is not None and previous.location != str(path):
            # Only a hand-renamed file can differ; the canonical name wins.
            with contextlib.suppress(OSError):
                await aiofiles.os.remove(previous.location)
        self._index[thread_id] = _ref_for(conversation, path)

    def _temp_for(self, path: Path) -> Path:
        """A temp file beside ``path``, unique in this process, to be renamed onto it."""
        return path.with_name(f".{path.name}.{os.getpid()}-{next(self._temp_names)}{_TEMP_SUFFIX}")

    async def _make_folder(self, folder: Path, durable: bool) -> None:
        if not await aiofiles.os.path.isdir(folder):
            await aiofiles.os.makedirs(folder, exist_ok=True)
            if durable:
                await asyncio.to_thread(_fsync_dir, self.guilds_dir)
        self._folders.add(folder)

    async def _write_atomically(self, folder: Path, path: Path, data: bytes) -> None:
        """Temp file in the same folder, fsync, rename, fsync of the folder."""
        durable = self.fsync is not FsyncPolicy.NO
        temp = self._temp_for(path)
        try:
            if not await aiofiles.os.path.isdir(folder):
                await aiofiles.os.makedirs(folder, exist_ok=True)
                if durable:
                    await asyncio.to_thread(_fsync_dir, folder.parent)
            await asyncio.to_thread(_write_file, temp, [data], durable)
            await aiofiles.os.replace(temp, path)
            if durable:
                await asyncio.to_thread(_fsync_dir, folder)
        except OSError:
            with contextlib.suppress(OSError):
                await aiofiles.os.remove(temp)
            raise

    # --- headers (for eligibility, listings) --------------------------------------------------

    async def _infos(self, guild_id: str | None) -> list[ConversationInfo]:
        paths = [_path(ref) for ref in self._index.values() if guild_id in (None, ref.guild_id)]
        infos, bad = await asyncio.to_thread(self._read_headers, paths)
        for path, why in bad:
            thread = _FILENAME.match(path.name)
            if thread is not None:
                await self._quarantine(thread["thread"], path, why)
        return infos

    def _read_headers(
        self, paths: list[Path]
    ) -> tuple[list[ConversationInfo], list[tuple[Path, str]]]:
        infos: list[ConversationInfo] = []
        bad: list[tuple[Path, str]] = []
        for path in paths:
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            key = (stat.st_mtime_ns, stat.st_size)
            cached = self._headers.get(path)
            if cached is not None and cached[0] == key:
                infos.append(cached[1])
                continue
            try:
                info = _read_header(path)
            except (OSError, ValueError) as exc:
                bad.append((path, f"its header does not parse: {first_line(exc)}"))
                continue
            self._headers[path] = (key, info)
            infos.append(info)
        return infos, bad

    # --- memories -----------------------------------------------------------------------------

    def _memory_path(self, guild_id: str, thread_id: str) -> Path:
        return self.guilds_dir / guild_id / MEMORIES_FOLDER / f"{thread_id}.json"

    async def _save_memory(self, record: MemoryRecord) -> None:
        self._writable()
        path = self._memory_path(record.guild_id, record.thread_id)
        try:
            await self._write_atomically(path.parent, path, record.to_json().encode())
        except OSError as exc:
            raise StoreError(f"could not save the memory of {record.thread_id}: {exc}") from exc

    async def _load_memory(self, guild_id: str, thread_id: str) -> MemoryRecord | None:
        path = self._memory_path(guild_id, thread_id)
        try:
            async with aiofiles.open(path, "rb") as handle:
                data = await handle.read()
        except FileNotFoundError:
            return None
        try:
            return MemoryRecord.from_json(data)
        except ValueError as exc:
            await self._set_memory_aside(path, exc)
            return None

    async def _list_memories(self, guild_id: str) -> list[MemoryRecord]:
        folder = self.guilds_dir / guild_id / MEMORIES_FOLDER
        if not await aiofiles.os.path.isdir(folder):
            return []
        names = await aiofiles.os.listdir(folder)
        records: list[MemoryRecord] = []
        for name in sorted(names):
            stem = name.removesuffix(".json")
            if name.endswith(".json") and stem.isdigit():
                record = await self._load_memory(guild_id, stem)
                if record is not None:
                    records.append(record)
        return records

    async def _delete_memory(self, guild_id: str, thread_id: str) -> bool:
        self._writable()
        try:
            await aiofiles.os.remove(self._memory_path(guild_id, thread_id))
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(f"could not delete the memory of {thread_id}: {exc}") from exc
        return True

    async def _set_memory_aside(self, path: Path, exc: Exception) -> None:
        why = f"it does not parse: {first_line(exc)}"
        if self.read_only:
            log.warning("memory file %s: %s (left as it is: read-only)", path, why)
            return
        try:
            target = await asyncio.to_thread(move_aside, path)
        except OSError as exc:
            log.error("memory file %s: %s; could not move it aside: %s", path, why, exc)
        else:
            log.warning("memory file %s: %s; moved aside to %s", path, why, target.name)

    async def _load(self, thread_id: str) -> Conversation | None:
        entry = self._index.get(thread_id)
        if entry is None:
            return None
        path = _path(entry)
        data = await self._read(thread_id, path)
        if data is None:
            return None
        try:
            return await parse(data)
        except ValueError as exc:
            await self._quarantine(thread_id, path, f"it does not parse: {first_line(exc)}")
            return None

    async def _read(self, thread_id: str, path: Path) -> bytes | None:
        found = await self._read_hashed(thread_id, path, hashed=False)
        return None if found is None else found[0]

    async def _read_hashed(
        self, thread_id: str, path: Path, *, hashed: bool = True
    ) -> tuple[bytes, str] | None:
        """The file's bytes and (if ``hashed``) their SHA-256, in one thread hop."""
        try:
            return await asyncio.to_thread(_read_file, path, hashed)
        except FileNotFoundError:
            log.warning("conversation file %s disappeared; forgetting it", path)
            self._index.pop(thread_id, None)
            return None
        except OSError as exc:
            raise StoreError(f"cannot read conversation {thread_id} from {path}: {exc}") from exc

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"{self!r} was opened read-only")

    async def _quarantine(self, thread_id: str, path: Path, why: str) -> None:
        if self.read_only:
            log.warning("conversation file %s: %s (left as it is: read-only)", path, why)
            self._index.pop(thread_id, None)
            return
        try:
            target = await asyncio.to_thread(move_aside, path)
        except OSError as exc:
            log.error("conversation file %s: %s; could not move it aside: %s", path, why, exc)
        else:
            log.warning("conversation file %s: %s; moved aside to %s", path, why, target.name)
        self._index.pop(thread_id, None)

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

    def pinned_threads(self) -> set[str]:
        return self.journal.pinned_threads()

    # --- recovery -----------------------------------------------------------------------------

    async def _recover(self) -> list[Conversation]:
        if self.read_only:
            return []
        if not self.journal.has_leftovers:
            return []
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

        # Recovery does in bulk what _load and _save do one conversation at a time: with a
        # thousand conversations to bring back, a thread hop per file cost more than the file.
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
        few threads at once (a file that vanished is forgotten, as ``_read_hashed`` does)."""
        wanted = [
            (thread_id, _path(entry))
            for thread_id in by_thread
            if (entry := self._index.get(thread_id)) is not None
        ]
        found: dict[str, tuple[bytes, str]] = {}
        for (thread_id, path), result in zip(
            wanted, await _in_threads(_read_files, [p for _, p in wanted]), strict=True
        ):
            if isinstance(result, FileNotFoundError):
                log.warning("conversation file %s disappeared; forgetting it", path)
                self._index.pop(thread_id, None)
            elif isinstance(result, OSError):
                raise StoreError(f"cannot read conversation {thread_id} from {path}: {result}")
            else:
                found[thread_id] = result
        return found

    async def _save_recovered(self, conversations: list[Conversation]) -> None:
        """``_save`` for many conversations at once, with the same steps in the same order
        (file written and fsynced, checkpoint durable, rename, folder fsynced), each step taken
        for all of them together: a few thread hops and one journal sync in all, and one fsync
        per folder."""
        # In slices: the file bytes of one slice at a time are held in memory.
        for start in range(0, len(conversations), _RECOVERY_SLICE):
            await self._save_slice(conversations[start : start + _RECOVERY_SLICE])

    async def _save_slice(self, conversations: list[Conversation]) -> None:
        durable = self.fsync is not FsyncPolicy.NO
        jobs: list[tuple[Conversation, Path, Path]] = []  # conversation, final path, temp file
        try:
            for conversation in conversations:
                folder = self.guilds_dir / conversation.guild_id
                if folder not in self._folders:
                    await self._make_folder(folder, durable)
                path = folder / conversation.filename
                temp = self._temp_for(path)
                jobs.append((conversation, path, temp))
            writes = [(temp, await render_chunks(c)) for c, _, temp in jobs]
            digests = await _in_threads(functools.partial(_write_files, durable=durable), writes)
            failed = next((d for d in digests if isinstance(d, BaseException)), None)
            if failed is not None:
                raise failed
            positions = await self.journal.checkpoint_many(
                [(c.thread_id, str(d)) for (c, _, _), d in zip(jobs, digests, strict=True)]
            )
            folders = sorted({path.parent for _, path, _ in jobs}) if durable else []
            await asyncio.to_thread(_rename_all, [(t, p) for _, p, t in jobs], folders)
        except (OSError, JournalError) as exc:
            await asyncio.to_thread(_remove_quietly, [temp for _, _, temp in jobs])
            raise RecoveryError(
                f"recovered {len(conversations)} conversation(s) from the journal but could not "
                f"save them ({exc}); the journal in {self.journal.directory} is kept, nothing "
                "is lost"
            ) from exc
        for (conversation, path, _), position in zip(jobs, positions, strict=True):
            self.journal.mark_saved(conversation.thread_id, position)
            previous = self._index.get(conversation.thread_id)
            if previous is not None and previous.location != str(path):
                # Only a hand-renamed file can differ; the canonical name wins.
                with contextlib.suppress(OSError):
                    await aiofiles.os.remove(previous.location)
            self._index[conversation.thread_id] = _ref_for(conversation, path)

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
        entry = self._index.get(thread_id)
        path = _path(entry) if entry is not None else None
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
                self._index.pop(thread_id, None)
            elif "create" in ops:
                await self._quarantine(thread_id, path, "it does not match the journal")
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
        try:
            return await parse(data)
        except ValueError as exc:
            await self._quarantine(thread_id, path, f"it does not parse: {first_line(exc)}")
            return None

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


def _path(ref: ConversationRef) -> Path:
    return Path(ref.location)


def _ref_for(conversation: Conversation, path: Path) -> ConversationRef:
    return ConversationRef(
        thread_id=conversation.thread_id,
        guild_id=conversation.guild_id,
        requester=conversation.requester,
        created=conversation.created_at.astimezone(UTC).date(),
        location=str(path),
    )


def _read_header(path: Path) -> ConversationInfo:
    """A conversation's header from the start of its file; the whole file only if need be."""
    with open(path, "rb") as handle:
        head = handle.read(_HEADER_PROBE)
        raw: Any = None
        cut = head.find(_HISTORY_MARKER)
        if cut >= 0:
            # Echo writes the history last; a file written by something else may not, and a
            # header missing any key would silently take defaults (a wrong updated_at).
            with contextlib.suppress(ValueError):
                raw = json.loads(head[:cut] + b"\n}")
            if not isinstance(raw, dict) or not raw.keys() >= _HEADER_KEYS:
                raw = None
        if raw is None:  # a long summary, or another key order: read it all
            raw = json.loads(head + handle.read())
            if not isinstance(raw, dict):
                raise ValueError("the file is not a JSON object")
            raw.pop("history", None)
    return ConversationInfo.of(Conversation.model_validate(raw))


def _lock_folder(folder: Path) -> int:
    path = folder / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(
            f"{folder} is in use by another Echo process (it holds {path}); "
            "stop it or choose another ECHO_DATA_DIR"
        ) from None
    return fd


def _write_file(path: Path, chunks: list[bytes], durable: bool, hashed: bool = False) -> str:
    """Write ``chunks`` one after another (and fsync if ``durable``) as a new file; the
    file's SHA-256 if ``hashed``, else "".

    Writing and hashing a piece of more than a few kilobytes releases the GIL, so the event
    loop runs meanwhile (joining the pieces first would hold it for the whole copy).
    """
    digest = hashlib.sha256() if hashed else None
    with open(path, "wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
            if digest is not None:
                digest.update(chunk)
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
    return digest.hexdigest() if digest is not None else ""


def _read_file(path: Path, hashed: bool) -> tuple[bytes, str]:
    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest() if hashed else ""


async def _in_threads(
    function: Callable[[list[T]], list[R | OSError]], items: list[T]
) -> list[R | OSError]:
    """``function`` over slices of ``items`` in up to ``_RECOVERY_THREADS`` worker threads at
    once (their fsyncs overlap); the results in the order of ``items``."""
    size = max(1, -(-len(items) // _RECOVERY_THREADS))
    slices = [items[i : i + size] for i in range(0, len(items), size)]
    parts = await asyncio.gather(*(asyncio.to_thread(function, s) for s in slices))
    return [result for part in parts for result in part]


def _read_files(paths: list[Path]) -> list[tuple[bytes, str] | OSError]:
    out: list[tuple[bytes, str] | OSError] = []
    for path in paths:
        try:
            out.append(_read_file(path, True))
        except OSError as exc:
            out.append(exc)
    return out


def _write_files(writes: list[tuple[Path, list[bytes]]], *, durable: bool) -> list[str | OSError]:
    # A failure is returned, not raised: every thread has stopped writing before the caller
    # removes the temp files.
    out: list[str | OSError] = []
    for temp, chunks in writes:
        try:
            out.append(_write_file(temp, chunks, durable, True))
        except OSError as exc:
            out.append(exc)
    return out


def _rename_all(moves: list[tuple[Path, Path]], sync_folders: list[Path]) -> None:
    for temp, path in moves:
        os.replace(temp, path)
    for folder in sync_folders:
        _fsync_dir(folder)


def _remove_quietly(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


def _rename(temp: Path, path: Path, sync_folder: Path | None) -> None:
    os.replace(temp, path)
    if sync_folder is not None:
        _fsync_dir(sync_folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
