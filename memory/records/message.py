"""Messages: one segment of a conversation, as stored (DESIGN.md's message JSON).

Its ids and times are the field types of ``memory.records.fields``; ``memory.records.models``
names everything here too.
"""

from __future__ import annotations

import copy
import dataclasses
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, computed_field, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import ArgsKwargs

from memory.records.fields import Snowflake, Timestamp, utcnow

__all__ = ["Message", "MessageMeta", "MessageType", "ToolCall"]


class MessageType(StrEnum):
    """What a recorded segment of a conversation is."""

    THINKING = "thinking"
    CHAT = "chat"
    TOOL_CALL = "tool_call"
    TOOL_CALL_RESPONSE = "tool_call_response"


class ToolCall(BaseModel):
    """One call the model asked for, as stored in ``meta.tools``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)


class MessageMeta(BaseModel):
    """The JSON shape of a message's ``meta``: who and what it relates to. Unknown keys are
    kept, so newer files round-trip. A ``Message`` keeps these keys as its own fields (see
    there); this model describes them and is accepted as ``Message(meta=...)``."""

    model_config = ConfigDict(frozen=True, extra="allow")

    requester: Snowflake | None = None
    message_id: Snowflake | None = None
    tools: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None


# The keys of ``meta`` a Message has a field for, in the order they are written.
_META_KEYS = ("requester", "message_id", "tools", "tool_call_id", "name")


@dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class Message:
    """One segment of a conversation.

    Frozen: a recorded message changes only through the conversation (edit replaces it),
    which keeps the journal the single account of every change.

    Every active conversation holds all its messages, so a message is as small as pydantic
    allows: a slotted dataclass (no ``__dict__`` and no set of the fields given, which a
    ``BaseModel`` keeps for each instance), with the keys of its ``meta`` as its own fields
    (``requester``, ``message_id``, ``tools``, ``tool_call_id``, ``name``, and ``other_meta``
    for every other key: ``author_name``, ``reply_to``...) rather than a model of their own.
    In JSON ``meta`` is an object, as DESIGN.md has it, made when the message is written.
    ``python -m bench --only footprint`` measures what an active conversation costs.
    """

    created_at: Timestamp = Field(default_factory=utcnow)
    message_type: MessageType
    message_content: str = ""
    requester: Snowflake | None = Field(default=None, exclude=True)
    message_id: Snowflake | None = Field(default=None, exclude=True)
    tools: list[ToolCall] | None = Field(default=None, exclude=True)
    tool_call_id: str | None = Field(default=None, exclude=True)
    name: str | None = Field(default=None, exclude=True)
    # The keys of meta that have no field above, as stored; None when there are none.
    other_meta: dict[str, Any] | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _flatten_meta(cls, data: Any) -> Any:
        # The JSON form nests them in meta; Message(requester=..., meta={...}) is the
        # convenient one. A key given both ways: the keyword wins unless it is None.
        if isinstance(data, ArgsKwargs):
            if data.args or not data.kwargs:
                return data  # positional: pydantic says what is wrong
            data = data.kwargs
        if not isinstance(data, dict):
            return data
        if "meta" not in data:
            if data.get("other_meta") == {}:
                data = {**data, "other_meta": None}
            return data
        meta = data["meta"]
        if meta is None:
            meta = {}
        elif isinstance(meta, MessageMeta):
            meta = meta.model_dump(exclude_none=True)
        elif not isinstance(meta, dict):
            raise ValueError("meta must be an object")
        data = dict(data)
        del data["meta"]
        other: dict[str, Any] = {}
        for key, value in meta.items():
            if key in _META_KEYS:
                if data.get(key) is None:
                    data[key] = value
            elif value is not None:
                other[key] = value
        given = data.get("other_meta")
        if isinstance(given, dict):
            other.update(given)
        elif given is not None:
            return data  # not an object: pydantic says so
        data["other_meta"] = other or None
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def meta(self) -> dict[str, Any]:
        """``meta`` as stored: the keys set, in their written order (a new dict each time)."""
        meta = {key: value for key in _META_KEYS if (value := getattr(self, key)) is not None}
        if self.other_meta:
            meta.update(self.other_meta)
        return meta

    @property
    def author_name(self) -> str | None:
        """The display name a person wrote under (``meta.author_name``), if recorded."""
        name = (self.other_meta or {}).get("author_name")
        return name.strip() or None if isinstance(name, str) else None

    @property
    def reply_to(self) -> str | None:
        """On Echo's records: the Discord id of the message they answer (``meta.reply_to``)."""
        value = (self.other_meta or {}).get("reply_to")
        return value if isinstance(value, str) else None

    def to_json(self) -> str:
        """Compact JSON, one line: the form used in journal records and conversation files."""
        return self.to_json_bytes().decode()

    def to_json_bytes(self) -> bytes:
        """``to_json()`` encoded as UTF-8, straight from pydantic (no str in between)."""
        return _MESSAGE_JSON.dump_json(self, exclude_none=True)

    def to_dict(self, *, mode: Literal["json", "python"] = "python") -> dict[str, Any]:
        """The message as its JSON object (``meta`` nested), ``None`` values left out."""
        return _MESSAGE_JSON.dump_python(self, mode=mode, exclude_none=True)

    @classmethod
    def from_json(cls, data: str | bytes) -> Message:
        return _MESSAGE_JSON.validate_json(data)

    @classmethod
    def from_dict(cls, data: Any) -> Message:
        """A message from its JSON object (as ``to_dict`` gives it), validated."""
        return _MESSAGE_JSON.validate_python(data)

    # The BaseModel methods callers of an earlier Message used, kept with their meaning.

    @classmethod
    def model_validate(cls, data: Any) -> Message:
        return cls.from_dict(data)

    @classmethod
    def model_validate_json(cls, data: str | bytes) -> Message:
        return cls.from_json(data)

    def model_dump(self, **options: Any) -> dict[str, Any]:
        return _MESSAGE_JSON.dump_python(self, **options)

    def model_dump_json(self, **options: Any) -> str:
        return _MESSAGE_JSON.dump_json(self, **options).decode()

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Message:
        """A copy with ``update``'s fields changed (validated, unlike ``BaseModel``'s)."""
        copied = dataclasses.replace(self, **(update or {}))
        return copy.deepcopy(copied) if deep else copied

    def with_meta(self, **changes: Any) -> Message:
        """A copy with ``meta`` keys set (``None`` removes a key)."""
        meta = self.meta
        for key, value in changes.items():
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = value
        return Message.from_dict(
            {
                "created_at": self.created_at,
                "message_type": self.message_type,
                "message_content": self.message_content,
                "meta": meta,
            }
        )


_MESSAGE_JSON: TypeAdapter[Message] = TypeAdapter(Message)
