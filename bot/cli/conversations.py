"""``python -m bot conversations list|show|export``: the recorded conversations, read-only.

They read the store the settings ask for (``ECHO_STORE``). JSON files are opened with
``read_only=True``: no folder lock, no journal replay, nothing moved or written, so an
operator can look while the bot runs; the files are read here rather than through
``store.load`` so that a file that does not parse is reported with its reason instead of
silently missing. Redis is shared by every process anyway: conversations are loaded through
the store, and ``export`` writes the bytes a JSON file of the conversation would hold.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.cli.common import (
    EXIT_CONFIG,
    EXIT_OK,
    CliError,
    Style,
    quiet_logging,
    reading_store,
    run_store,
    settings_or_fail,
    snowflake_arg,
    store_where,
)
from bot.cli.safe_text import terminal_safe
from bot.cli.transcript import render_transcript, utc
from bot.config import Settings
from memory import Conversation, ConversationRef, ConversationStore
from memory.errors import first_line
from memory.recording.unsaved import JOURNAL, SPOOL, has_segments, unsaved_conversations
from memory.records import parse, render
from memory.stores import FileBacked

__all__ = ["export_command", "list_command", "show_command"]

SUMMARY_HEAD = 40
GUILD_NAME_CHARS = 24
# Conversations loaded at once from a store that is not files (Redis round trips overlap).
LOAD_CONCURRENCY = 16
_THREAD_WHAT = "a Discord thread id"
# What the listing says of a conversation the store does not hold yet, by where it waits.
_WAITING = {
    "journal": "[only in the journal, not saved yet]",
    "spool": "[only in the spool, not in Redis yet]",
}


@dataclass
class Row:
    ref: ConversationRef
    conversation: Conversation | None
    error: str | None = None
    # Where it waits when the store does not hold it yet: "journal" (no file yet) or "spool"
    # (begun while Redis was away); "" once it is in the store.
    unsaved: str = ""

    def sort_key(self) -> tuple[str, str, int]:
        if self.conversation is None:
            return (self.ref.created.isoformat(), "", int(self.ref.thread_id))
        return (
            self.conversation.created_at.isoformat(),
            self.conversation.updated_at.isoformat(),
            int(self.ref.thread_id),
        )

    def as_json(self) -> dict[str, Any]:
        c = self.conversation
        if c is None:
            return {
                "thread_id": self.ref.thread_id,
                "guild_id": self.ref.guild_id,
                "guild_name": None,
                "requester": self.ref.requester,
                "requester_name": None,
                "created_at": None,
                "updated_at": None,
                "messages": None,
                "summary": None,
                "ended_at": None,
                **self._where(),
                "error": self.error,
            }
        return {
            "thread_id": c.thread_id,
            "guild_id": c.guild_id,
            "guild_name": c.guild_name,
            "requester": c.requester,
            "requester_name": c.author_names().get(c.requester),
            "created_at": c.model_dump(mode="json")["created_at"],
            "updated_at": c.model_dump(mode="json")["updated_at"],
            "messages": len(c.history),
            "summary": c.summary,
            "ended_at": c.header().get("ended_at"),
            **self._where(),
        }

    def _where(self) -> dict[str, str | None]:
        """``location``: where the store keeps it, whatever the store: the file's path, or
        ``redis <key>``. One field, so a script never has to choose between two."""
        return {"location": self.ref.location}


# --- reading ------------------------------------------------------------------------------


async def _read_file(ref: ConversationRef) -> Row:
    try:
        data = await asyncio.to_thread(Path(ref.location).read_bytes)
    except OSError as exc:
        return Row(ref, None, f"cannot read {ref.location}: {exc.strerror or exc}")
    try:
        return Row(ref, await parse(data))
    except ValueError as exc:
        return Row(ref, None, f"{ref.location} does not parse: {first_line(exc)}")


async def _load(store: ConversationStore, ref: ConversationRef) -> Row | None:
    """A conversation of a store that keeps no files; None if it was deleted meanwhile."""
    conversation = await store.load(ref.thread_id)
    if conversation is not None:
        return Row(ref, conversation)
    if not await store.exists(ref.thread_id):
        return None
    # The store logged why (once, as an error): the row says that it is unreadable.
    return Row(ref, None, f"{ref.location} does not parse")


async def _rows(settings: Settings, guild_id: str | None) -> list[Row]:
    async with reading_store(settings) as store:
        refs = await store.list_conversations(guild_id)
        if isinstance(store, FileBacked):
            rows: list[Row | None] = [await _read_file(ref) for ref in refs]
            rows += await _journal_only(settings, store, guild_id)
        else:
            slots = asyncio.Semaphore(LOAD_CONCURRENCY)

            async def load(ref: ConversationRef) -> Row | None:
                async with slots:
                    return await _load(store, ref)

            rows = list(await asyncio.gather(*(load(ref) for ref in refs)))
            rows += await _journal_only(settings, store, guild_id)
    return sorted((row for row in rows if row is not None), key=Row.sort_key, reverse=True)


async def _journal_only(
    settings: Settings, store: ConversationStore, guild_id: str | None
) -> list[Row | None]:
    """Conversations a running bot has not saved yet, or a crashed one left in its journal
    (with Redis: its spool, begun while Redis was away): listed too, so that a broken run
    never reads as an empty folder."""
    files = isinstance(store, FileBacked)
    journal = store.journal_dir if isinstance(store, FileBacked) else settings.data_dir / SPOOL
    if not await asyncio.to_thread(has_segments, journal):
        return []  # the usual case on Redis: no listing of every guild for nothing
    saved = {ref.thread_id for ref in await store.list_conversations()}
    found = await asyncio.to_thread(unsaved_conversations, journal, saved)
    where = str(journal)
    return [
        Row(
            ConversationRef(c.thread_id, c.guild_id, c.requester, c.created_at.date(), where),
            c,
            unsaved="journal" if files else "spool",
        )
        for c in found
        if guild_id is None or c.guild_id == guild_id
    ]


async def _one(settings: Settings, thread_id: str) -> tuple[ConversationRef, bytes, Conversation]:
    """The conversation of this thread, where it is, and its file bytes (on a store without
    files: the bytes its JSON file would hold)."""
    async with reading_store(settings) as store:
        if not await store.exists(thread_id):
            # Listed as not saved yet: shown and exported as its records leave it.
            found = await _journal_only(settings, store, None)
            row = next((r for r in found if r is not None and r.ref.thread_id == thread_id), None)
            if row is not None and row.conversation is not None:
                return row.ref, await render(row.conversation), row.conversation
        if isinstance(store, FileBacked):
            refs = {ref.thread_id: ref for ref in await store.list_conversations()}
            return await _one_file(settings, refs.get(thread_id), thread_id)
        conversation = await store.load(thread_id)
        if conversation is None:
            if await store.exists(thread_id):
                raise CliError(
                    f"conversation {thread_id} in {store_where(settings)} does not parse"
                )
            raise CliError(f"no conversation {thread_id} in {store_where(settings)}")
        refs = {r.thread_id: r for r in await store.list_conversations(conversation.guild_id)}
    ref = refs.get(thread_id)
    if ref is None:  # deleted between the two reads
        raise CliError(f"no conversation {thread_id} in {store_where(settings)}")
    return ref, await render(conversation), conversation


async def _one_file(
    settings: Settings, ref: ConversationRef | None, thread_id: str
) -> tuple[ConversationRef, bytes, Conversation]:
    if ref is None:
        raise CliError(f"no conversation {thread_id} in {store_where(settings)}")
    try:
        data = await asyncio.to_thread(Path(ref.location).read_bytes)
    except FileNotFoundError:
        raise CliError(f"no conversation {thread_id} in {store_where(settings)}") from None
    except OSError as exc:
        raise CliError(f"cannot read {ref.location}: {exc.strerror or exc}") from None
    try:
        conversation = await parse(data)
    except ValueError as exc:
        raise CliError(
            f"the file of conversation {thread_id} does not parse ({ref.location}): "
            f"{first_line(exc)}"
        ) from None
    return ref, data, conversation


# --- list ---------------------------------------------------------------------------------


def list_command(args: argparse.Namespace) -> int:
    guild_id = snowflake_arg(args.guild, "--guild", "a Discord server id")
    settings = settings_or_fail()
    quiet_logging(settings)
    rows: list[Row] = run_store(_rows(settings, guild_id))
    if args.json:
        print(json.dumps([row.as_json() for row in rows], indent=2, ensure_ascii=False))
        return EXIT_OK
    where = store_where(settings)
    if not rows:
        if guild_id is None:
            print(f"No conversations in {where} yet.")
        else:
            print(f"No conversations of guild {guild_id} in {where}.")
        return EXIT_OK
    print(_table(rows, Style.for_stream(sys.stdout)), end="")
    return EXIT_OK


def _table(rows: list[Row], style: Style) -> str:
    header = ["THREAD", "GUILD", "REQUESTER", "CREATED (UTC)", "UPDATED (UTC)", "MSGS", "SUMMARY"]
    # Names and summaries are anyone's text: no control character reaches the terminal.
    cells = [[terminal_safe(value, one_line=True) for value in _cells(row)] for row in rows]
    widths = [max(len(header[i]), *(len(c[i]) for c in cells)) for i in range(len(header) - 1)]
    right = {5}  # the message count

    def line(values: list[str]) -> str:
        parts = [
            values[i].rjust(widths[i]) if i in right else values[i].ljust(widths[i])
            for i in range(len(widths))
        ]
        return "  ".join([*parts, values[-1]]).rstrip()

    out = [style.bold(line(header))]
    out.extend(line(c) for c in cells)
    return "\n".join(out) + "\n"


def _cells(row: Row) -> list[str]:
    c = row.conversation
    if c is None:
        return [
            row.ref.thread_id,
            row.ref.guild_id,
            row.ref.requester,
            row.ref.created.isoformat(),
            "?",
            "?",
            f"(unreadable: {row.error})",
        ]
    guild = c.guild_id
    if c.guild_name:
        guild = f"{_cut(c.guild_name, GUILD_NAME_CHARS)} ({c.guild_id})"
    requester = c.requester
    name = c.author_names().get(c.requester)
    if name:
        requester = f"{_cut(name, 16)} ({c.requester})"
    summary = _cut(" ".join(c.summary.split()), SUMMARY_HEAD) or "-"
    if c.ended:
        summary = f"[ended] {summary}"
    if row.unsaved:
        summary = f"{_WAITING[row.unsaved]} {summary}"
    return [
        c.thread_id,
        guild,
        requester,
        utc(c.created_at, seconds=False),
        utc(c.updated_at, seconds=False),
        str(len(c.history)),
        summary,
    ]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --- show ---------------------------------------------------------------------------------


def show_command(args: argparse.Namespace) -> int:
    thread_id = snowflake_arg(args.thread_id, "THREAD_ID", _THREAD_WHAT)
    assert thread_id is not None
    settings = settings_or_fail()
    quiet_logging(settings)
    ref, _, conversation = run_store(_one(settings, thread_id))
    label, location = _where_shown(settings, ref)
    text = render_transcript(
        conversation,
        location=location,
        location_label=label,
        full=args.full,
        style=Style.for_stream(sys.stdout),
    )
    sys.stdout.write(text)
    sys.stdout.flush()
    return EXIT_OK


def _where_shown(settings: Settings, ref: ConversationRef) -> tuple[str, str]:
    """The transcript's location line: its label, and what it says."""
    if ref.location == str(settings.data_dir / JOURNAL):
        return "journal", f"{ref.location} (not saved to a file yet)"
    if ref.location == str(settings.data_dir / SPOOL):
        return "spool", f"{ref.location} (not in Redis yet)"
    return ("file" if settings.store == "json" else "location"), ref.location


# --- export -------------------------------------------------------------------------------


def export_command(args: argparse.Namespace) -> int:
    thread_id = snowflake_arg(args.thread_id, "THREAD_ID", _THREAD_WHAT)
    assert thread_id is not None
    output = args.output
    if output not in (None, "-"):
        target = Path(output)
        if target.is_dir():
            raise CliError(f"{output} is a folder: give a file name", EXIT_CONFIG)
        if target.exists() and not args.force:
            raise CliError(f"{output} exists: add --force to overwrite it", EXIT_CONFIG)
    settings = settings_or_fail()
    quiet_logging(settings)
    _, data, conversation = run_store(_one(settings, thread_id))
    if output in (None, "-"):
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return EXIT_OK
    try:
        with open(output, "wb" if args.force else "xb") as handle:
            handle.write(data)
    except FileExistsError:
        raise CliError(f"{output} exists: add --force to overwrite it", EXIT_CONFIG) from None
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    count = len(conversation.history)
    print(f"Exported conversation {thread_id} ({count} messages) to {output}")
    return EXIT_OK
