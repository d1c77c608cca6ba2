"""The conversation file format: a conversation to file bytes and back.

Every backend that keeps whole conversations as JSON (the JSON store's files, exports, the
CLI's ``show`` and ``export``) uses these two, so a file written by one is read by all.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from memory.records.models import MESSAGE_SEPARATOR, Conversation, Message

__all__ = ["parse", "render", "render_chunks"]

# Serialise and validate long histories in slices, yielding to the event loop in between,
# so that saving or loading a 10,000-message conversation never stalls other work. A slice
# also ends at _SLICE_BYTES of JSON, for histories of long messages (tool results).
_SLICE = 256
_SLICE_BYTES = 256 * 1024
_SEPARATOR = MESSAGE_SEPARATOR.encode()
# ... and files up to this size are validated in one call (see ``parse``).
_WHOLE_FILE_BYTES = 128 * 1024


async def render(conversation: Conversation) -> bytes:
    """The file bytes of a conversation, serialised a slice at a time."""
    return b"".join(await render_chunks(conversation))


async def render_chunks(conversation: Conversation) -> list[bytes]:
    """The file bytes of a conversation as pieces to write one after another.

    The history is serialised a slice at a time, yielding to the event loop in between. The
    pieces are never joined here: joining and encoding a long history in one go would hold the
    event loop; the store writes and hashes the pieces in a worker thread instead.

    What is rendered is the conversation as it was when this was called, even if it changes
    while the slices are serialised: messages are immutable (an edit replaces the list item),
    so a copy of the history list and the header taken together, before the first yield, is a
    consistent snapshot.
    """
    history = list(conversation.history)
    opening, closing = conversation.file_frame(empty=not history)
    chunks = [opening.encode()]
    separator = _SEPARATOR
    pending: list[bytes] = []
    size = 0
    for message in history:
        data = message.to_json_bytes()
        pending.append(data)
        size += len(data)
        if len(pending) >= _SLICE or size >= _SLICE_BYTES:
            if len(chunks) > 1:
                chunks.append(separator)
            chunks.append(separator.join(pending))
            pending = []
            size = 0
            await asyncio.sleep(0)
    if pending:
        if len(chunks) > 1:
            chunks.append(separator)
        chunks.append(separator.join(pending))
    chunks.append(closing.encode())
    return chunks


async def parse(data: bytes) -> Conversation:
    """A conversation from file bytes, validated a slice at a time. ``ValueError`` if invalid.

    A file of at most ``_WHOLE_FILE_BYTES`` is validated in one call, straight from its JSON:
    it takes about a millisecond, and pydantic then shares the repeated short strings (the
    ids, names) of its messages instead of making one each.
    """
    if len(data) <= _WHOLE_FILE_BYTES:
        return Conversation.model_validate_json(data)
    raw: Any = json.loads(data)
    if not isinstance(raw, dict):
        raise ValueError("the file is not a JSON object")
    history = raw.pop("history", [])
    if not isinstance(history, list):
        raise ValueError("'history' is not a list")
    conversation = Conversation.model_validate(raw)
    messages: list[Message] = []
    for start in range(0, len(history), _SLICE):
        messages.extend(Message.from_dict(m) for m in history[start : start + _SLICE])
        if start + _SLICE < len(history):
            await asyncio.sleep(0)
    conversation.restore_history(messages)
    return conversation
