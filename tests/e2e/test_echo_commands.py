"""/save, /summarize, /end and /export, as a member invokes them in Discord."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.discord_emulator import DiscordEmulator
from tests.fake_llm.server.core import FakeLLM

from .echo_harness import Echo, running_echo

EPHEMERAL = 1 << 6


async def invoke(echo: Echo, channel_id: int, name: str):  # type: ignore[no-untyped-def]
    return await echo.emu.invoke_command(echo.world.guild.id, channel_id, echo.world.user.id, name)


async def test_commands_are_synced_to_the_dev_guild(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    async with running_echo(discord_emulator, tmp_path) as echo:
        names = {c.name for c in echo.emu.commands(echo.world.guild.id)}
    assert names == {"save", "summarize", "end", "export", "memory"}
    assert all(c.body["description"] for c in echo.emu.commands(echo.world.guild.id))


async def test_save_says_which_file_and_how_many_messages(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    async with running_echo(discord_emulator, tmp_path) as echo:
        thread = await echo.mention("please keep this")
        await echo.answer_in(thread.id)
        handle = await invoke(echo, thread.id, "save")
        response = await handle.response()
        files = echo.files()  # written by /save, before any shutdown save
    conversation_file = files[0]
    assert response["data"]["flags"] & EPHEMERAL
    assert conversation_file.name in response["data"]["content"]
    assert "2 messages" in response["data"]["content"]
    assert len(json.loads(conversation_file.read_text())["history"]) == 2


async def test_commands_outside_an_echo_thread_say_so_privately(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    async with running_echo(discord_emulator, tmp_path) as echo:
        for name in ("save", "summarize", "end", "export"):
            handle = await invoke(echo, echo.world.channel.id, name)
            response = await handle.response()
            assert response["data"]["flags"] & EPHEMERAL
            assert "isn't an Echo conversation" in response["data"]["content"]


async def test_summarize_offline_is_extractive_and_stored(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    async with running_echo(discord_emulator, tmp_path) as echo:
        thread = await echo.mention("We decided to ship the release on Friday.")
        await echo.answer_in(thread.id)
        await echo.say(thread.id, "Marie will write the release notes for Friday.")
        await echo.emu.wait_for(
            lambda: len(echo.emu.messages_in(thread.id)) == 3 or None, timeout=5, what="answers"
        )
        handle = await invoke(echo, thread.id, "summarize")
        assert (await handle.response())["type"] == 5  # deferred: the summary may take a while
        posted = await handle.original()
        conversation = echo.conversation(thread.id)
    assert posted["content"].startswith("**Summary so far**")
    assert "release" in posted["content"] and "Friday" in posted["content"]
    assert not posted["flags"] & EPHEMERAL  # for everyone in the thread
    assert conversation is not None and "Friday" in conversation.summary


async def test_summarize_asks_the_model(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("Let's plan the picnic for Sunday.")
        await echo.answer_in(thread.id)
        fake_llm.queue_text("Alice is planning a picnic on Sunday.")
        handle = await invoke(echo, thread.id, "summarize")
        posted = await handle.original()
        conversation = echo.conversation(thread.id)
    assert "Alice is planning a picnic on Sunday." in posted["content"]
    assert conversation is not None
    assert conversation.summary == "Alice is planning a picnic on Sunday."
    prompt = fake_llm.chat_requests[-1]
    assert "picnic" in prompt.messages[-1]["content"]


async def test_end_stops_answers_until_a_new_mention(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("hello")
        await echo.answer_in(thread.id)
        handle = await invoke(echo, thread.id, "end")
        response = await handle.response()
        assert "ended" in response["data"]["content"]
        [path] = echo.files()
        assert "ended_at" in json.loads(path.read_text())
        await echo.say(thread.id, "anyone there?")
        fake_llm.queue_text("I'm back.")
        await echo.say(thread.id, echo.ping("come back please"))
        await echo.answer_in(thread.id, lambda m: m["content"] == "I'm back.")
        conversation = echo.conversation(thread.id)
    assert len(fake_llm.chat_requests) == 2
    assert conversation is not None and not conversation.ended
    contents = [m.message_content for m in conversation.history]
    assert "anyone there?" not in contents  # ignored while ended
    assert "@Echo come back please" in contents


async def test_export_sends_the_json_privately(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    async with running_echo(discord_emulator, tmp_path) as echo:
        thread = await echo.mention("export me")
        await echo.answer_in(thread.id)
        handle = await invoke(echo, thread.id, "export")
        assert (await handle.response())["type"] == 5
        message = await handle.original()
        conversation = echo.conversation(thread.id)
    assert conversation is not None
    assert message["flags"] & EPHEMERAL
    [attachment] = message["attachments"]
    assert attachment["filename"] == conversation.filename
    [stored] = echo.emu.get_message(int(message["id"])).attachments
    data = json.loads(stored.data)
    assert data["thread_id"] == str(thread.id)
    assert [m["message_content"] for m in data["history"]] == [
        m.message_content for m in conversation.history
    ]


async def export_of_a_reasoned_answer(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path, **settings: str
) -> tuple[list[dict[str, str]], list[str], str]:
    """/export after an answer the model reasoned about: the file's history, the record's
    message types, and what the thread showed."""
    fake_llm.queue_text("The answer is 4.", reasoning="secret chain of thought about 2+2")
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm, **settings) as echo:
        thread = await echo.mention("what is 2+2?")
        shown = await echo.answer_in(thread.id, lambda m: "The answer is 4." in m["content"])
        handle = await invoke(echo, thread.id, "export")
        message = await handle.original()
        conversation = echo.conversation(thread.id)
    assert conversation is not None
    [stored] = echo.emu.get_message(int(message["id"])).attachments
    recorded = [m.message_type.value for m in conversation.history]
    assert f"({len(json.loads(stored.data)['history'])} messages)" in message["content"]
    return json.loads(stored.data)["history"], recorded, shown["content"]


async def test_export_leaves_out_the_reasoning_discord_never_showed(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    history, recorded, shown = await export_of_a_reasoned_answer(
        discord_emulator, fake_llm, tmp_path
    )
    assert "thinking" in recorded  # kept for the operator (the CLI export has it)...
    assert "secret chain" not in shown
    # ...but the member gets only what the thread showed.
    assert [m["message_type"] for m in history] == ["chat", "chat"]
    assert "secret chain" not in json.dumps(history)


async def test_export_keeps_the_reasoning_when_discord_shows_it(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    history, recorded, shown = await export_of_a_reasoned_answer(
        discord_emulator, fake_llm, tmp_path, ECHO_SHOW_THINKING="true"
    )
    assert "secret chain" in shown
    assert [m["message_type"] for m in history] == recorded
    assert "thinking" in recorded


async def test_commands_in_a_thread_echo_does_not_hold_say_so_privately(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path) as echo:
        thread = await emu.create_thread(
            echo.world.channel.id, "our own thread", owner_id=echo.world.user.id
        )
        for name in ("save", "summarize", "end", "export"):
            handle = await invoke(echo, thread.id, name)
            response = await handle.response()
            assert response["data"]["flags"] & EPHEMERAL
            assert "isn't an Echo conversation" in response["data"]["content"]
        assert echo.files() == []


async def test_a_command_that_fails_says_sorry_privately_and_logs_the_cause(
    discord_emulator: DiscordEmulator, tmp_path: Path, caplog: Any
) -> None:
    async with running_echo(discord_emulator, tmp_path) as echo:
        thread = await echo.mention("end me")
        await echo.answer_in(thread.id)
        # The server's folder becomes a file: saving the conversation cannot succeed.
        folder = echo.data_dir / "guilds" / str(echo.world.guild.id)
        shutil.rmtree(folder, ignore_errors=True)
        folder.write_text("not a folder")
        handle = await invoke(echo, thread.id, "end")
        response = await handle.response()
        folder.unlink()
    assert response["data"]["flags"] & EPHEMERAL
    assert response["data"]["content"] == (
        "Sorry, that didn't work. The operator can find the cause in Echo's log."
    )
    assert any(
        r.getMessage().startswith("/end failed:") and r.exc_info and r.levelname == "ERROR"
        for r in caplog.records
    )
