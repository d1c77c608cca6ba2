"""Every change to a conversation, as a value that can be journaled and replayed.

The manager applies a mutation with the same ``apply`` that journal replay uses, so a
conversation rebuilt after a crash is the one that was in memory, by construction. Before
that it asks ``changes``: whether applying it would change anything, so that no-ops are
not journaled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from memory.records.models import Conversation, Message, utcnow, validate_snowflake

__all__ = [
    "Append",
    "Create",
    "Delete",
    "Edit",
    "End",
    "ForgetPerson",
    "Mutation",
    "MutationError",
    "Purge",
    "Reopen",
    "SetSummary",
    "decode",
]


_APPEND_HEAD = b'{"op":"append","thread_id":"'
_APPEND_MID = b'","message":'


class MutationError(ValueError):
    """A journal record that cannot be read back as a mutation."""


@dataclass(frozen=True, slots=True)
class Create:
    """A new conversation; carries everything but the (empty) history."""

    conversation: Conversation
    op = "create"

    @property
    def thread_id(self) -> str:
        return self.conversation.thread_id

    def payload(self) -> dict[str, Any]:
        return {"conversation": self.conversation.header()}

    def apply(self, conversation: Conversation | None) -> Conversation:
        # A copy: the journal's account must not share lists with the live object.
        return Conversation.model_validate(self.conversation.header())

    def changes(self, conversation: Conversation) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Append:
    thread_id: str
    message: Message
    op = "append"

    def encode(self) -> bytes:
        # Hot path: the message is serialised once, by pydantic, and spliced in as bytes.
        body = self.message.to_json_bytes()
        return b"".join((_APPEND_HEAD, self.thread_id.encode(), _APPEND_MID, body, b"}\n"))

    def payload(self) -> dict[str, Any]:
        return {"message": json.loads(self.message.to_json())}

    def apply(self, conversation: Conversation | None) -> Conversation:
        _require(conversation, self).add_message(self.message)
        return conversation  # type: ignore[return-value]

    def changes(self, conversation: Conversation) -> bool:
        message_id = self.message.message_id
        return message_id is None or not conversation.has_message_id(message_id)


@dataclass(frozen=True, slots=True)
class Edit:
    thread_id: str
    message_id: str
    content: str
    at: datetime = field(default_factory=utcnow)
    op = "edit"

    def payload(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "content": self.content, "at": self.at.isoformat()}

    def apply(self, conversation: Conversation | None) -> Conversation:
        _require(conversation, self).edit_message(self.message_id, self.content, self.at)
        return conversation  # type: ignore[return-value]

    def changes(self, conversation: Conversation) -> bool:
        return conversation.has_message_id(self.message_id)


@dataclass(frozen=True, slots=True)
class Delete:
    thread_id: str
    message_id: str
    at: datetime = field(default_factory=utcnow)
    op = "delete"

    def payload(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "at": self.at.isoformat()}

    def apply(self, conversation: Conversation | None) -> Conversation:
        _require(conversation, self).delete_message(self.message_id, self.at)
        return conversation  # type: ignore[return-value]

    def changes(self, conversation: Conversation) -> bool:
        return conversation.has_message_id(self.message_id)


@dataclass(frozen=True, slots=True)
class SetSummary:
    thread_id: str
    summary: str
    at: datetime = field(default_factory=utcnow)
    op = "summary"

    def payload(self) -> dict[str, Any]:
        return {"summary": self.summary, "at": self.at.isoformat()}

    def apply(self, conversation: Conversation | None) -> Conversation:
        _require(conversation, self).set_summary(self.summary, self.at)
        return conversation  # type: ignore[return-value]

    def changes(self, conversation: Conversation) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class End:
    thread_id: str
    at: datetime = field(default_factory=utcnow)
    op = "end"

    def payload(self) -> dict[str, Any]:
        return {"at": self.at.isoformat()}

    def apply(self, conversation: Conversation | None) -> Conversation:
        _require(conversation, self).end(self.at)
        return conversation  # type: ignore[return-value]

    def changes(self, conversation: Conversation) -> bool:
        return not conversation.ended


@dataclass(frozen=True, slots=True)
class Reopen:
    """An ended conversation is taken up again (a new mention after /end)."""

    thread_id: str
    at: datetime = field(default_factory=utcnow)
    op = "reopen"

    def payload(self) -> dict[str, Any]:
        return {"at": self.at.isoformat()}

    def apply(self, conversation: Conversation | None) -> Conversation:
        _require(conversation, self).reopen(self.at)
        return conversation  # type: ignore[return-value]

    def changes(self, conversation: Conversation) -> bool:
        return conversation.ended


@dataclass(frozen=True, slots=True)
class ForgetPerson:
    """A person asked to be forgotten: their part of this conversation goes."""

    thread_id: str
    user_id: str
    at: datetime = field(default_factory=utcnow)
    op = "forget"

    def payload(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "at": self.at.isoformat()}

    def apply(self, conversation: Conversation | None) -> Conversation:
        _require(conversation, self).forget_person(self.user_id, self.at)
        return conversation  # type: ignore[return-value]

    def changes(self, conversation: Conversation) -> bool:
        return self.user_id in conversation.participants or any(
            m.requester == self.user_id for m in conversation.history
        )


@dataclass(frozen=True, slots=True)
class Purge:
    """The conversation was deleted (forgotten): nothing before this record may come back."""

    thread_id: str
    op = "purge"

    def payload(self) -> dict[str, Any]:
        return {}

    def apply(self, conversation: Conversation | None) -> None:  # type: ignore[override]
        return None

    def changes(self, conversation: Conversation) -> bool:
        return True


Mutation = Create | Append | Edit | Delete | SetSummary | End | Reopen | ForgetPerson | Purge


def encode(mutation: Mutation) -> bytes:
    """One journal line (JSON, newline-terminated)."""
    if isinstance(mutation, Append):
        return mutation.encode()
    record = {"op": mutation.op, "thread_id": mutation.thread_id, **mutation.payload()}
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def decode(record: Any) -> Mutation:
    """The mutation a parsed journal record describes; ``MutationError`` if it is not one."""
    if not isinstance(record, dict):  # a damaged line can parse as a number or a list
        raise MutationError(f"not a journal record: {type(record).__name__}")
    try:
        op = record["op"]
        if op == "create":
            return Create(Conversation.model_validate(record["conversation"]))
        thread_id = validate_snowflake(record["thread_id"], "thread_id")
        if op == "append":
            return Append(thread_id, Message.from_dict(record["message"]))
        if op == "edit":
            return Edit(
                thread_id,
                validate_snowflake(record["message_id"], "message_id"),
                str(record["content"]),
                _time(record["at"]),
            )
        if op == "delete":
            return Delete(
                thread_id,
                validate_snowflake(record["message_id"], "message_id"),
                _time(record["at"]),
            )
        if op == "summary":
            return SetSummary(thread_id, str(record["summary"]), _time(record["at"]))
        if op == "end":
            return End(thread_id, _time(record["at"]))
        if op == "forget":
            return ForgetPerson(
                thread_id, validate_snowflake(record["user_id"], "user_id"), _time(record["at"])
            )
        if op == "reopen":
            return Reopen(thread_id, _time(record["at"]))
        if op == "purge":
            return Purge(thread_id)
    except (KeyError, TypeError, ValueError) as exc:
        raise MutationError(f"unreadable {record.get('op')!r} record: {exc}") from exc
    raise MutationError(f"unknown journal operation {op!r}")


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _require(conversation: Conversation | None, mutation: Mutation) -> Conversation:
    if conversation is None:
        raise MutationError(f"{mutation.op} for thread {mutation.thread_id} before its create")
    return conversation
