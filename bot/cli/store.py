"""``python -m bot store migrate``: move every conversation and memory from one store to another.

For an operator who outgrows one machine (JSON files to Redis) or goes back. What is copied,
and why running it again is safe, is ``bot.cli.migration``; this is the command: its settings,
opening both stores, and the report.

The JSON folder is opened as the bot opens it, not read-only: opening replays the journal a
crashed bot left, so nothing recorded is left behind. That takes the folder's lock, so the bot
must be stopped first. Redis is opened without a spool and with a bounded wait, so that an
unreachable server is a one-line error rather than a hang or a local copy.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.cli.common import quiet_logging, run_store, settings_or_fail, shown_dir, snowflake_arg
from bot.cli.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, CliError
from bot.cli.migration import (
    Report,
    Stopped,
    copy_conversation,
    copy_each,
    copy_memory,
    guilds_of,
    memories_of,
)
from bot.cli.progress import Progress
from bot.config import ConfigError, Settings
from bot.stores import StoreKind, describe_store, make_store
from memory import ConversationStore, StoreConfigError, StoreError

__all__ = ["migrate_command"]

# (flag, setting, field of Settings) for what the command line may override.
_OVERRIDES = (
    ("--data-dir", "ECHO_DATA_DIR", "data_dir"),
    ("--redis-url", "REDIS_URL", "redis_url"),
    ("--prefix", "ECHO_REDIS_PREFIX", "redis_prefix"),
)


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
        guilds = await guilds_of(source) if guild_id is None else [guild_id]
        refs = [ref for guild in guilds for ref in await source.list_conversations(guild)]
        refs.reverse()  # oldest first: an interrupted run has moved the old, settled ones
        tally = report.conversations
        tally.total = len(refs)
        bar = Progress("conversations", tally.total)
        try:
            await copy_each(
                refs,
                lambda ref: copy_conversation(source, target, ref.thread_id, ref.guild_id, tally),
                bar,
            )
            memories = await memories_of(source, guilds, report.memories)
            report.memories.total += len(memories)
            bar.close()
            bar = Progress("memories", len(memories))
            await copy_each(
                memories, lambda record: copy_memory(target, record, report.memories), bar
            )
        except Stopped as exc:
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
