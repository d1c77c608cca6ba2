"""The JSON store's files on disk: their names, and the blocking steps that read and write them.

Everything here but ``in_threads`` runs in a worker thread (``asyncio.to_thread``): the store
decides which steps go together in one thread call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import os
import re
from collections.abc import Callable
from datetime import UTC, date
from pathlib import Path
from typing import Any, TypeVar

from memory.errors import first_line
from memory.records.models import Conversation
from memory.stores.base import ConversationInfo, ConversationRef

log = logging.getLogger(__name__)

__all__ = [
    "FILENAME",
    "fsync_dir",
    "in_threads",
    "path_of",
    "read_file",
    "read_files",
    "read_headers",
    "ref_for",
    "remove_quietly",
    "rename_all",
    "scan",
    "temp_beside",
    "write_file",
    "write_files",
]

FILENAME = re.compile(
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
# Worker threads reading or writing files at once (their fsyncs overlap).
_THREADS = 16
_temp_names = itertools.count()

T = TypeVar("T")
R = TypeVar("R")


def temp_beside(path: Path) -> Path:
    """A temp file beside ``path``, unique in this process, to be renamed onto it."""
    return path.with_name(f".{path.name}.{os.getpid()}-{next(_temp_names)}{_TEMP_SUFFIX}")


def path_of(ref: ConversationRef) -> Path:
    return Path(ref.location)


def ref_for(conversation: Conversation, path: Path) -> ConversationRef:
    return ConversationRef(
        thread_id=conversation.thread_id,
        guild_id=conversation.guild_id,
        requester=conversation.requester,
        created=conversation.created_at.astimezone(UTC).date(),
        location=str(path),
    )


def scan(guilds_dir: Path, *, remove_temps: bool) -> dict[str, ConversationRef]:
    """Index every conversation file by thread id, from names alone (no file is read).

    ``ref.location`` is the path as a string: a Path per file would cost more than the rest of
    the scan (``path_of`` makes one when a file is used)."""
    index: dict[str, ConversationRef] = {}
    match_name = FILENAME.match
    for guild in os.scandir(guilds_dir):
        if not guild.is_dir() or not guild.name.isdigit():
            continue
        for entry in os.scandir(guild.path):
            name = entry.name
            if name.startswith(".") and name.endswith(_TEMP_SUFFIX):
                # A save that never reached its rename; the journal still holds its data.
                # A reader leaves it: it may be a running bot's save in progress.
                if remove_temps:
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


# --- headers (for eligibility, listings) ------------------------------------------------------


def read_headers(
    paths: list[Path], cache: dict[Path, tuple[tuple[int, int], ConversationInfo]]
) -> tuple[list[ConversationInfo], list[tuple[Path, str]]]:
    """The headers of ``paths``, and the files whose header does not parse with the reason.

    ``cache`` maps a path to ((mtime_ns, size), header): only changed files are read again.
    """
    infos: list[ConversationInfo] = []
    bad: list[tuple[Path, str]] = []
    for path in paths:
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        key = (stat.st_mtime_ns, stat.st_size)
        cached = cache.get(path)
        if cached is not None and cached[0] == key:
            infos.append(cached[1])
            continue
        try:
            info = _read_header(path)
        except (OSError, ValueError) as exc:
            bad.append((path, f"its header does not parse: {first_line(exc)}"))
            continue
        cache[path] = (key, info)
        infos.append(info)
    return infos, bad


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


# --- reading and writing ----------------------------------------------------------------------


def write_file(path: Path, chunks: list[bytes], durable: bool, hashed: bool = False) -> str:
    """Write ``chunks`` one after another (and fsync if ``durable``) as a new file; the
    file's SHA-256 if ``hashed``, else "".

    Writing and hashing a piece of more than a few kilobytes releases the GIL, so the event
    loop runs meanwhile (joining the pieces first would hold it for the whole copy). Hashing
    here rather than on the event loop spares the loop from taking the GIL back from the
    worker threads.
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


def read_file(path: Path, hashed: bool) -> tuple[bytes, str]:
    """The file's bytes and (if ``hashed``) their SHA-256, else ""."""
    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest() if hashed else ""


def read_files(paths: list[Path]) -> list[tuple[bytes, str] | OSError]:
    """``read_file`` (hashed) of each path; a failure is returned in its place."""
    out: list[tuple[bytes, str] | OSError] = []
    for path in paths:
        try:
            out.append(read_file(path, True))
        except OSError as exc:
            out.append(exc)
    return out


def write_files(writes: list[tuple[Path, list[bytes]]], *, durable: bool) -> list[str | OSError]:
    """``write_file`` (hashed) of each (temp file, chunks); a failure is returned in its place,
    not raised: every thread has stopped writing before the caller removes the temp files."""
    out: list[str | OSError] = []
    for temp, chunks in writes:
        try:
            out.append(write_file(temp, chunks, durable, True))
        except OSError as exc:
            out.append(exc)
    return out


def rename_all(moves: list[tuple[Path, Path]], sync_folders: list[Path]) -> None:
    """Rename each temp file onto its path, then fsync ``sync_folders``."""
    for temp, path in moves:
        os.replace(temp, path)
    for folder in sync_folders:
        fsync_dir(folder)


def remove_quietly(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def in_threads(
    function: Callable[[list[T]], list[R | OSError]], items: list[T]
) -> list[R | OSError]:
    """``function`` over slices of ``items`` in up to ``_THREADS`` worker threads at once
    (their fsyncs overlap); the results in the order of ``items``."""
    size = max(1, -(-len(items) // _THREADS))
    slices = [items[i : i + size] for i in range(0, len(items), size)]
    if len(slices) == 1:  # one thread hop, as for a single save: no task to gather
        return await asyncio.to_thread(function, slices[0])
    parts = await asyncio.gather(*(asyncio.to_thread(function, s) for s in slices))
    return [result for part in parts for result in part]
