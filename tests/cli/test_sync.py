"""``python -m bot sync``: the real process syncs slash commands with the Discord emulator."""

from __future__ import annotations

import asyncio
from pathlib import Path

from memory import JsonFileStore
from tests.cli.helpers import cli_env, run_cli
from tests.discord_emulator import DiscordEmulator

# The conversation cog's commands; other cogs may add more, all synced alike.
CONVERSATION_COMMANDS = {"end", "export", "save", "summarize"}
GUILD_ROUTE = "/applications/{app_id}/guilds/{guild_id}/commands"
GLOBAL_ROUTE = "/applications/{app_id}/commands"


def emulator_env(emu: DiscordEmulator, tmp_path: Path, **values: str) -> dict[str, str]:
    settings = {
        "DISCORD_TOKEN": emu.token,
        "DISCORD_API_BASE": emu.api_base,
        "DISCORD_GATEWAY_URL": emu.gateway_url,
    }
    return cli_env(tmp_path, **(settings | values))


async def test_sync_to_a_guild_overwrites_its_commands_and_nothing_else(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    assert emu.world is not None
    guild = emu.world.guild.id
    dev_guild = emu.create_guild("Dev server")  # start-up would sync here: sync must not
    env = emulator_env(emu, tmp_path, DEV_GUILD_ID=str(dev_guild.id))
    result = await run_cli("sync", "--guild", str(guild), cwd=tmp_path, env=env)
    assert result.code == 0, result
    assert result.stderr == ""
    [put] = emu.requests_to("PUT", GUILD_ROUTE)
    assert put.path.endswith(f"/guilds/{guild}/commands") and put.status == 200
    names = sorted(c["name"] for c in put.json)
    assert set(names) >= CONVERSATION_COMMANDS
    listed = ", ".join(f"/{name}" for name in names)
    assert result.stdout == f"Synced {len(names)} slash commands to guild {guild}: {listed}\n"
    assert emu.requests_to("PUT", GLOBAL_ROUTE) == []
    assert sorted(c.name for c in emu.commands(guild)) == names
    assert emu.commands(dev_guild.id) == []
    assert emu.identify_count == 0  # REST only: no gateway session


async def test_sync_without_a_guild_is_global(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    result = await run_cli("sync", cwd=tmp_path, env=emulator_env(emu, tmp_path))
    assert result.code == 0, result
    [put] = emu.requests_to("PUT", GLOBAL_ROUTE)
    names = sorted(c["name"] for c in put.json)
    assert set(names) >= CONVERSATION_COMMANDS
    listed = ", ".join(f"/{name}" for name in names)
    assert result.stdout.startswith(f"Synced {len(names)} global slash commands: {listed} (")
    assert emu.requests_to("PUT", GUILD_ROUTE) == []


async def test_sync_errors_are_one_line(discord_emulator: DiscordEmulator, tmp_path: Path) -> None:
    emu = discord_emulator

    def env(folder: str, **values: str) -> dict[str, str]:
        # One data folder each: the runs go in parallel, and each takes its folder's lock.
        return emulator_env(emu, tmp_path, ECHO_DATA_DIR=str(tmp_path / folder), **values)

    async with JsonFileStore(tmp_path / "busy"):  # a running Echo holds this folder
        rejected, unknown, busy, no_token, bad = await asyncio.gather(
            run_cli("sync", "--guild", "1", cwd=tmp_path, env=env("a", DISCORD_TOKEN="nope")),
            run_cli("sync", "--guild", "999", cwd=tmp_path, env=env("b")),
            run_cli("sync", cwd=tmp_path, env=env("busy")),
            run_cli("sync", cwd=tmp_path, env=cli_env(tmp_path)),
            run_cli("sync", "--guild", "abc", cwd=tmp_path, env=cli_env(tmp_path)),
        )
    assert rejected.code == 2
    assert rejected.error_line.startswith("echo: Discord rejected DISCORD_TOKEN (401 Unauthorized)")
    assert unknown.code == 1
    assert unknown.error_line.startswith("echo: Discord refused the sync to guild 999 (404")
    assert "is Echo in that server" in unknown.error_line
    # A sync reads no conversations: it runs beside a live bot on the same folder.
    assert busy.code == 0, busy
    assert busy.stdout.startswith("Synced 5 global slash commands")
    assert no_token.code == 2 and "DISCORD_TOKEN is not set" in no_token.error_line
    assert bad.code == 2
    assert bad.error_line == (
        "echo: --guild must be a string of digits (a Discord server id), got 'abc'"
    )
    assert [r.status for r in emu.requests_to("PUT", GUILD_ROUTE)] == [404]  # guild 999 only
    assert [r.status for r in emu.requests_to("PUT", GLOBAL_ROUTE)] == [200]  # the busy one
