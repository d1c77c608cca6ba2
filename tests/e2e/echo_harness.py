"""Run the real Echo bot (``bot.app.echo_app``, as ``python -m bot`` does) on the emulator.

```python
async def test_something(discord_emulator, fake_llm, tmp_path):
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("hello")
        answer = await echo.answer_in(thread.id)
```
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app import echo_app
from bot.config import Settings, load_settings
from bot.discord.client import EchoBot
from memory import Conversation
from tests.discord_emulator import DiscordEmulator
from tests.discord_emulator.fixtures import TEST_GUILD_READY_TIMEOUT, running_bot
from tests.fake_llm.server.core import FakeLLM


@dataclass
class Echo:
    """The running bot and handy ways to talk to it as alice in #general."""

    emu: DiscordEmulator
    bot: EchoBot
    settings: Settings
    data_dir: Path

    @property
    def world(self) -> Any:
        assert self.emu.world is not None
        return self.emu.world

    def ping(self, text: str) -> str:
        return f"<@{self.emu.bot_user.id}> {text}"

    async def mention(self, text: str, *, author_id: int | None = None) -> Any:
        """Mention Echo in #general; returns the thread it opens."""
        await self.emu.post_message(
            self.world.channel.id, author_id or self.world.user.id, self.ping(text)
        )
        return await self.emu.wait_for_thread(self.world.channel.id)

    async def say(
        self, channel_id: int, text: str, *, author_id: int | None = None
    ) -> dict[str, Any]:
        return await self.emu.post_message(channel_id, author_id or self.world.user.id, text)

    async def answer_in(
        self,
        thread_id: int,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Echo's final answer in a thread: a message of Echo's without the streaming cursor."""

        def done(message: dict[str, Any]) -> bool:
            if message["content"].endswith("▌"):
                return False
            return predicate(message) if predicate else True

        return await self.emu.wait_for_message(thread_id, predicate=done, timeout=timeout)

    def conversation(self, thread_id: int) -> Conversation | None:
        return self.bot.manager.get_conversation(str(thread_id))

    def files(self) -> list[Path]:
        return sorted((self.data_dir / "guilds").glob("*/*.json"))


def echo_settings(
    emu: DiscordEmulator, data_dir: Path, llm: FakeLLM | None = None, **overrides: str
) -> Settings:
    assert emu.world is not None
    values = {
        "DISCORD_TOKEN": emu.token,
        "DISCORD_API_BASE": emu.api_base,
        "DISCORD_GATEWAY_URL": emu.gateway_url,
        "DEV_GUILD_ID": str(emu.world.guild.id),
        "ECHO_DATA_DIR": str(data_dir),
        "ECHO_LOG_LEVEL": "DEBUG",
        # Tests talk fast; the cooldown has tests of its own that set it.
        "ECHO_USER_COOLDOWN_SECONDS": "0",
    }
    if llm is not None:
        values |= {
            "LLM_PROVIDER": "openai",
            "LLM_BASE_URL": llm.base_url,
            "LLM_API_KEY": llm.api_key,
            "LLM_MODEL": "fake-model",
            "LLM_TIMEOUT_SECONDS": "5",
        }
    values |= overrides
    return load_settings(values, env_file=None)


@contextlib.asynccontextmanager
async def running_echo(
    emu: DiscordEmulator,
    tmp_path: Path,
    *,
    llm: FakeLLM | None = None,
    **overrides: str,
) -> AsyncIterator[Echo]:
    """Echo built by ``echo_app`` (same wiring as ``python -m bot``), logged in and ready."""
    data_dir = tmp_path / "data"
    settings = echo_settings(emu, data_dir, llm, **overrides)
    async with (
        echo_app(settings, guild_ready_timeout=TEST_GUILD_READY_TIMEOUT) as bot,
        running_bot(bot, emu),
    ):
        yield Echo(emu, bot, settings, data_dir)
