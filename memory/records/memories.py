"""Long-term memory records: what Echo keeps of a conversation after it ends.

One record per conversation, upserted whenever the conversation has changed since its record
was made, stored at ``<data>/guilds/<guild_id>/memories/<thread_id>.json``. Every fact says
whom it is about and which messages it came from, so that forgetting a person can remove
exactly what was learned from them or about them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from memory.records.fields import Snowflake, Timestamp, utcnow

__all__ = ["Fact", "MemoryData", "MemoryRecord"]


class Fact(BaseModel):
    """One thing learned, with whom it is about and where it was said."""

    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1)
    about: Snowflake | None = None
    source_message_ids: list[Snowflake] = Field(default_factory=list)


class MemoryData(BaseModel):
    """The distilled content. This is the JSON a model is asked to produce."""

    model_config = ConfigDict(extra="ignore")

    summary: str = ""
    topics: list[str] = Field(default_factory=list)
    facts: list[Fact] = Field(default_factory=list)
    decisions: list[str] = Field(default_factory=list)
    action_items: list[str] = Field(default_factory=list)
    open_questions: list[str] = Field(default_factory=list)


class MemoryRecord(BaseModel):
    """The memory of one conversation."""

    model_config = ConfigDict(extra="allow")

    thread_id: Snowflake
    guild_id: Snowflake
    requester: Snowflake
    participants: list[Snowflake] = Field(default_factory=list)
    memory_data: MemoryData = Field(default_factory=MemoryData)
    created_at: Timestamp = Field(default_factory=utcnow)
    updated_at: Timestamp = Field(default_factory=utcnow)
    # The conversation's updated_at this record was made from: newer means "regenerate".
    source_updated_at: Timestamp
    # When the conversation itself started: recall can use time ("when did we...?").
    conversation_created_at: Timestamp | None = None
    generator: str = "extractive"

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=True)

    @classmethod
    def from_json(cls, data: str | bytes) -> MemoryRecord:
        return cls.model_validate_json(data)

    def searchable_text(self) -> dict[str, Any]:
        """The record's text by field, for indexing."""
        data = self.memory_data
        return {
            "summary": data.summary,
            "topics": " ".join(data.topics),
            "facts": "\n".join(f.text for f in data.facts),
            "decisions": "\n".join(data.decisions + data.action_items + data.open_questions),
        }

    def is_stale(self, conversation_updated_at: datetime) -> bool:
        return conversation_updated_at > self.source_updated_at
