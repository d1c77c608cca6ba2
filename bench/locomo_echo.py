"""LoCoMo's dialogues as Echo conversations, questions and data folders.

Each session of a dialogue becomes one Echo conversation in a guild of its own dialogue, written
through the real ``JsonFileStore`` and given its memory by the real batch job, so that the
benchmark searches what Echo would hold. Only the turns and the session dates are read (and a
shared photo's caption): never the observations, the summaries or the QA answers, which would
hand recall the answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from memory import Conversation, InMemoryConversationManager, JsonFileStore, Message, MessageType
from memory.records.memories import MemoryRecord

__all__ = [
    "CATEGORIES",
    "Question",
    "conversations",
    "generate_memories",
    "guild_of",
    "load_folder",
    "questions",
    "session_date",
    "sessions",
    "thread_of",
    "write_data_folder",
]

EVIDENCE = re.compile(r"D:?(\d+):(\d+)")
GUILD_BASE = 1000
CATEGORIES = (1, 2, 3, 4)


@dataclass(frozen=True)
class Question:
    guild_id: str
    text: str
    evidence: frozenset[str]  # thread ids
    category: int


def session_date(text: str) -> datetime:
    """LoCoMo's "1:56 pm on 8 May, 2023", read as UTC."""
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def guild_of(index: int) -> str:
    return str(GUILD_BASE + index)


def thread_of(guild_id: str, session: int) -> str:
    return str(int(guild_id) * 1000 + session)


def sessions(record: dict[str, Any]) -> list[tuple[int, datetime, list[dict[str, Any]]]]:
    talk = record["conversation"]
    found = []
    for key in talk:
        match = re.fullmatch(r"session_(\d+)", key)
        if match:
            number = int(match[1])
            found.append((number, session_date(talk[f"{key}_date_time"]), talk[key]))
    return sorted(found, key=lambda s: s[0])


def conversations(
    records: list[dict[str, Any]],
    *,
    captions: bool = True,
    names: bool = True,
    written: datetime | None = None,
) -> Iterable[Conversation]:
    """Each session of each dialogue as an Echo conversation (turns and dates only). Without
    ``names``, a message says who wrote it by ``meta.requester`` alone (no ``author_name``).
    With ``written``, each conversation is dated then (as a tool importing old chats may date
    them), while its messages keep the session's date."""
    for index, record in enumerate(records):
        guild_id = guild_of(index)
        talk = record["conversation"]
        speakers = {talk["speaker_a"]: f"{guild_id}1", talk["speaker_b"]: f"{guild_id}2"}
        for number, started, turns in sessions(record):
            thread_id = thread_of(guild_id, number)
            conversation = Conversation(
                thread_id=thread_id,
                channel_id=f"{guild_id}9",
                created_at=written or started,
                updated_at=written or started,
                guild_id=guild_id,
                guild_name=f"LoCoMo {record.get('sample_id', index)}",
                requester=speakers[talk["speaker_a"]],
                participants=list(speakers.values()),
            )
            for turn_number, turn in enumerate(turns, start=1):
                text = turn["text"]
                if captions and turn.get("blip_caption"):
                    text = f"{text} [shares a photo: {turn['blip_caption']}]"
                speaker = turn["speaker"]
                requester = speakers.setdefault(speaker, f"{guild_id}{len(speakers) + 1}")
                meta = {"requester": requester, "message_id": f"{thread_id}{turn_number:04d}"}
                if names:
                    meta["author_name"] = speaker
                conversation.add_message(
                    Message(
                        created_at=started + timedelta(seconds=30 * turn_number),
                        message_type=MessageType.CHAT,
                        message_content=text,
                        meta=meta,
                    )
                )
            yield conversation


def questions(records: list[dict[str, Any]]) -> list[Question]:
    found: list[Question] = []
    for index, record in enumerate(records):
        guild_id = guild_of(index)
        for qa in record["qa"]:
            if qa.get("category") not in CATEGORIES:
                continue
            raw = " ".join(str(e) for e in qa.get("evidence", []))
            evidence = frozenset(thread_of(guild_id, int(s)) for s, _ in EVIDENCE.findall(raw))
            if evidence:  # two questions name no parseable evidence at all
                found.append(Question(guild_id, qa["question"], evidence, qa["category"]))
    return found


async def write_data_folder(
    folder: Path,
    records: list[dict[str, Any]],
    captions: bool,
    *,
    names: bool = True,
    written: datetime | None = None,
) -> int:
    """The dialogues as Echo files, through the real store (``conversations``)."""
    count = 0
    async with JsonFileStore(folder, fsync="no") as store:
        for conversation in conversations(records, captions=captions, names=names, written=written):
            await store.save(conversation)
            count += 1
    return count


async def generate_memories(folder: Path) -> int:
    """``memories generate`` offline: the batch job with the extractive distiller."""
    from memory.longterm import ExtractiveDistiller, MemoryService

    store = JsonFileStore(folder, fsync="no")
    async with InMemoryConversationManager(store=store) as manager:
        service = MemoryService(manager, ExtractiveDistiller(), inactivity=0)
        report = await service.generate()
    if report.failed:
        raise RuntimeError(f"memory generation failed: {report.line()} {report.failures}")
    return report.generated


async def load_folder(folder: Path) -> list[tuple[Conversation, MemoryRecord | None]]:
    """Every conversation and its memory, read back from the files."""
    loaded: list[tuple[Conversation, MemoryRecord | None]] = []
    async with JsonFileStore(folder, read_only=True) as store:
        for ref in sorted(await store.list_conversations(), key=lambda r: int(r.thread_id)):
            conversation = await store.load(ref.thread_id)
            assert conversation is not None, ref
            memory = await store.load_memory(ref.guild_id, ref.thread_id)
            loaded.append((conversation, memory))
    return loaded
