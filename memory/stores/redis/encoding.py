"""Conversations and memories to and from what Redis holds: header hashes, message lists.

A header is a hash with one field per header key, each value as JSON; fields whose name starts
with ``_`` are the store's own (``_updated_us``, the spool's markers) and never reach the
model. The history is a list of messages (JSON), the participants a list of their own.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

from memory.errors import first_line
from memory.records.memories import MemoryRecord
from memory.records.models import Conversation, Message

log = logging.getLogger(__name__)

__all__ = [
    "PIPELINE_CHUNK",
    "SEQ_WIDTH",
    "build",
    "header",
    "header_fields",
    "memory_record",
    "micros",
    "pairs",
    "put_args",
    "rewrite_args",
    "score",
    "version",
]

# Messages parsed between two yields to the event loop, so a long history never stalls it.
_SLICE = 256
# Commands per pipeline when a listing reads many keys.
PIPELINE_CHUNK = 1000
# Digits of a zero-padded number that Lua compares as a string.
SEQ_WIDTH = 20


def header_fields(conversation: Conversation) -> dict[str, str]:
    """The hash fields of a header: each value as JSON; participants live in their own list."""
    fields = {
        key: json.dumps(value, ensure_ascii=False)
        for key, value in conversation.header().items()
        if key != "participants"
    }
    fields["_updated_us"] = micros(conversation.updated_at)
    return fields


def header(raw: dict[bytes, bytes], people: list[bytes]) -> dict[str, Any]:
    """The header keys of a conversation from its hash and participants."""
    result: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.decode()
        if not name.startswith("_"):
            result[name] = json.loads(value)
    result["participants"] = [p.decode() for p in people]
    return result


async def build(raw: dict[bytes, bytes], items: list[bytes], people: list[bytes]) -> Conversation:
    """A conversation from its hash, history and participants; ``ValueError`` if invalid."""
    conversation = Conversation.model_validate(header(raw, people))
    messages: list[Message] = []
    for start in range(0, len(items), _SLICE):
        messages.extend(Message.from_json(m) for m in items[start : start + _SLICE])
        if start + _SLICE < len(items):
            await asyncio.sleep(0)
    conversation.restore_history(messages)
    return conversation


def pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    """A hash from a script's reply (field, value, field, value...)."""
    return dict(zip(flat[0::2], flat[1::2], strict=True))


def version(raw: dict[bytes, bytes]) -> str:
    """The version of a conversation as read ('' for one written before versions existed)."""
    value = raw.get(b"_v")
    return "" if value is None else value.decode()


def _flat(fields: dict[str, str]) -> list[str]:
    return [part for item in fields.items() for part in item]


def put_args(conversation: Conversation) -> list[Any]:
    """The arguments of the ``PUT`` script that writes ``conversation`` anew."""
    fields = header_fields(conversation)
    people = list(conversation.participants)
    ids = [m.message_id for m in conversation.history if m.message_id]
    return [
        conversation.thread_id,
        score(conversation.created_at),
        len(fields),
        *_flat(fields),
        len(people),
        *people,
        len(ids),
        *ids,
        *(m.to_json() for m in conversation.history),
    ]


def rewrite_args(
    conversation: Conversation, before: list[Message], items: list[bytes]
) -> list[Any]:
    """The arguments of the ``REWRITE`` script (after its first five) that turn the stored
    conversation, whose history was ``before`` (read as ``items``), into ``conversation``."""
    after = conversation.history
    fields = header_fields(conversation)
    people = list(conversation.participants)
    drop_ended = "" if "ended_at" in conversation.header() else "1"
    head: list[Any] = [drop_ended]
    if len(after) == len(before):
        changed = [
            part
            for index, (old, new) in enumerate(zip(before, after, strict=True))
            if old is not new
            for part in (index, new.to_json())
        ]
        return [*head, "set", len(fields), *_flat(fields), len(people), *people, *changed]
    # Messages went (a delete, a forget): write the list anew, reusing the stored JSON.
    stored = {id(m): items[i] for i, m in enumerate(before)}
    lines = [stored.get(id(m)) or m.to_json().encode() for m in after]
    ids = [m.message_id for m in after if m.message_id]
    return [
        *head,
        "all",
        len(fields),
        *_flat(fields),
        len(people),
        *people,
        len(ids),
        *ids,
        *lines,
    ]


def memory_record(key: str, data: bytes) -> MemoryRecord | None:
    """The memory stored at ``key``; None (logged) if it does not parse."""
    try:
        return MemoryRecord.from_json(data)
    except ValueError as exc:
        log.warning("memory %s in Redis does not parse, left as it is: %s", key, first_line(exc))
        return None


def micros(moment: datetime) -> str:
    """Microseconds since the epoch, zero-padded so that Lua compares them as strings."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    value = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return str(value).zfill(SEQ_WIDTH)


def score(moment: datetime) -> float:
    """A moment as a sorted-set score."""
    return moment.timestamp()
