"""Reading Redis Stream replies, whichever protocol (RESP2 or RESP3) and decoding the client
uses, and a cancellation redis-py may have swallowed in a blocking read."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["entries", "field", "still_running", "text"]


def still_running() -> None:
    """Raise the cancellation redis-py may have swallowed.

    A cancellation that lands while redis-py reads the answer of a blocking command (XREAD,
    XREADGROUP) can be caught inside it and lost (redis/redis-py#2028): the command returns
    as if nothing happened, and a worker told to stop would wait for work forever. The task
    still counts the request (``cancelling()``), so honour it here.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def text(value: Any) -> str:
    """A reply value as text, whether the client decodes responses or not."""
    return value.decode() if isinstance(value, bytes) else str(value)


def field(fields: Any, name: str) -> Any:
    """A field of a stream entry, whether the client decodes responses or not."""
    if not isinstance(fields, dict):
        return None
    value = fields.get(name)
    return fields.get(name.encode()) if value is None else value


def entries(reply: Any) -> list[tuple[str, Any]]:
    """The (id, fields) of an XREAD/XREADGROUP reply, in RESP2 (a list) or RESP3 (a dict)."""
    if not reply:
        return []
    streams = reply.items() if isinstance(reply, dict) else reply
    found: list[tuple[str, Any]] = []
    for _, stream_entries in streams:
        if (
            stream_entries
            and isinstance(stream_entries[0], list | tuple)
            and len(stream_entries[0]) == 1
        ):
            stream_entries = stream_entries[0]  # RESP3 wraps a stream's entries once more
        for entry_id, fields in stream_entries:
            found.append((text(entry_id), fields))
    return found
