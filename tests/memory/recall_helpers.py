"""What the recall tests share: conversations of chat lines, their memory records, the
thread ids of a search's hits, and a search over a few conversations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from memory.recall import RecallHit, RecallIndex, RecallSettings
from memory.records.memories import Fact, MemoryData, MemoryRecord
from memory.records.models import Conversation, Message, MessageType

T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def conversation(
    thread_id: str,
    *texts: str,
    guild_id: str = "1",
    created_at: datetime = T0,
    requester: str = "42",
) -> Conversation:
    conv = Conversation(
        thread_id=thread_id,
        channel_id="9",
        guild_id=guild_id,
        requester=requester,
        created_at=created_at,
        updated_at=created_at,
    )
    for n, text in enumerate(texts):
        conv.add_message(
            Message(
                created_at=created_at + timedelta(seconds=n),
                message_type=MessageType.CHAT,
                message_content=text,
                meta={"requester": requester, "message_id": f"{thread_id}{n:03d}"},
            )
        )
    return conv


def memory_of(conv: Conversation, summary: str = "", facts: tuple[str, ...] = ()) -> MemoryRecord:
    return MemoryRecord(
        thread_id=conv.thread_id,
        guild_id=conv.guild_id,
        requester=conv.requester,
        memory_data=MemoryData(summary=summary, facts=[Fact(text=f) for f in facts]),
        source_updated_at=conv.updated_at,
        conversation_created_at=conv.created_at,
    )


def ids(hits: list[RecallHit]) -> list[str]:
    return [h.thread_id for h in hits]


def ranked(
    folder: Path, conversations: list[Conversation], question: str, settings: RecallSettings
) -> list[str]:
    """The thread ids guild 1's search for ``question`` finds, best first, once
    ``conversations`` are indexed (without memories) with ``settings``."""
    with RecallIndex(folder, settings=settings) as index:
        index.rebuild((c, None) for c in conversations)
        return ids(index.search("1", question))
