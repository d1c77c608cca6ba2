"""/memory in Discord: generation by managers, and what people see of what is kept."""

from __future__ import annotations

from pathlib import Path

from tests.discord_emulator import DiscordEmulator
from tests.fake_llm.server import FakeLLM

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
