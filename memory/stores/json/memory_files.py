"""The JSON store's long-term memory records: one file per thread.

```
<data>/guilds/<guild_id>/memories/<thread_id>.json
```
Written atomically as conversation files are (temp file, fsync, rename, fsync of the folder),
with no journal. A file that does not parse is moved aside (``*.corrupt``) and logged, never
deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

import aiofiles
import aiofiles.os

from memory.errors import first_line
from memory.recording.aside import move_aside
from memory.records.memories import MemoryRecord
from memory.stores.base import StoreError
from memory.stores.json.files import fsync_dir, temp_beside, write_file

log = logging.getLogger(__name__)

__all__ = ["MEMORIES_FOLDER", "MemoryFiles"]

MEMORIES_FOLDER = "memories"


class MemoryFiles:
    """The memory records under ``guilds_dir``, one JSON file per thread."""

    def __init__(self, guilds_dir: Path, *, durable: bool, read_only: bool) -> None:
        self.guilds_dir = guilds_dir
        self.durable = durable
        self.read_only = read_only

    def path(self, guild_id: str, thread_id: str) -> Path:
        return self.guilds_dir / guild_id / MEMORIES_FOLDER / f"{thread_id}.json"

    async def save(self, record: MemoryRecord) -> None:
        path = self.path(record.guild_id, record.thread_id)
        try:
            await self._write_atomically(path.parent, path, record.to_json().encode())
        except OSError as exc:
            raise StoreError(f"could not save the memory of {record.thread_id}: {exc}") from exc

    async def load(self, guild_id: str, thread_id: str) -> MemoryRecord | None:
        path = self.path(guild_id, thread_id)
        try:
            async with aiofiles.open(path, "rb") as handle:
                data = await handle.read()
        except FileNotFoundError:
            return None
        try:
            return MemoryRecord.from_json(data)
        except ValueError as exc:
            await self._set_aside(path, exc)
            return None

    async def of_guild(self, guild_id: str) -> list[MemoryRecord]:
        folder = self.guilds_dir / guild_id / MEMORIES_FOLDER
        if not await aiofiles.os.path.isdir(folder):
            return []
        names = await aiofiles.os.listdir(folder)
        records: list[MemoryRecord] = []
        for name in sorted(names):
            stem = name.removesuffix(".json")
            if name.endswith(".json") and stem.isdigit():
                record = await self.load(guild_id, stem)
                if record is not None:
                    records.append(record)
        return records

    def guilds(self) -> set[str]:
        """Guild folders that hold a memory folder."""
        try:
            return {
                entry.name
                for entry in self.guilds_dir.iterdir()
                if entry.name.isdigit() and (entry / MEMORIES_FOLDER).is_dir()
            }
        except OSError:
            return set()

    def files(self, guild_id: str) -> dict[str, Path]:
        """The guild's memory files by thread id, whether or not they parse."""
        folder = self.guilds_dir / guild_id / MEMORIES_FOLDER
        try:
            names = os.listdir(folder)
        except OSError:
            return {}
        return {
            name.removesuffix(".json"): folder / name
            for name in names
            if name.endswith(".json") and name.removesuffix(".json").isdigit()
        }

    async def delete(self, guild_id: str, thread_id: str) -> bool:
        try:
            await aiofiles.os.remove(self.path(guild_id, thread_id))
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(f"could not delete the memory of {thread_id}: {exc}") from exc
        return True

    async def _write_atomically(self, folder: Path, path: Path, data: bytes) -> None:
        """Temp file in the same folder, fsync, rename, fsync of the folder."""
        durable = self.durable
        temp = temp_beside(path)
        try:
            if not await aiofiles.os.path.isdir(folder):
                await aiofiles.os.makedirs(folder, exist_ok=True)
                if durable:
                    await asyncio.to_thread(fsync_dir, folder.parent)
            await asyncio.to_thread(write_file, temp, [data], durable)
            await aiofiles.os.replace(temp, path)
            if durable:
                await asyncio.to_thread(fsync_dir, folder)
        except OSError:
            with contextlib.suppress(OSError):
                await aiofiles.os.remove(temp)
            raise

    async def _set_aside(self, path: Path, exc: Exception) -> None:
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
