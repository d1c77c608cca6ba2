"""Saving renders a conversation's file a slice at a time: the bytes must be exactly
``to_json()``'s, and a snapshot of the moment the save began, whatever the loop does meanwhile."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory import Conversation, InMemoryConversationManager, JsonFileStore, Message, MessageType
from memory.records import fileformat as jsonfile
from memory.records.fileformat import render, render_chunks

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def conversation(count: int, *, text: str = "hello") -> Conversation:
    conv = Conversation(
        thread_id="11",
        channel_id="44",
        guild_id="22",
        guild_name="Gé",
        requester="33",
        created_at=T0,
        updated_at=T0,
    )
    for n in range(count):
        conv.add_message(
            Message(
                created_at=T0 + timedelta(seconds=n),
                message_type=MessageType.CHAT,
                message_content=f"{text} {n} — ünïcode",
                requester="33",
                message_id=str(1000 + n),
                meta={"author_name": "Ana"},
            )
        )
    return conv


def test_message_bytes_are_its_json_encoded() -> None:
    message = conversation(1).history[0]
    assert message.to_json_bytes() == message.to_json().encode()


@pytest.mark.parametrize("count", [0, 1, 255, 256, 257, 600])
async def test_rendered_bytes_are_to_json(count: int) -> None:
    conv = conversation(count)
    assert await render(conv) == conv.to_json().encode()
    assert Conversation.from_json(await render(conv)).to_json() == conv.to_json()


async def test_long_messages_end_a_slice_early(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonfile, "_SLICE_BYTES", 10_000)
    conv = conversation(20, text="x" * 3000)
    chunks = await render_chunks(conv)
    # opening, 7 slices of at most 4 messages (3 KB each) with separators between, closing
    assert max(len(c) for c in chunks) < 4 * 3200
    assert b"".join(chunks) == conv.to_json().encode()


async def test_what_is_rendered_is_the_conversation_when_the_save_began() -> None:
    conv = conversation(1000)
    expected = conv.to_json().encode()
    task = asyncio.ensure_future(render_chunks(conv))
    await asyncio.sleep(0)  # the first slice is done; the render waits for its next turn
    assert not task.done()
    # What the loop may do between two slices of a save (the store alone takes no lock).
    assert conv.edit_message("1999", "edited", T0 + timedelta(hours=1))
    assert conv.delete_message("1000", T0 + timedelta(hours=1))
    conv.add_message(Message(message_type=MessageType.CHAT, message_content="late"))
    conv.set_summary("changed", T0 + timedelta(hours=2))
    assert b"".join(await task) == expected


async def test_a_save_writes_the_rendered_bytes_and_checkpoints_their_hash(tmp_path: Path) -> None:
    data = tmp_path / "data"
    conv = conversation(700)
    digests: list[str] = []
    async with JsonFileStore(data) as store:
        checkpoint = store.journal.checkpoint

        async def spy(thread_id: str, digest: str) -> int:
            digests.append(digest)
            return await checkpoint(thread_id, digest)

        store.journal.checkpoint = spy  # type: ignore[method-assign]
        await store.save(conv)
    written = (data / "guilds" / "22" / conv.filename).read_bytes()
    assert written == conv.to_json().encode()
    assert digests == [hashlib.sha256(written).hexdigest()]


async def test_an_edit_after_a_save_is_in_the_next_save(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with InMemoryConversationManager(store=JsonFileStore(data)) as manager:
        conv = await manager.create_conversation(
            thread_id="11", guild_id="22", requester="33", channel_id="44", created_at=T0
        )
        for message in conversation(300).history:
            await manager.add_message_to_conversation("11", message)
        await manager.save_conversation("11")
        await manager.edit_message("11", "1100", "changed my mind", edited_at=T0)
        await manager.save_conversation("11")
        path = data / "guilds" / "22" / conv.filename
        assert path.read_bytes() == conv.to_json().encode()
    assert b"changed my mind" in path.read_bytes()
    assert Conversation.from_json(path.read_bytes()).history[100].message_content == (
        "changed my mind"
    )
