"""``python -m bot sync [--guild ID]``: push Echo's slash commands to Discord, on purpose.

The client is built exactly as ``run`` builds it (``echo_app``: same extensions, so the same
commands), logs in (REST only, no gateway session), syncs, and closes. Building it opens
the data folder, so a sync beside a running Echo needs another ECHO_DATA_DIR.
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
import discord

from bot.app import echo_app
from bot.cli.common import (
    EXIT_CONFIG,
    EXIT_OK,
    CliError,
    quiet_logging,
    settings_or_fail,
    snowflake_arg,
)
from bot.config import ConfigError, Settings
from bot.discord.client import EchoBot
from bot.discord.start import DiscordUnreachable, login_discord
from memory import StoreError

__all__ = ["sync_command"]


def sync_command(args: argparse.Namespace) -> int:
    guild_id = snowflake_arg(args.guild, "--guild", "a Discord server id")
    settings = settings_or_fail()
    try:
        token = settings.require_token()
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_CONFIG) from None
    # Errors only: what matters becomes the one-line error, and the start-up notes of the
    # bot (the offline model, voice libraries) are not news to someone syncing commands.
    quiet_logging(settings, floor="ERROR")
    names = asyncio.run(_sync(settings, token, guild_id))
    listed = ", ".join(f"/{name}" for name in names)
    if guild_id is not None:
        print(f"Synced {len(names)} slash commands to guild {guild_id}: {listed}")
    else:
        print(
            f"Synced {len(names)} global slash commands: {listed} "
            "(Discord may take up to an hour to show them everywhere)"
        )
    return EXIT_OK


def _refused(exc: discord.HTTPException, guild_id: str | None) -> str:
    why = f"{exc.status} {exc.text or exc.response.reason}".strip()
    if guild_id is None:
        return f"Discord refused the global sync ({why})"
    hint = ""
    if isinstance(exc, discord.Forbidden | discord.NotFound):
        hint = ": is Echo in that server, invited with the applications.commands scope?"
    return f"Discord refused the sync to guild {guild_id} ({why}){hint}"


async def _sync(settings: Settings, token: str, guild_id: str | None) -> list[str]:
    try:
        # Read-only: a sync needs no conversations, so it runs beside a live bot. No
        # automatic sync either: the explicit one below is the point.
        async with echo_app(settings, read_only=True, sync_on_start=False) as bot:
            return await _login_and_sync(bot, settings, token, guild_id)
    except StoreError as exc:
        raise CliError(str(exc), EXIT_CONFIG) from None


async def _login_and_sync(
    bot: EchoBot, settings: Settings, token: str, guild_id: str | None
) -> list[str]:
    try:
        await login_discord(
            bot,
            token,
            api_base=settings.discord_api_base,
            within=settings.discord_connect_timeout_seconds,
        )
    except DiscordUnreachable as exc:
        # The same line and exit code as `python -m bot` for the same fault.
        raise CliError(str(exc), EXIT_CONFIG) from None
    except discord.LoginFailure:
        raise CliError(
            "Discord rejected DISCORD_TOKEN (401 Unauthorized): copy the token again from the "
            "Developer Portal (your application > Bot > Reset Token) into .env",
            EXIT_CONFIG,
        ) from None
    try:
        if guild_id is not None:
            guild = discord.Object(id=int(guild_id))
            bot.tree.copy_global_to(guild=guild)
            synced = await bot.tree.sync(guild=guild)
        else:
            synced = await bot.tree.sync()
    except discord.HTTPException as exc:
        raise CliError(_refused(exc, guild_id)) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise CliError(
            f"cannot reach Discord at {settings.discord_api_base}: {exc or type(exc).__name__}",
            EXIT_CONFIG,
        ) from None
    return sorted(command.name for command in synced)
