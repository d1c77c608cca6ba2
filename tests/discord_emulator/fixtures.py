"""Pytest fixtures and a bot runner for end-to-end tests against the emulator.

The bot under test reaches the emulator only through ``DISCORD_API_BASE`` /
``DISCORD_GATEWAY_URL`` (``bot.discord.endpoints``), the same settings an operator uses
for a proxy, and the defaults are restored afterwards so no test leaks a redirect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TypeVar

import discord
import pytest
import pytest_asyncio
from discord.ext import commands

from bot.discord.endpoints import apply_discord_endpoints
from tests.discord_emulator.server import DiscordEmulator
from tests.discord_emulator.spec import SESSION_STATS

log = logging.getLogger(__name__)

ClientT = TypeVar("ClientT", bound=discord.Client)

# Test bots should pass this as guild_ready_timeout: on_ready otherwise waits 2 s after
# the last GUILD_CREATE.
TEST_GUILD_READY_TIMEOUT = 0.05


def bot_intents() -> discord.Intents:
    """Default intents plus message content, which is what Echo asks for."""
    intents = discord.Intents.default()
    intents.message_content = True
    return intents


def make_bot(*, intents: discord.Intents | None = None, **options: object) -> commands.Bot:
    """A minimal ``commands.Bot`` for a test to hang handlers and commands on."""
    return commands.Bot(
        command_prefix=commands.when_mentioned,
        intents=intents or bot_intents(),
        guild_ready_timeout=TEST_GUILD_READY_TIMEOUT,
        **options,  # type: ignore[arg-type]
    )


@contextlib.asynccontextmanager
async def emulated_discord(**options: object) -> AsyncIterator[DiscordEmulator]:
    """A started emulator with the default world, discord.py pointed at it meanwhile."""
    emulator = DiscordEmulator(**options)  # type: ignore[arg-type]
    await emulator.start()
    emulator.populate()
    apply_discord_endpoints(emulator.api_base, emulator.gateway_url)
    try:
        yield emulator
    finally:
        apply_discord_endpoints()
        await emulator.close()
    # Not when the body raised: that error comes first, and each violation was logged as an
    # ERROR when it happened. (The discord_emulator fixture always gets here, even after a
    # failed test, so a violation is never lost.)
    emulator.spec.assert_clean()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How much emulator traffic was held to Discord's spec in this session."""
    if SESSION_STATS.requests:
        terminalreporter.write_line(f"Discord OpenAPI spec: {SESSION_STATS}")


@pytest_asyncio.fixture
async def discord_emulator() -> AsyncIterator[DiscordEmulator]:
    """An emulator with ``emu.world`` = guild "Test Guild", #general, member "alice"."""
    async with emulated_discord() as emulator:
        yield emulator


@contextlib.asynccontextmanager
async def running_bot(
    bot: ClientT,
    emulator: DiscordEmulator,
    *,
    token: str | None = None,
    timeout: float = 10.0,
) -> AsyncIterator[ClientT]:
    """Start ``bot`` against the emulator, yield once it is ready, close it cleanly after.

    If the bot stops before it is ready (bad token, disallowed intents), that error is
    raised here.
    """
    task = asyncio.create_task(bot.start(token or emulator.token), name="bot-under-test")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while not bot.is_ready():
            if task.done():
                task.result()  # raises the reason the bot stopped
                raise RuntimeError("bot.start() returned before the bot was ready")
            if loop.time() > deadline:
                raise TimeoutError(f"bot not ready after {timeout}s\n{emulator.summary()}")
            await asyncio.sleep(0.01)
        yield bot
    finally:
        await bot.close()
        done, _ = await asyncio.wait({task}, timeout=10)
        if not done:
            task.cancel()
            await asyncio.wait({task})
        elif not task.cancelled() and task.exception() is not None:
            log.error("the bot under test stopped with %r", task.exception())
