"""The built-in tools: the time in a time zone, keyword search in this conversation, and the
memories of earlier conversations in this server.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, tzinfo
from functools import lru_cache
from typing import Annotated

from pydantic import Field

from bot.tools.registry import ToolContext, ToolError, ToolRegistry
from memory.records.models import Message, MessageType

__all__ = ["current_time", "default_tools", "recall_memory", "search_conversation"]

_STOPWORD_TEXT = """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just
    me more most my no nor not now of off on once only or other our ours out over own same she
    should so some such than that the their theirs them then there these they this those
    through to too under until up very was we were what when where which while who whom why
    will with would you your yours yourself echo said say says tell told"""
_WORD = re.compile(r"\w+")
_SNIPPET_CHARS = 300
_SEARCHABLE = (MessageType.CHAT, MessageType.TOOL_CALL_RESPONSE)


def _terms(text: str) -> list[str]:
    """Lowercased words, a plural 's' dropped so 'cats' finds 'cat'."""
    words = _WORD.findall(text.lower())
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words]


# Stemmed like the text they are compared with ("this" -> "thi").
_STOPWORDS = frozenset(_terms(_STOPWORD_TEXT))


@lru_cache(maxsize=1)
def _zone_names_by_lowercase() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def _zone(name: str) -> tzinfo:
    cleaned = name.strip()
    if cleaned.upper() in ("UTC", "Z", "GMT", ""):
        return UTC  # works even where the system has no tz database
    try:
        return zoneinfo.ZoneInfo(cleaned)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        pass
    canonical = _zone_names_by_lowercase().get(cleaned.lower().replace(" ", "_"))
    if canonical is not None:
        return zoneinfo.ZoneInfo(canonical)
    raise ToolError(
        f"unknown time zone {name!r}: use an IANA name (Area/City) such as 'UTC', "
        "'Europe/Paris', 'America/New_York' or 'Asia/Tokyo'"
    )


async def current_time(
    context: ToolContext,
    timezone: Annotated[
        str, Field(description="IANA time zone, e.g. 'Europe/Paris' or 'America/New_York'")
    ] = "UTC",
) -> str:
    """The current date, time and weekday in a time zone.

    Models do not know what time it is; this is the only reliable source.
    """
    zone = _zone(timezone)
    now = context.now().astimezone(zone)
    label = "UTC" if zone is UTC else str(zone)
    return f"{now.isoformat(timespec='seconds')} ({now:%A}, {label})"


def _speaker(message: Message) -> str:
    return message.requester or "Echo"


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET_CHARS else flat[: _SNIPPET_CHARS - 1].rstrip() + "…"


async def search_conversation(
    context: ToolContext,
    query: Annotated[str, Field(description="Words to look for in earlier messages")],
    limit: Annotated[int, Field(description="How many messages to return, 1 to 20")] = 5,
) -> str:
    """Search earlier messages of this conversation by keywords; best matches first.

    For messages too old to still be in the context window. The newest human message (the
    question being answered) is left out: the model has it already, and it would always
    match its own keywords.
    """
    limit = max(1, min(20, limit))
    wanted = set(_terms(query))
    meaningful = wanted - _STOPWORDS
    wanted = meaningful or wanted
    if not wanted:
        raise ToolError("the query has no words to search for; give a few keywords")
    history = context.conversation.history
    newest_human = next(
        (i for i in range(len(history) - 1, -1, -1) if history[i].requester is not None), None
    )
    scored: list[tuple[int, int, int, Message]] = []
    for index, message in enumerate(history):
        if message.message_type not in _SEARCHABLE or index == newest_human:
            continue
        terms = _terms(message.message_content)
        distinct = len(wanted.intersection(terms))
        if distinct:
            hits = sum(1 for t in terms if t in wanted)
            scored.append((distinct, hits, index, message))
    if not scored:
        return f"no messages match {query!r}"
    # More distinct query words first, then more occurrences, then the more recent.
    scored.sort(key=lambda s: (s[0], s[1], s[2]), reverse=True)
    lines = [
        f"- [{m.created_at.isoformat(timespec='seconds')}] {_speaker(m)}: "
        f"{_snippet(m.message_content)}"
        for *_, m in scored[:limit]
    ]
    shown = min(limit, len(scored))
    return f"{shown} of {len(scored)} matching messages, best first:\n" + "\n".join(lines)


async def recall_memory(
    context: ToolContext,
    query: Annotated[str, Field(description="what to look for, in a few words")],
    limit: Annotated[int, Field(description="how many conversations, 1-5")] = 3,
) -> str:
    """Search the memories of earlier conversations in this server (not this one): what was
    said, decided or learned, with dates. Use it when someone refers to an earlier talk."""
    if context.recall is None:
        raise ToolError("long-term memory is not available here")
    limit = max(1, min(limit, 5))
    hits = [
        h
        for h in await context.recall(query, limit + 1)
        if h.thread_id != context.conversation.thread_id
    ][:limit]
    if not hits:
        return "No earlier conversation in this server matches."
    lines = []
    for hit in hits:
        when = (hit.created_at or "")[:10] or "date unknown"
        text = hit.summary or hit.snippet or "(no summary yet)"
        lines.append(f"- conversation of {when}: {_snippet(' '.join(text.split()))}")
        if hit.snippet and hit.summary:
            lines.append(f"  matching part: {_snippet(' '.join(hit.snippet.split()))}")
    return "\n".join(lines)


def default_tools() -> ToolRegistry:
    """A fresh registry with the built-ins; the agent may add its own to it."""
    registry = ToolRegistry()
    registry.tool(current_time)
    registry.tool(search_conversation)
    registry.tool(recall_memory)
    return registry
