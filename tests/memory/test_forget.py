"""Forgetting a person: nothing of theirs left in that guild's files, other guilds untouched."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from memory import InMemoryConversationManager, JsonFileStore, Message
from memory.longterm import ExtractiveDistiller, MemoryService, forget_person
from memory.records.memories import Fact, MemoryData, MemoryRecord

T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
ALICE, BOB = "1001", "1002"


def said(who: str, text: str, message_id: str) -> Message:
    return Message(
        message_type="chat",
        message_content=text,
        requester=who,
        message_id=message_id,
        created_at=T0,
        meta={"author_name": "Alice" if who == ALICE else "Bob"},
    )


def echo_answer(text: str, reply_to: str) -> Message:
    return Message(
        message_type="chat", message_content=text, created_at=T0, meta={"reply_to": reply_to}
    )


async def setup(manager: InMemoryConversationManager) -> None:
    # Guild 22: alice's own thread; bob's thread that alice joined. Guild 23: alice elsewhere.
    for thread, guild, requester in (("11", "22", ALICE), ("12", "22", BOB), ("13", "23", ALICE)):
        await manager.create_conversation(
            thread_id=thread, guild_id=guild, requester=requester, channel_id="44", created_at=T0
        )
    await manager.add_message_to_conversation("11", said(ALICE, "my flamingo secret", "501"))
    await manager.add_message_to_conversation("12", said(BOB, "planning the picnic", "502"))
    await manager.add_message_to_conversation("12", said(ALICE, "I bring flamingo cake", "503"))
    await manager.add_message_to_conversation(
        "12", echo_answer("Flamingo cake sounds great", "503")
    )
    await manager.add_message_to_conversation("12", said(BOB, "I bring bread", "504"))
    await manager.set_summary("12", "Alice brings flamingo cake.")
    await manager.add_message_to_conversation("13", said(ALICE, "flamingo in guild 23", "505"))


async def test_forget_removes_everything_of_theirs_in_that_guild_only(tmp_path: Path) -> None:
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path)) as manager:
        await setup(manager)
        await manager.save_all_conversations()
        await MemoryService(manager, ExtractiveDistiller(), inactivity=0).generate()  # none: active
        for thread in ("11", "12", "13"):
            await manager.remove_conversation(thread)
        await MemoryService(manager, ExtractiveDistiller(), inactivity=0).generate()
        # A fact about alice learned in a conversation she was not in.
        await manager.store.save_memory(
            MemoryRecord(
                thread_id="14",
                guild_id="22",
                requester=BOB,
                source_updated_at=T0,
                memory_data=MemoryData(
                    facts=[Fact(text="Alice likes flamingos", about=ALICE), Fact(text="Bob bakes")]
                ),
            )
        )
        # Something still in the journal only, not saved yet.
        await manager.add_message_to_conversation("12", said(ALICE, "flamingo postscript", "506"))

        report = await forget_person(manager, "22", ALICE)

        assert report.conversations_deleted == ["11"]
        assert report.conversations_changed == ["12"]
        assert report.messages_removed == 3  # two of hers and Echo's answer to her
        assert report.facts_removed == 1
        kept = await manager.get_or_resume("12")
        assert kept is not None
        assert [m.message_content for m in kept.history] == ["planning the picnic", "I bring bread"]
        assert kept.participants == [BOB] and kept.summary == ""
        [other] = await manager.store.list_memories("22")
        assert [f.text for f in other.memory_data.facts] == ["Bob bakes"]

    guild_22 = "".join(p.read_text() for p in (tmp_path / "guilds" / "22").rglob("*.json"))
    journal = "".join(p.read_text() for p in (tmp_path / "journal").glob("*"))
    assert "flamingo" not in guild_22.lower() and ALICE not in guild_22
    assert "flamingo" not in journal.lower() and ALICE not in journal
    # The other guild keeps its own conversation with alice.
    guild_23 = "".join(p.read_text() for p in (tmp_path / "guilds" / "23").rglob("*.json"))
    assert "flamingo in guild 23" in guild_23


async def test_forgetting_survives_a_crash_right_after(tmp_path: Path) -> None:
    manager = InMemoryConversationManager(store=JsonFileStore(tmp_path))
    await manager.start()
    await setup(manager)
    await manager.forget_person("12", ALICE)
    await manager.store.journal.sync()
    manager._sweeper.cancel()  # type: ignore[union-attr]  # a crash: nothing saved
    await manager.store.close()
    async with JsonFileStore(tmp_path) as store:
        conversation = await store.load("12")
    assert conversation is not None
    assert [m.message_content for m in conversation.history] == [
        "planning the picnic",
        "I bring bread",
    ]
