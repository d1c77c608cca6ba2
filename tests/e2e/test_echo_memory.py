"""/memory in Discord: generation by managers, and what people see of what is kept."""

from __future__ import annotations

from pathlib import Path

from tests.discord_emulator import DiscordEmulator
from tests.fake_llm.server.core import FakeLLM

from .echo_harness import Echo, running_echo

MANAGE_GUILD = 1 << 5
EPHEMERAL = 1 << 6
FAST = {"ECHO_IDLE_SECONDS": "0.2", "ECHO_MEMORY_INACTIVITY_SECONDS": "0"}


async def talk_and_let_idle(echo: Echo, text: str) -> int:
    thread = await echo.mention(text)
    await echo.answer_in(thread.id)
    await echo.emu.wait_for(
        lambda: echo.conversation(thread.id) is None or None, timeout=5, what="idle eviction"
    )
    return thread.id


async def test_generate_is_for_managers_and_reports_counts(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path, **FAST) as echo:
        guild = echo.world.guild.id
        role = emu.create_role(guild, "admins", permissions=MANAGE_GUILD)
        admin = emu.create_user("root")
        emu.add_member(guild, admin.id, roles=[role.id])
        thread_id = await talk_and_let_idle(echo, "The office moves to Oslo in March.")

        refused = await emu.invoke_command(
            guild, echo.world.channel.id, echo.world.user.id, "memory generate"
        )
        answer = await refused.response()
        assert answer["data"]["flags"] & EPHEMERAL
        assert "Manage Server" in answer["data"]["content"]
        assert not (echo.data_dir / "guilds" / str(guild) / "memories").exists()

        handle = await emu.invoke_command(guild, echo.world.channel.id, admin.id, "memory generate")
        done = await handle.original()
        again = await emu.invoke_command(guild, echo.world.channel.id, admin.id, "memory generate")
        second = await again.original()
    assert "1 eligible, 1 generated, 0 failed" in done["content"]
    assert "0 eligible" in second["content"]
    assert (echo.data_dir / "guilds" / str(guild) / "memories" / f"{thread_id}.json").is_file()


async def test_show_lists_your_facts_and_conversations_only_here(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path, **FAST) as echo:
        guild = echo.world.guild.id
        # Another server, with its own conversation about alice's secret.
        other = emu.create_guild("Elsewhere")
        other_channel = emu.create_text_channel(other.id, "general")
        emu.add_member(other.id, echo.world.user.id)
        await emu.post_message(
            other_channel.id, echo.world.user.id, echo.ping("My elsewhere password hint is walrus.")
        )
        elsewhere = await emu.wait_for_thread(other_channel.id)
        await echo.answer_in(elsewhere.id)
        await talk_and_let_idle(echo, "I am allergic to peanuts, remember that for the party.")
        await echo.emu.wait_for(
            lambda: echo.conversation(elsewhere.id) is None or None, timeout=5, what="idle"
        )
        await echo.bot.memories.generate()
        handle = await emu.invoke_command(
            guild, echo.world.channel.id, echo.world.user.id, "memory show"
        )
        shown = await handle.original()
    assert shown["flags"] & EPHEMERAL
    assert "allergic to peanuts" in shown["content"]
    assert "walrus" not in shown["content"]
    assert "Conversations you were in here: 1" in shown["content"]


async def test_forget_with_confirmation_removes_them_from_the_files(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path, **FAST) as echo:
        guild = echo.world.guild.id
        alice = echo.world.user.id
        bob = emu.create_user("bob")
        emu.add_member(guild, bob.id)
        mine = await talk_and_let_idle(echo, "My kumquat allergy is serious.")
        # bob's thread, which alice joins.
        await emu.post_message(echo.world.channel.id, bob.id, echo.ping("Planning a picnic."))
        bobs = await emu.wait_for_thread(echo.world.channel.id, predicate=lambda t: t.id != mine)
        await echo.answer_in(bobs.id)
        await echo.say(bobs.id, "I'll bring kumquat tarts.", author_id=alice)
        await echo.emu.wait_for(
            lambda: len(emu.messages_in(bobs.id)) == 3 or None, timeout=5, what="answer"
        )
        await echo.emu.wait_for(
            lambda: echo.conversation(bobs.id) is None or None, timeout=5, what="idle"
        )
        await echo.bot.memories.generate()

        cancel = await emu.invoke_command(guild, echo.world.channel.id, alice, "memory forget")
        warning = await cancel.original()
        assert warning["flags"] & EPHEMERAL and "cannot be undone" in warning["content"]
        cancelled = await emu.click(int(warning["id"]), cancel_id(warning), alice)
        assert (await cancelled.response())["data"]["content"] == "Nothing was forgotten."

        handle = await emu.invoke_command(guild, echo.world.channel.id, alice, "memory forget")
        warning = await handle.original()
        click = await emu.click(int(warning["id"]), confirm_id(warning), alice)
        done = await click.original(predicate=lambda m: m["content"].startswith("Done"))
    assert "1 conversation(s) deleted" in done["content"]
    assert done["components"] == []
    files = list((echo.data_dir / "guilds" / str(guild)).rglob("*.json"))
    assert files  # bob's conversation is still there
    text = "".join(p.read_text() for p in files) + "".join(
        p.read_text() for p in (echo.data_dir / "journal").glob("*")
    )
    assert "kumquat" not in text.lower()
    assert str(alice) not in text
    # ...and recall no longer finds them.
    index = (echo.data_dir / "index" / "recall").glob("*.sqlite3*")
    assert all(b"kumquat" not in p.read_bytes().lower() for p in index)
    assert "Planning a picnic" in text


def button_id(message: dict, label: str) -> str:  # type: ignore[type-arg]
    for row in message["components"]:
        for button in row["components"]:
            if button.get("label") == label:
                return str(button["custom_id"])
    raise AssertionError(f"no {label!r} button in {message['components']}")


def confirm_id(message: dict) -> str:  # type: ignore[type-arg]
    return button_id(message, "Forget me")


def cancel_id(message: dict) -> str:  # type: ignore[type-arg]
    return button_id(message, "Cancel")


async def test_a_later_conversation_recalls_this_servers_memories_only(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path, llm=fake_llm, **FAST) as echo:
        other = emu.create_guild("Elsewhere")
        other_channel = emu.create_text_channel(other.id, "general")
        emu.add_member(other.id, echo.world.user.id)
        fake_llm.queue_text("Noted.")
        first = await talk_and_let_idle(echo, "Our team offsite will be in Tromso in February.")
        fake_llm.queue_text("Noted too.")
        await emu.post_message(
            other_channel.id,
            echo.world.user.id,
            echo.ping("The Tromso offsite secret code is 4411."),
        )
        elsewhere = await emu.wait_for_thread(other_channel.id)
        await echo.answer_in(elsewhere.id)
        await echo.emu.wait_for(
            lambda: echo.conversation(elsewhere.id) is None or None, timeout=5, what="idle"
        )
        json_memory = (
            '{"summary": "The team offsite will be in Tromso in February.", "topics": '
            '["offsite"], "facts": [], "decisions": [], "action_items": [], "open_questions": []}'
        )
        fake_llm.queue_text(json_memory)
        fake_llm.queue_text(json_memory.replace("February", "secret code 4411"))
        report = await echo.bot.memories.generate()
        assert report.generated == 2
        # A new conversation here: its first request carries this server's memory, in context.
        fake_llm.queue_tool_call("recall_memory", {"query": "offsite Tromso"})
        fake_llm.queue_text("It is in Tromso, in February.")
        await echo.say(echo.world.channel.id, echo.ping("Where is the offsite again?"))
        thread = await emu.wait_for_thread(echo.world.channel.id, predicate=lambda t: t.id != first)
        await echo.answer_in(thread.id, lambda m: m["content"] == "It is in Tromso, in February.")
    first = fake_llm.chat_requests[-2]
    system = first.messages[0]["content"]
    assert "Memories of earlier conversations in this server" in system
    assert "Tromso in February" in system
    assert "4411" not in system  # the other server's memory never comes here
    tool_result = fake_llm.chat_requests[-1].messages[-1]
    assert tool_result["role"] == "tool"
    assert "Tromso" in tool_result["content"] and "4411" not in tool_result["content"]


async def test_automatic_runs_make_memories_without_a_command(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    settings = {**FAST, "ECHO_MEMORY_AUTO": "true", "ECHO_MEMORY_INTERVAL_SECONDS": "0.2"}
    async with running_echo(discord_emulator, tmp_path, **settings) as echo:
        thread_id = await talk_and_let_idle(echo, "Remember the lighthouse keys are in the shed.")
        memory = echo.data_dir / "guilds" / str(echo.world.guild.id) / "memories"
        await echo.emu.wait_for(
            lambda: (memory / f"{thread_id}.json").is_file() or None, timeout=5, what="auto run"
        )
    assert "lighthouse" in (memory / f"{thread_id}.json").read_text()
