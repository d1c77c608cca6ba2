"""``python -m bot memories ...``: generate, list, show and search long-term memories.

Each reads the store the settings ask for (``ECHO_STORE``: JSON files or Redis); ``generate``
builds what the bot builds (``echo_core``), so it queues through Redis when the store is Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from bot.cli.common import (
    quiet_logging,
    reading_store,
    run_store,
    settings_or_fail,
    snowflake_arg,
    stderr_line,
    store_where,
)
from bot.cli.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, CliError
from bot.cli.progress import Progress
from bot.cli.safe_text import terminal_safe
from bot.config import Settings
from memory import ConversationStore, InMemoryConversationManager
from memory.longterm import MemoryService
from memory.records.memories import MemoryRecord
from memory.stores import ChangeFeed

_REDIS_WAIT = 5.0
"""Seconds ``memories generate`` waits for an unreachable Redis before giving up."""

# --- generate -------------------------------------------------------------------------------


class _MemoryProgress:
    """The run reports ``(done, total)``; the bar starts once the total is known."""

    def __init__(self) -> None:
        self.bar: Progress | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = Progress("memories", total)
        self.bar.update(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def generate_command(args: argparse.Namespace) -> int:
    guild_id = snowflake_arg(args.guild, "--guild", "a Discord server id")
    if args.idle_seconds is not None and args.idle_seconds < 0:
        raise CliError("--idle-seconds must be 0 or more", EXIT_CONFIG)
    settings = settings_or_fail()
    if (args.enqueue or args.wait) and settings.store != "redis":
        raise CliError(
            "--enqueue and --wait need ECHO_STORE=redis (memory workers); with JSON files, "
            "'memories generate' makes the memories itself",
            EXIT_CONFIG,
        )
    quiet_logging(settings)
    if args.enqueue or args.wait:
        report = run_store(_enqueue(settings, guild_id, args.idle_seconds, args.wait))
        why = ""
        if report is None:
            return EXIT_OK
    else:
        report, why = run_store(_generate(settings, guild_id, args.idle_seconds))
    print(report.line(), flush=True)
    if why:
        stderr_line(why)
    for thread_id, cause in report.failures:
        print(f"  {thread_id}: {cause}", file=sys.stderr)
    return EXIT_FAILED if report.failed else EXIT_OK


async def _generate(settings: Any, guild_id: str | None, idle_seconds: float | None) -> Any:
    from bot.app import echo_core  # the bot's own wiring: same model, store and index

    # No spool (it records no conversation), and a bounded wait: a command, not a daemon.
    async with echo_core(settings, spool=False, wait_for_redis=_REDIS_WAIT) as core:
        if idle_seconds is not None:
            core.memories.inactivity = idle_seconds
        bar = _MemoryProgress()
        try:
            report = await core.memories.generate(guild_id, progress=bar)
        finally:
            bar.close()
        why = "" if report.eligible else await _why_none_eligible(core.memories, guild_id)
        return report, why


async def _why_none_eligible(memories: MemoryService, guild_id: str | None) -> str:
    """Why a run found nothing: right after a chat, "0 eligible" alone reads as a fault."""
    waiting = await memories.find_eligible(guild_id, inactivity=0)
    if waiting:
        return (
            f"{len(waiting)} conversation(s) will be eligible once idle for "
            f"{_seconds(memories.inactivity)} (ECHO_MEMORY_INACTIVITY_SECONDS); "
            "to include them now: --idle-seconds 0"
        )
    if await memories.store.conversation_infos(guild_id):
        return "every conversation already has an up-to-date memory"
    return "there are no conversations to remember yet"


def _seconds(value: float) -> str:
    text = f"{value:g} s"
    if value >= 3600:
        return f"{text} ({value / 3600:g} h)"
    if value >= 60:
        return f"{text} ({value / 60:g} min)"
    return text


async def _enqueue(
    settings: Any, guild_id: str | None, idle_seconds: float | None, wait: bool
) -> Any:
    """Queue a batch for ``python -m bot worker``; with ``wait``, its report once done."""
    from bot.app import echo_core

    async with echo_core(settings, spool=False, wait_for_redis=_REDIS_WAIT) as core:
        if idle_seconds is not None:
            core.memories.inactivity = idle_seconds
        batch = await core.memories.enqueue(guild_id)
        print(
            f"{len(batch.conversations)} conversation(s) queued for the memory workers "
            f"(batch {batch.batch_id})",
            flush=True,
        )
        if not batch.conversations:
            stderr_line(await _why_none_eligible(core.memories, guild_id))
        if not wait:
            return None
        return await core.memories.queue.wait_for(batch)


# --- list and show -------------------------------------------------------------------------


def list_command(args: argparse.Namespace) -> int:
    guild_id = snowflake_arg(args.guild, "--guild", "a Discord server id")
    settings = settings_or_fail()
    quiet_logging(settings)
    records: list[MemoryRecord] = run_store(_records(settings, guild_id))
    records.sort(key=lambda r: r.conversation_created_at or r.created_at, reverse=True)
    if args.json:
        print(json.dumps([json.loads(r.to_json()) for r in records], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not records:
        print(f"No memories in {store_where(settings)} yet.")
        return EXIT_OK
    for record in records:
        when = (record.conversation_created_at or record.created_at).strftime("%Y-%m-%d")
        summary = terminal_safe(" ".join(record.memory_data.summary.split()), one_line=True)
        summary = summary if len(summary) <= 90 else summary[:89] + "…"
        generator = terminal_safe(record.generator, one_line=True)
        print(
            f"{record.thread_id}  guild {record.guild_id}  {when}  "
            f"{len(record.memory_data.facts)} facts  {generator}  {summary or '-'}"
        )
    return EXIT_OK


async def _records(settings: Settings, guild_id: str | None) -> list[MemoryRecord]:
    async with reading_store(settings) as store:
        return await _memories_in(store, guild_id)


async def _memories_in(store: ConversationStore, guild_id: str | None) -> list[MemoryRecord]:
    """The memories of one guild, or of every guild."""
    guilds = [guild_id] if guild_id else await store.list_guilds()
    found: list[MemoryRecord] = []
    for guild in guilds:
        found += await store.list_memories(guild)
    return found


async def _record_and_names(
    settings: Settings, thread_id: str
) -> tuple[MemoryRecord | None, dict[str, str]]:
    """A conversation's memory, and the names its people wrote under (from the conversation,
    while it is kept: a memory names people by their ids)."""
    async with reading_store(settings) as store:
        records = await _memories_in(store, None)
        record = next((r for r in records if r.thread_id == thread_id), None)
        if record is None:
            return None, {}
        conversation = await store.load(thread_id)
    return record, conversation.author_names() if conversation is not None else {}


def show_command(args: argparse.Namespace) -> int:
    thread_id = snowflake_arg(args.thread_id, "THREAD_ID", "a Discord thread id")
    settings = settings_or_fail()
    quiet_logging(settings)
    record, names = run_store(_record_and_names(settings, thread_id))
    if record is None:
        raise CliError(f"no memory of conversation {thread_id} in {store_where(settings)}")
    if args.json:
        print(record.to_json())
        return EXIT_OK
    data = record.memory_data
    safe = terminal_safe  # what people said, and what the model made of it

    def who(user_id: str) -> str:
        return f"{names[user_id]} ({user_id})" if user_id in names else user_id

    print(f"Memory of conversation {record.thread_id} (guild {record.guild_id})")
    started = record.conversation_created_at
    print(f"  started:    {started:%Y-%m-%d %H:%M} UTC" if started else "  started:    ?")
    print(f"  made:       {record.updated_at:%Y-%m-%d %H:%M} UTC by {safe(record.generator)}")
    print(f"  people:     {safe(', '.join(map(who, record.participants)))}")
    # An extractive summary is a sentence a line: each under the first.
    summary = "\n              ".join(safe(line) for line in data.summary.splitlines())
    print(f"  summary:    {summary or '-'}")
    print(f"  topics:     {safe(', '.join(data.topics)) or '-'}")
    for title, items in (
        (
            "facts",
            [
                f"{f.text}" + (f"  (about {names.get(f.about, f.about)})" if f.about else "")
                for f in data.facts
            ],
        ),
        ("decisions", data.decisions),
        ("action items", data.action_items),
        ("open questions", data.open_questions),
    ):
        if items:
            print(f"  {title}:")
            for item in items:
                print(f"    - {safe(item)}")
    return EXIT_OK


# --- search ---------------------------------------------------------------------------------


STOPWORDS_ONLY = (
    "only common words (stopwords such as 'the', 'and', 'what'), which search skips: "
    "add a more specific word"
)


def search_command(args: argparse.Namespace) -> int:
    guild_id = snowflake_arg(args.guild, "--guild", "a Discord server id")
    if not 1 <= args.limit <= 100:
        raise CliError("--limit must be between 1 and 100", EXIT_CONFIG)
    settings = settings_or_fail()
    quiet_logging(settings)
    if args.query == "-":
        # A line ends at "\n" or "\r\n" (a file saved on Windows): the query is what is before.
        queries: Any = (line.removesuffix("\n").removesuffix("\r") for line in sys.stdin)
    else:
        queries = [args.query]
    run_store(_search(settings, guild_id, queries, args.limit, args.json))
    return EXIT_OK


async def _search(
    settings: Settings, guild_id: str, queries: Any, limit: int, as_json: bool
) -> None:
    from memory.recall import RecallIndex
    from memory.recall.query import query_terms
    from memory.recall.semantic import make_searcher

    index = RecallIndex.in_data_dir(settings.data_dir)
    searcher = make_searcher(settings.recall_reranker, index)
    await asyncio.to_thread(index.open)
    try:
        async with reading_store(settings) as store:
            await _catch_up(index, store, guild_id)
        if not await asyncio.to_thread(index.count, guild_id):
            # A mistyped server id or data folder would otherwise read as "no match" only.
            print(
                f"echo: no conversations of server {guild_id} in {store_where(settings)}",
                file=sys.stderr,
                flush=True,
            )
        for query in queries:
            hits = await asyncio.to_thread(searcher.search, guild_id, query, limit)
            # A query of common words only matches nothing by design: say so, not "no match".
            unsearchable = bool(query.strip()) and not query_terms(query)
            if as_json:
                line: dict[str, Any] = {"query": query, "results": [h.to_dict() for h in hits]}
                if unsearchable:
                    line["note"] = STOPWORDS_ONLY
                print(json.dumps(line, ensure_ascii=False), flush=True)
                continue
            shown = terminal_safe(query, one_line=True)
            print(f"{shown}:" if query else "(empty query):")
            if unsearchable:
                print(f"  {STOPWORDS_ONLY}")
            elif not hits:
                print("  no match")
            for rank, hit in enumerate(hits, start=1):
                when = (hit.created_at or "")[:10]
                text = terminal_safe(" ".join((hit.summary or hit.snippet).split()), one_line=True)
                text = text if len(text) <= 100 else text[:99] + "…"
                print(f"  {rank}. {hit.thread_id}  {when}  score {hit.score:.2f}  {text}")
            sys.stdout.flush()
    finally:
        await asyncio.to_thread(index.close)


async def _catch_up(index: Any, store: ConversationStore, guild_id: str) -> None:
    """The index is a local cache of the store: bring this guild's part up to date.

    JSON files: compare the conversations' versions with the index (``sync``); the files
    change only through processes on this machine, which index the memories they make.
    A shared store (Redis) says which threads changed since the generation last caught up
    with (``changes_since``), memories included: a memory a worker elsewhere made for an
    unchanged conversation has no newer version for ``sync`` to notice. So there, the recall
    service does it, as the bot does before each search.
    """
    from memory.recall import RecallService, sync

    if not isinstance(store, ChangeFeed):
        await sync(index, store, guild_id)
        return
    # Only .store of the manager is used: it is never started, and nothing is recorded.
    await RecallService(index, InMemoryConversationManager(store=store)).refresh(guild_id)
