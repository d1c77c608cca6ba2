"""``python -m bot store migrate``: move every conversation and memory from one store to another.

For an operator who outgrows one machine (JSON files to Redis) or goes back. The source is the
truth: a conversation or memory the target holds in another version is replaced, one it holds
as it is stays untouched, so the migration can run again at any time (after an interruption, to
catch up) and copies only what differs. Nothing is ever deleted, on either side.

The JSON folder is opened as the bot opens it, not read-only: opening replays the journal a
crashed bot left, so nothing recorded is left behind. That takes the folder's lock, so the bot
must be stopped first. Redis is opened without a spool and with a bounded wait, so that an
unreachable server is a one-line error rather than a hang or a local copy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.cli.common import quiet_logging, run_store, settings_or_fail, shown_dir, snowflake_arg
from bot.cli.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, CliError
from bot.cli.progress import Progress
from bot.config import ConfigError, Settings
from bot.stores import StoreKind, describe_store, make_store
from memory import ConversationStore, JsonFileStore, StoreConfigError, StoreError
from memory.records.memories import MemoryRecord
from memory.stores.json.store import MEMORIES_FOLDER

__all__ = ["migrate_command"]

# Records copied at once: enough to overlap round trips to Redis, few enough to hold lightly.
CONCURRENCY = 8

# (flag, setting, field of Settings) for what the command line may override.
_OVERRIDES = (
    ("--data-dir", "ECHO_DATA_DIR", "data_dir"),
    ("--redis-url", "REDIS_URL", "redis_url"),
    ("--prefix", "ECHO_REDIS_PREFIX", "redis_prefix"),
)


@dataclass
class Tally:
    """What became of one kind of record (conversations or memories)."""

    total: int = 0
    copied: int = 0
    replaced: int = 0  # of the copied: the target held another version, now overwritten
    already: int = 0
    unreadable: list[tuple[str, str, str]] = field(default_factory=list)  # thread, guild, why
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # thread, guild, why

    def line(self) -> str:
        copied = f"{self.copied} copied"
        if self.replaced:
            copied += f" ({self.replaced} replaced)"
        text = f"{copied}, {self.already} already there, {len(self.unreadable)} unreadable"
        return text + (f", {len(self.failed)} failed" if self.failed else "")

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "copied": self.copied,
            "replaced": self.replaced,
            "already_there": self.already,
            "unreadable": [
                {"thread_id": t, "guild_id": g, "why": why} for t, g, why in self.unreadable
            ],
            "failed": [{"thread_id": t, "guild_id": g, "why": why} for t, g, why in self.failed],
        }


@dataclass
class Report:
    source: str
    target: str
    conversations: Tally = field(default_factory=Tally)
    memories: Tally = field(default_factory=Tally)

    @property
    def complete(self) -> bool:
        return not any(t.unreadable or t.failed for t in (self.conversations, self.memories))

    def line(self) -> str:
        return f"conversations: {self.conversations.line()}; memories: {self.memories.line()}"


# --- the command ----------------------------------------------------------------------------


def migrate_command(args: argparse.Namespace) -> int:
    source: StoreKind = args.source
    target: StoreKind = args.target
    if source == target:
        raise CliError(
            f"--from and --to are both {source}: a migration moves data from one kind of store "
            "to the other (json, redis)",
            EXIT_CONFIG,
        )
    guild_id = snowflake_arg(args.guild, "--guild", "a Discord server id")
    if not 0 < args.redis_wait <= 3600:
        raise CliError("--redis-wait must be more than 0 and at most 3600 seconds", EXIT_CONFIG)
    settings = _with_overrides(settings_or_fail(), args)
    quiet_logging(settings)
    if source == "json" and not (settings.data_dir / "guilds").is_dir():
        raise CliError(
            f"no Echo data in {shown_dir(settings.data_dir)} (it has no guilds folder): "
            "check ECHO_DATA_DIR or --data-dir",
            EXIT_CONFIG,
        )
    report: Report = run_store(_migrate(settings, source, target, guild_id, args.redis_wait))
    if args.json:
        print(
            json.dumps(
                {
                    "from": source,
                    "to": target,
                    "source": report.source,
                    "target": report.target,
                    "complete": report.complete,
                    "conversations": report.conversations.as_json(),
                    "memories": report.memories.as_json(),
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        print(report.line())
    for kind, tally in (("conversation", report.conversations), ("memory", report.memories)):
        for thread, guild, why in tally.unreadable:
            print(f"  {kind} {thread} (guild {guild}): unreadable: {why}", file=sys.stderr)
        for thread, guild, why in tally.failed:
            print(f"  {kind} {thread} (guild {guild}): not copied: {why}", file=sys.stderr)
    return EXIT_OK if report.complete else EXIT_FAILED


def _with_overrides(settings: Settings, args: argparse.Namespace) -> Settings:
    """The settings with what the command line says instead, checked as the settings are."""
    changes: dict[str, Any] = {}
    for flag, setting, name in _OVERRIDES:
        value = getattr(args, name)
        if value is None:
            continue
        if not value.strip():
            raise CliError(f"{flag} must not be empty", EXIT_CONFIG)
        try:
            checked = Settings.model_validate({setting: value})
        except ValidationError as exc:
            why = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            raise CliError(f"{flag} {value!r}: {why}", EXIT_CONFIG) from None
        changes[name] = getattr(checked, name)
    return settings.model_copy(update=changes)


async def _migrate(
    settings: Settings,
    source_kind: StoreKind,
    target_kind: StoreKind,
    guild_id: str | None,
    redis_wait: float,
) -> Report:
    report = Report(describe_store(settings, source_kind), describe_store(settings, target_kind))
    async with (
        _opened(settings, source_kind, redis_wait) as source,
        _opened(settings, target_kind, redis_wait) as target,
    ):
        print(f"Migrating from {report.source} to {report.target}", file=sys.stderr, flush=True)
        guilds = await _guilds(source) if guild_id is None else [guild_id]
        refs = [ref for guild in guilds for ref in await source.list_conversations(guild)]
        refs.reverse()  # oldest first: an interrupted run has moved the old, settled ones
        tally = report.conversations
        tally.total = len(refs)
        bar = Progress("conversations", tally.total)
        try:
            await _each(
                refs,
                lambda ref: _copy_conversation(source, target, ref.thread_id, ref.guild_id, tally),
                bar,
            )
            memories = await _memories(source, guilds, report.memories)
            report.memories.total += len(memories)
            bar.close()
            bar = Progress("memories", len(memories))
            await _each(memories, lambda record: _copy_memory(target, record, report.memories), bar)
        except _Stopped as exc:
            bar.close()
            raise CliError(
                f"{exc}; stopped with {report.line()} (run it again once fixed: what was "
                "copied is skipped)"
            ) from None
        except StoreError as exc:  # listing failed: the store as a whole
            bar.close()
            raise CliError(f"{exc}; stopped with {report.line()}") from None
        bar.close()
    for tally in (report.conversations, report.memories):
        tally.unreadable.sort(key=lambda entry: int(entry[0]))
        tally.failed.sort(key=lambda entry: int(entry[0]))
    return report


class _Stopped(Exception):
    """A store as a whole failed (not one record): the migration cannot go on."""


def _cause(exc: Exception) -> str:
    return str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"


async def _each(items: list[Any], copy: Callable[[Any], Awaitable[None]], bar: Progress) -> None:
    """Copy a few at a time, so that waiting for one store overlaps work on another record.

    A ``_Stopped`` from one copy stops them all, as one ``_Stopped``."""
    pending = iter(items)

    async def worker() -> None:
        for item in pending:
            await copy(item)
            bar.step()

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(CONCURRENCY):
                group.create_task(worker())
    except* _Stopped as stopped:
        raise stopped.exceptions[0] from None


@asynccontextmanager
async def _opened(
    settings: Settings, kind: StoreKind, redis_wait: float
) -> AsyncIterator[ConversationStore]:
    try:
        store = make_store(settings, kind, spool=False, wait_for_redis=redis_wait)
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_CONFIG) from None
    # Opening retries an unreachable Redis with a warning each time; the error line below says
    # it all, once.
    opening = logging.getLogger(type(store).__module__)
    level = opening.level
    if kind == "redis":
        opening.setLevel(logging.ERROR)
    try:
        await store.open()
    except StoreConfigError as exc:  # credentials, a permission: no wait helps
        raise CliError(str(exc), EXIT_CONFIG) from None
    except StoreError as exc:
        raise CliError(_cannot_open(settings, kind, exc, redis_wait)) from None
    finally:
        opening.setLevel(level)
    try:
        yield store
    finally:
        await store.close()


def _cannot_open(settings: Settings, kind: StoreKind, exc: StoreError, redis_wait: float) -> str:
    if kind == "json":
        lock = settings.data_dir / ".lock"
        if _is_locked(lock):
            return (
                f"{shown_dir(settings.data_dir)} is in use by a running Echo (it holds {lock}): "
                "stop the bot first, then migrate"
            )
        return f"cannot open the JSON store in {shown_dir(settings.data_dir)}: {exc}"
    where = describe_store(settings, kind)
    cause, unreachable = str(exc), " is unreachable: "
    if cause.startswith("Redis at ") and unreachable in cause:
        cause = cause.split(unreachable, 1)[1]
        return (
            f"{where} did not answer within {redis_wait:g} s (--redis-wait waits longer): {cause}"
        )
    return f"cannot open {where}: {cause}"


def _is_locked(path: Path) -> bool:
    """Whether another process holds the data folder's lock (probed, then let go at once)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


async def _guilds(store: ConversationStore) -> list[str]:
    guilds = set(await store.list_guilds())
    if isinstance(store, JsonFileStore):
        # A guild folder may hold memories whose conversations are gone; list_guilds knows
        # guilds by their conversations only.
        with contextlib.suppress(OSError):
            guilds.update(
                entry.name
                for entry in store.guilds_dir.iterdir()
                if entry.name.isdigit() and (entry / MEMORIES_FOLDER).is_dir()
            )
    return sorted(guilds, key=int)


async def _copy_conversation(
    source: ConversationStore,
    target: ConversationStore,
    thread_id: str,
    guild_id: str,
    tally: Tally,
) -> None:
    try:
        conversation = await source.load(thread_id)
    except StoreError as exc:
        if not isinstance(source, JsonFileStore):
            raise _Stopped(f"could not read conversation {thread_id}: {exc}") from exc
        # One file that cannot be read (permissions, a bad disk block) is that file's problem.
        tally.unreadable.append((thread_id, guild_id, str(exc)))
        return
    if conversation is None:
        # The store logged why (a JSON file that does not parse is set aside as *.corrupt).
        tally.unreadable.append((thread_id, guild_id, "the source could not read it"))
        return
    wanted = conversation.to_json()
    try:
        existing = await target.load(thread_id)
    except StoreError:
        existing = None  # unreadable in the target: replaced below
    if existing is not None and existing.to_json() == wanted:
        tally.already += 1
        return
    try:
        await target.put(conversation)
        stored = await target.load(thread_id)
    except Exception as exc:  # the target refuses writes (unreachable, full, read-only)
        raise _Stopped(f"could not write conversation {thread_id}: {_cause(exc)}") from exc
    if stored is None or stored.to_json() != wanted:
        tally.failed.append(
            (thread_id, guild_id, "the target holds something else after writing it")
        )
        return
    tally.copied += 1
    if existing is not None:
        tally.replaced += 1


async def _memories(
    store: ConversationStore, guilds: list[str], tally: Tally
) -> list[MemoryRecord]:
    records: list[MemoryRecord] = []
    for guild in guilds:
        if not isinstance(store, JsonFileStore):
            records += await store.list_memories(guild)
            continue
        # list_memories leaves out (and sets aside) a file that does not parse: name it.
        folder = store.guilds_dir / guild / MEMORIES_FOLDER
        names = await asyncio.to_thread(_memory_files, folder)
        found = await store.list_memories(guild)
        records += found
        for thread in sorted(names - {record.thread_id for record in found}, key=int):
            tally.total += 1
            why = f"{folder / (thread + '.json')} does not parse (set aside as *.corrupt)"
            tally.unreadable.append((thread, guild, why))
    return records


def _memory_files(folder: Path) -> set[str]:
    """Thread ids of the memory files in a folder."""
    try:
        names = os.listdir(folder)
    except OSError:
        return set()
    return {name[:-5] for name in names if name.endswith(".json") and name[:-5].isdigit()}


async def _copy_memory(target: ConversationStore, record: MemoryRecord, tally: Tally) -> None:
    wanted = record.to_json()
    guild, thread = record.guild_id, record.thread_id
    try:
        existing = await target.load_memory(guild, thread)
    except StoreError:
        existing = None
    if existing is not None and existing.to_json() == wanted:
        tally.already += 1
        return
    try:
        await target.save_memory(record)
        stored = await target.load_memory(guild, thread)
    except Exception as exc:
        raise _Stopped(f"could not write the memory of {thread}: {_cause(exc)}") from exc
    if stored is None or stored.to_json() != wanted:
        tally.failed.append((thread, guild, "the target holds something else after writing it"))
        return
    tally.copied += 1
    if existing is not None:
        tally.replaced += 1
