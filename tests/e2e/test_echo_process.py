"""The real process, ``python -m bot``, as an operator runs it: errors, a run, a signal."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import discord

from tests.discord_emulator import DiscordEmulator
from tests.discord_emulator.fixtures import emulated_discord


def bot_env(tmp_path: Path, **values: str) -> dict[str, str]:
    """The environment of a fresh shell, without any Echo settings of the developer's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ECHO_", "DISCORD_", "LLM_"))}
    env.update(values)
    return env


def emulator_env(emu: DiscordEmulator, tmp_path: Path, **values: str) -> dict[str, str]:
    assert emu.world is not None
    settings = {
        "DISCORD_TOKEN": emu.token,
        "DISCORD_API_BASE": emu.api_base,
        "DISCORD_GATEWAY_URL": emu.gateway_url,
        "DEV_GUILD_ID": str(emu.world.guild.id),
        "ECHO_DATA_DIR": str(tmp_path / "data"),
    }
    return bot_env(tmp_path, **(settings | values))


async def run_bot(
    env: dict[str, str], cwd: Path, *args: str, timeout: float = 30
) -> tuple[int, str]:
    """``python -m bot [args]`` to its end: the exit code and stdout + stderr together."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_missing_token_is_one_line_naming_env_example(tmp_path: Path) -> None:
    code, output = await run_bot(bot_env(tmp_path), cwd=tmp_path)
    assert code == 2
    assert output.strip().count("\n") == 0, output
    assert "DISCORD_TOKEN" in output and ".env.example" in output
    assert "Traceback" not in output


async def test_settings_come_from_dotenv_and_bad_ones_are_named(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DISCORD_TOKEN=abc\nECHO_IDLE_SECONDS=soon\n")
    code, output = await run_bot(bot_env(tmp_path), cwd=tmp_path)
    assert code == 2
    assert output.strip() == (
        "echo: invalid setting ECHO_IDLE_SECONDS='soon': Input should be a valid number, "
        "unable to parse string as a number"
    )


async def test_a_rejected_token_is_one_line(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    env = emulator_env(discord_emulator, tmp_path, DISCORD_TOKEN="not.the.token")
    code, output = await run_bot(env, cwd=tmp_path)
    assert code == 2
    last = output.strip().splitlines()[-1]
    assert last.startswith("echo: Discord rejected DISCORD_TOKEN (401 Unauthorized)")
    assert "Traceback" not in output


async def test_message_content_intent_off_is_one_line(tmp_path: Path) -> None:
    async with emulated_discord(privileged_intents=()) as emu:
        code, output = await run_bot(emulator_env(emu, tmp_path), cwd=tmp_path)
    assert code == 2
    last = output.strip().splitlines()[-1]
    assert "Message Content Intent" in last and "Developer Portal" in last
    assert "Traceback" not in output


class BotProcess:
    """``python -m bot`` running in the background, its log collected line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.lines.append(line.decode().rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def wait_for_line(self, text: str, timeout: float = 20) -> str:
        async with asyncio.timeout(timeout):
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                if self._reader.done():
                    raise AssertionError(f"the bot exited before logging {text!r}:\n{self.log}")
                await asyncio.sleep(0.05)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await self._reader
        return code

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        await self._reader


async def start_bot(env: dict[str, str], cwd: Path) -> BotProcess:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    return BotProcess(process)


async def test_a_run_answers_then_stops_cleanly_on_sigterm(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    # A misspelled setting is named, with the one it meant.
    env = emulator_env(emu, tmp_path, ECHO_MEMORY_AUTOO="true")
    bot = await start_bot(env, tmp_path)
    try:
        await bot.wait_for_line("ready:")
        await emu.post_message(world.channel.id, world.user.id, f"<@{emu.bot_user.id}> hello there")
        thread = await emu.wait_for_thread(world.channel.id, timeout=10)
        answer = await emu.wait_for_message(
            thread.id, predicate=lambda m: not m["content"].endswith("▌"), timeout=10
        )
        code = await bot.stop(signal.SIGTERM)
    finally:
        await bot.kill()
    log = bot.log
    assert code == 0, log
    # The offline model says what it is, in the thread and in the log.
    assert "offline echo model" in answer["content"] and "hello there" in answer["content"]
    assert "LLM_PROVIDER=echo" in log
    assert "ECHO_MEMORY_AUTOO is not a setting; did you mean ECHO_MEMORY_AUTO?" in log
    # Where the data is and where the settings came from, so another folder is never silent.
    assert f"data folder: {tmp_path / 'data'} (no .env in {tmp_path}:" in log
    # The invite URL has exactly the scopes and permissions Echo needs.
    url = re.search(r"invite Echo with: (\S+)", log)
    assert url is not None, log
    query = parse_qs(urlparse(url.group(1)).query)
    assert query["scope"] == ["bot applications.commands"]
    expected = discord.Permissions(
        view_channel=True,
        send_messages=True,
        create_public_threads=True,
        send_messages_in_threads=True,
        read_message_history=True,
        attach_files=True,
        embed_links=True,
    )
    assert int(query["permissions"][0]) == expected.value
    # SIGTERM saved the conversation.
    [path] = list((tmp_path / "data" / "guilds").glob("*/*.json"))
    history = json.loads(path.read_text())["history"]
    assert history[0]["message_content"] == "@Echo hello there"
    assert len(history) == 2
    # The notice about the offline model was shown, not recorded (nor so remembered).
    assert "offline" not in history[1]["message_content"]
    assert "LLM_" not in history[1]["message_content"]


async def test_a_killed_bot_loses_nothing_on_restart(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    env = emulator_env(emu, tmp_path)
    bot = await start_bot(env, tmp_path)
    try:
        await bot.wait_for_line("ready:")
        await emu.post_message(world.channel.id, world.user.id, f"<@{emu.bot_user.id}> keep this")
        thread = await emu.wait_for_thread(world.channel.id, timeout=10)
        await emu.wait_for_message(
            thread.id, predicate=lambda m: not m["content"].endswith("▌"), timeout=10
        )
    finally:
        await bot.kill()  # SIGKILL: no chance to save
    assert list((tmp_path / "data" / "guilds").glob("*/*.json")) == []  # nothing was saved...

    bot = await start_bot(env, tmp_path)
    try:
        await bot.wait_for_line("ready:")
        assert await bot.stop(signal.SIGTERM) == 0
    finally:
        await bot.kill()
    assert "recovered 1 conversation" in bot.log
    [path] = list((tmp_path / "data" / "guilds").glob("*/*.json"))  # ...but the journal had it
    history = json.loads(path.read_text())["history"]
    assert history[0]["message_content"] == "@Echo keep this"
    assert len(history) == 2


async def test_redis_asked_for_without_the_redis_extra_is_one_line(tmp_path: Path) -> None:
    # The extra hidden: a package named redis that cannot be imported, ahead of site-packages.
    shadow = tmp_path / "shadow" / "redis"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'redis'\")\n")
    env = bot_env(
        tmp_path,
        DISCORD_TOKEN="abc",
        ECHO_STORE="redis",
        ECHO_DATA_DIR=str(tmp_path / "data"),
        PYTHONPATH=str(tmp_path / "shadow"),
    )
    code, output = await run_bot(env, cwd=tmp_path)
    assert code == 2, output
    assert "Traceback" not in output
    [line] = [line for line in output.splitlines() if "redis extra" in line]
    assert "pip install -e '.[redis]'" in line
