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
    "score",
    "write_back",
]

# Messages parsed between two yields to the event loop, so a long history never stalls it.
_SLICE = 256
# Items per command when a list or set is written at once.
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
        messages.extend(Message.model_validate_json(m) for m in items[start : start + _SLICE])
        if start + _SLICE < len(items):
            await asyncio.sleep(0)
    conversation.restore_history(messages)
    return conversation


def write_back(
    pipe: Any,
    keys: list[str],
    conversation: Conversation,
    before: list[Message],
    items: list[bytes],
) -> None:
    """Queue the writes that turn the stored conversation into ``conversation``."""
    hdr, log_key, ids_key, people_key = keys
    after = conversation.history
    pipe.hset(hdr, mapping=header_fields(conversation))
    if "ended_at" not in conversation.header():
        pipe.hdel(hdr, "ended_at")
    pipe.delete(people_key)
    pipe.rpush(people_key, *conversation.participants)
    if len(after) == len(before):
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            if old is not new:
                pipe.lset(log_key, index, new.to_json())
        return
    # Messages went (a delete, a forget): write the list anew, reusing the stored JSON.
    stored = {id(m): items[i] for i, m in enumerate(before)}
    pipe.delete(log_key)
    lines = [stored.get(id(m)) or m.to_json().encode() for m in after]
    for start in range(0, len(lines), PIPELINE_CHUNK):
        pipe.rpush(log_key, *lines[start : start + PIPELINE_CHUNK])
    pipe.delete(ids_key)
    ids = [m.message_id for m in after if m.message_id]
    if ids:
        pipe.sadd(ids_key, *ids)


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
