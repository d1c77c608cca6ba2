"""Conversation records: the JSON shapes of DESIGN.md as pydantic v2 models (the message's
in ``memory.records.message``).

Their ids and times are the field types of ``memory.records.fields``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from memory.records.fields import (
    Snowflake,
    Timestamp,
    iso,
    to_utc,
    utcnow,
    validate_snowflake,
)
from memory.records.message import Message, MessageMeta, MessageType, ToolCall

# Snowflake, Timestamp, utcnow, validate_snowflake: named from here across the tree.
__all__ = [
    "MESSAGE_SEPARATOR",
    "Conversation",
    "Message",
    "MessageMeta",
    "MessageType",
    "Snowflake",
    "Timestamp",
    "ToolCall",
    "utcnow",
    "validate_snowflake",
]


# Between two message lines of a conversation file (see Conversation.render).
MESSAGE_SEPARATOR = ",\n    "


class Conversation(BaseModel):
    """One Discord thread's conversation with Echo, in the per-guild file format."""

    # Unknown top-level keys (a newer Echo's file) are kept and written back unchanged.
    # Assignment is not validated: fields change only through the methods below, which take
    # already-validated values (Timestamps, _to_utc), and one of them runs for every message
    # recorded, where validating again would be most of its cost.
    model_config = ConfigDict(extra="allow")

    thread_id: Snowflake
    channel_id: Snowflake
    created_at: Timestamp = Field(default_factory=utcnow)
    updated_at: Timestamp = Field(default_factory=utcnow)
    summary: str = ""
    guild_id: Snowflake
    guild_name: str = ""
    requester: Snowflake
    participants: list[Snowflake] = Field(default_factory=list)
    # Set once the conversation was ended (/end); absent from the JSON until then.
    ended_at: Timestamp | None = None
    history: list[Message] = Field(default_factory=list)

    # The Discord ids in ``history``, for dedupe; derived, so never written or read back. A
    # field rather than a PrivateAttr: it is read for every message recorded, and a private
    # attribute is reached through pydantic's ``__getattr__``, after a failed lookup.
    message_ids: set[str] = Field(default_factory=set, exclude=True, repr=False)

    def model_post_init(self, __context: Any) -> None:
        if self.requester not in self.participants:
            self.participants.insert(0, self.requester)
        self._index_ids(self.history)

    # --- identity -------------------------------------------------------------------------

    @property
    def filename(self) -> str:
        """``<yyyy-mm-dd>_conversation-with-<requester>-in-<guild>_<thread>.json`` (UTC date)."""
        day = self.created_at.astimezone(UTC).strftime("%Y-%m-%d")
        return f"{day}_conversation-with-{self.requester}-in-{self.guild_id}_{self.thread_id}.json"

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def restore_history(self, messages: list[Message]) -> None:
        """Put already-validated stored messages back (loaders use it; no dedupe, no clock)."""
        self.history.extend(messages)
        self.message_ids.update(m.message_id for m in messages if m.message_id is not None)

    def author_names(self) -> dict[str, str]:
        """The latest display name each person wrote under in this conversation."""
        return {m.requester: m.author_name for m in self.history if m.requester and m.author_name}

    def has_message_id(self, message_id: str) -> bool:
        return message_id in self.message_ids

    # --- mutations (the journal replays exactly these) -------------------------------------

    def add_message(self, message: Message) -> bool:
        """Append ``message``; False (and no change) if its Discord message id is recorded."""
        message_id = message.message_id
        if message_id is not None:
            ids = self.message_ids
            if message_id in ids:
                return False
            ids.add(message_id)
        self.history.append(message)
        # max(): replaying an old message, or importing history, never moves time backwards.
        if message.created_at > self.updated_at:
            self.updated_at = message.created_at
        requester = message.requester
        if requester is not None and requester not in self.participants:
            self.participants.append(requester)
        return True

    def edit_message(self, message_id: str, content: str, edited_at: datetime) -> bool:
        """Replace the content of the message with this Discord id; False if there is none."""
        index = self._index_of(message_id)
        if index is None:
            return False
        edited_at = to_utc(edited_at)
        old = self.history[index]
        self.history[index] = Message.from_dict(
            {
                "created_at": old.created_at,
                "message_type": old.message_type,
                "message_content": content,
                "meta": {**old.meta, "edited_at": iso(edited_at)},
            }
        )
        self._touch(edited_at)
        return True

    def delete_message(self, message_id: str, deleted_at: datetime) -> bool:
        """Remove the message with this Discord id; False if there is none."""
        index = self._index_of(message_id)
        if index is None:
            return False
        del self.history[index]
        self.message_ids.discard(message_id)
        self._touch(to_utc(deleted_at))
        return True

    def set_summary(self, summary: str, at: datetime) -> None:
        if not isinstance(summary, str):
            raise TypeError(f"a summary is text, got {type(summary).__name__}")
        self.summary = summary
        self._touch(to_utc(at))

    def end(self, at: datetime) -> None:
        if self.ended_at is None:
            self.ended_at = to_utc(at)
            self._touch(self.ended_at)

    def forget_person(self, user_id: str, at: datetime) -> int:
        """Remove a person from this conversation; returns how many records went.

        Their messages go, and so do Echo's records answering them (``meta.reply_to``), which
        are made from their words; so do they from the participants, and the summary, which
        may quote them. What others said stays.
        """
        theirs = {m.message_id for m in self.history if m.requester == user_id and m.message_id}
        kept = [
            m
            for m in self.history
            if m.requester != user_id and not (m.requester is None and m.reply_to in theirs)
        ]
        removed = len(self.history) - len(kept)
        if not removed and user_id not in self.participants:
            return 0
        self.history[:] = kept
        self._index_ids(kept)
        self.participants[:] = [p for p in self.participants if p != user_id]
        self.summary = ""
        self._touch(to_utc(at))
        return removed

    def reopen(self, at: datetime) -> None:
        if self.ended_at is not None:
            self.ended_at = None
            self._touch(to_utc(at))

    def _touch(self, at: datetime) -> None:
        if at > self.updated_at:
            self.updated_at = at

    def _index_ids(self, messages: list[Message]) -> None:
        # In place: the set is not reassigned, so it never counts as a field given.
        ids = self.message_ids
        ids.clear()
        ids.update(m.message_id for m in messages if m.message_id is not None)

    def _index_of(self, message_id: str) -> int | None:
        if message_id not in self.message_ids:
            return None
        # Edits and deletes are rare and target recent messages: search from the end.
        for index in range(len(self.history) - 1, -1, -1):
            if self.history[index].message_id == message_id:
                return index
        return None

    # --- JSON -------------------------------------------------------------------------------

    def header(self) -> dict[str, Any]:
        """Everything but the history, as JSON-ready values."""
        return self.model_dump(mode="json", exclude={"history"}, exclude_none=True)

    def to_json(self) -> str:
        """The file form: a readable header and one message per line."""
        return self.render(m.to_json() for m in self.history)

    def render(self, message_lines: Iterable[str]) -> str:
        """The file form from already-serialised messages (lets callers serialise in chunks)."""
        lines = MESSAGE_SEPARATOR.join(message_lines)
        opening, closing = self.file_frame(empty=not lines)
        return f"{opening}{lines}{closing}"

    def file_frame(self, *, empty: bool) -> tuple[str, str]:
        """What the file form has before its first message line and after its last one.

        ``opening + MESSAGE_SEPARATOR.join(lines) + closing`` is ``render(lines)``: a writer
        can then keep the lines as separate pieces instead of one string of the whole file.
        """
        head = json.dumps(self.header(), indent=2, ensure_ascii=False)
        if empty:
            return f'{head[:-2]},\n  "history": []\n}}\n', ""
        return f'{head[:-2]},\n  "history": [\n    ', "\n  ]\n}\n"

    @classmethod
    def from_json(cls, data: str | bytes) -> Conversation:
        return cls.model_validate_json(data)
