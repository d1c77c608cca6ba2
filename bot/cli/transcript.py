"""A conversation as a transcript a person reads in a terminal (``conversations show``).

People's messages read like a chat log; Echo's thinking, tool calls and tool results are
set apart (marked, indented, dimmed on a terminal), so nobody mistakes a thought or a
tool's output for something said in the thread.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.cli.common import Style
from bot.cli.safe_text import terminal_safe
from memory import Conversation, Message, MessageType

__all__ = ["ECHO_NAME", "person", "render_transcript", "utc"]

ECHO_NAME = "Echo"
# Long tool results and arguments are cut to this unless --full.
RESULT_LINES = 3
LINE_CHARS = 200
# "[2026-11-20 10:00:01] " is 22 characters: continuation lines start under the speaker.
INDENT = " " * 22


def utc(moment: datetime, seconds: bool = True) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def person(user_id: str, names: dict[str, str]) -> str:
    name = names.get(user_id)
    return f"{terminal_safe(name, one_line=True)} ({user_id})" if name else user_id


def render_transcript(
    conversation: Conversation,
    *,
    location: str,
    full: bool,
    style: Style,
    location_label: str = "file",
) -> str:
    """``location``: where the store keeps it, shown as ``location_label`` (``file`` for a
    JSON file; ``location`` for a Redis key)."""
    names = conversation.author_names()
    lines = _header(conversation, names, (location_label, location), style)
    lines.append("")
    if not conversation.history:
        lines.append(style.dim("(no messages)"))
    for message in conversation.history:
        lines.extend(_message(message, names, full, style))
    return "\n".join(lines) + "\n"


def _header(
    conversation: Conversation, names: dict[str, str], location: tuple[str, str], style: Style
) -> list[str]:
    guild = conversation.guild_id
    if conversation.guild_name:
        guild = f"{conversation.guild_name} ({conversation.guild_id})"
    count = len(conversation.history)
    fields = [
        ("guild", guild),
        ("channel", conversation.channel_id),
        ("requester", person(conversation.requester, names)),
        ("created", utc(conversation.created_at) + " UTC"),
        ("updated", utc(conversation.updated_at) + " UTC"),
        ("participants", ", ".join(person(p, names) for p in conversation.participants)),
        ("messages", f"{count} recorded"),
        ("summary", conversation.summary.strip() or "(none)"),
        (
            "ended",
            utc(conversation.ended_at) + " UTC" if conversation.ended_at is not None else "no",
        ),
        location,
    ]
    lines = [style.bold(f"Conversation {conversation.thread_id}")]
    for label, value in fields:
        first, *rest = terminal_safe(value).splitlines() or [""]
        lines.append(f"  {label + ':':<14}{first}")
        lines.extend(f"  {'':<14}{line}" for line in rest)
    return lines


def _message(message: Message, names: dict[str, str], full: bool, style: Style) -> list[str]:
    stamp = style.dim(f"[{utc(message.created_at)}]")
    kind = message.message_type
    if kind is MessageType.CHAT:
        return _said(message, names, stamp, style)
    if kind is MessageType.THINKING:
        prefix = f"{stamp}   " + style.italic_dim(f"… {ECHO_NAME} is thinking: ")
        return _block(prefix, message.message_content, style.italic_dim)
    if kind is MessageType.TOOL_CALL:
        return _tool_call(message, stamp, full, style)
    name = terminal_safe(message.name or "tool", one_line=True)  # a tool_call_response
    prefix = f"{stamp}   " + style.tool(f"← {name}: ")
    return _block(prefix, _clip(message.message_content, full), style.dim)


def _said(message: Message, names: dict[str, str], stamp: str, style: Style) -> list[str]:
    if message.requester is None:
        speaker = style.echo(ECHO_NAME)
    elif message.requester in names:
        name = terminal_safe(names[message.requester], one_line=True)
        speaker = style.person(name) + style.dim(f" ({message.requester})")
    else:
        speaker = style.person(message.requester)
    extra = _extra(message)
    edited = style.dim(" (edited)") if extra.get("edited_at") else ""
    lines = _block(f"{stamp} {speaker}{edited}: ", message.message_content)
    return lines + _attachments(extra, style)


def _tool_call(message: Message, stamp: str, full: bool, style: Style) -> list[str]:
    lines: list[str] = []
    if message.message_content.strip():  # what the model said before calling
        lines.extend(_block(f"{stamp} {style.echo(ECHO_NAME)}: ", message.message_content))
    for call in message.tools or []:
        arguments = terminal_safe(_clip_line(_arguments(call.params), full))
        called = terminal_safe(call.name, one_line=True)
        lines.append(f"{stamp}   " + style.tool(f"→ tool {called}") + f" {arguments}")
    if not message.tools:
        lines.append(f"{stamp}   " + style.tool("→ tool call (no tools named)"))
    return lines


def _block(prefix: str, text: str, paint: Callable[[str], str] = str) -> list[str]:
    """``prefix`` + the first line; the others indented under the speaker."""
    first, *rest = terminal_safe(text).splitlines() or [""]
    return [prefix + paint(first)] + [INDENT + "  " + paint(line) for line in rest]


def _attachments(extra: dict[str, Any], style: Style) -> list[str]:
    attachments = extra.get("attachments")
    if not isinstance(attachments, list):
        return []
    lines = []
    for item in attachments:
        if not isinstance(item, dict):
            continue
        size = item.get("size")
        shown = f" ({size} bytes)" if isinstance(size, int) else ""
        filename = terminal_safe(str(item.get("filename", "?")), one_line=True)
        lines.append(INDENT + "  " + style.dim(f"[attached: {filename}{shown}]"))
    return lines


def _arguments(params: dict[str, Any]) -> str:
    if set(params) == {"_raw_arguments"}:  # recorded as the model sent it (not JSON)
        return str(params["_raw_arguments"])
    return json.dumps(params, ensure_ascii=False)


def _clip_line(text: str, full: bool) -> str:
    text = " ".join(text.split()) if not full else text
    if full or len(text) <= LINE_CHARS:
        return text
    return text[: LINE_CHARS - 1] + "…"


def _clip(text: str, full: bool) -> str:
    if full:
        return text
    lines = text.splitlines() or [""]
    kept = [line if len(line) <= LINE_CHARS else line[: LINE_CHARS - 1] + "…" for line in lines]
    if len(kept) <= RESULT_LINES:
        return "\n".join(kept)
    more = len(kept) - RESULT_LINES
    return "\n".join([*kept[:RESULT_LINES], f"… ({more} more lines; --full shows them)"])


def _extra(message: Message) -> dict[str, Any]:
    return dict(message.other_meta or {})
