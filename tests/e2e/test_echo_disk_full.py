"""A full disk under the real ``python -m bot``: one notice per thread, not one per message, and
an idle conversation that cannot be saved is tried again less and less often, then saved.

The disk is "filled" by lowering the running bot's RLIMIT_FSIZE to 0 (``prlimit``): every write
that would grow a file fails with EFBIG, the same path through Echo as ENOSPC, without filling
the test machine's disk. Python ignores SIGXFSZ, so the process lives on, as on a full disk.
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.discord_emulator import DiscordEmulator
from tests.e2e.agent_views import CURSOR
from tests.e2e.test_echo_process import BotProcess, emulator_env, start_bot


@contextmanager
def disk_full(bot: BotProcess) -> Iterator[None]:
    pid = bot.process.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, hard))
    try:
        yield
    finally:
        if bot.process.returncode is None:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))


def echo_messages(emu: DiscordEmulator, channel_id: int) -> list[dict[str, Any]]:
    return [m for m in emu.messages_in(channel_id) if int(m["author"]["id"]) == emu.bot_user.id]


def lines_with(bot: BotProcess, text: str) -> list[str]:
    return [line for line in bot.lines if text in line]


async def wait_for_count(bot: BotProcess, text: str, count: int, timeout: float = 15) -> list[str]:
    async with asyncio.timeout(timeout):
        while len(found := lines_with(bot, text)) < count:
            if bot.process.returncode is not None:
                raise AssertionError(f"the bot exited:\n{bot.log}")
            await asyncio.sleep(0.02)
    return found


async def test_a_full_disk_is_said_once_per_thread_not_once_per_message(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    bot = await start_bot(emulator_env(emu, tmp_path), tmp_path)
    try:
        await bot.wait_for_line("ready:")
        await emu.post_message(world.channel.id, world.user.id, f"<@{emu.bot_user.id}> hello")
        thread = await emu.wait_for_thread(world.channel.id, timeout=10)
        await emu.wait_for_message(
            thread.id, predicate=lambda m: not m["content"].endswith(CURSOR), timeout=10
        )
        before = len(echo_messages(emu, thread.id))
        with disk_full(bot):
            for n in range(6):
                await emu.post_message(thread.id, world.user.id, f"lost {n}")
                await wait_for_count(bot, "could not record message", n + 1)
            await asyncio.sleep(0.2)  # a notice for the last one would be out by now
            notices = echo_messages(emu, thread.id)[before:]
        await emu.post_message(thread.id, world.user.id, "space is back")
        await emu.wait_for_message(
            thread.id,
            predicate=lambda m: (
                "space is back" in m["content"] and not m["content"].endswith(CURSOR)
            ),
            timeout=10,
        )
        code = await bot.stop(signal.SIGTERM)
    finally:
        await bot.kill()
    assert code == 0, bot.log
    assert len(notices) == 1, [m["content"] for m in notices]
    assert "save" in notices[0]["content"]
    assert len(lines_with(bot, "could not record message")) == 6  # the operator sees each
    [path] = list((tmp_path / "data" / "guilds").glob("*/*.json"))
    contents = [m["message_content"] for m in json.loads(path.read_text())["history"]]
    assert "space is back" in contents
    assert not any(c.startswith("lost ") for c in contents)  # refused, and said so


async def test_an_idle_conversation_that_cannot_be_saved_is_retried_with_backoff(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    bot = await start_bot(emulator_env(emu, tmp_path, ECHO_IDLE_SECONDS="1"), tmp_path)
    files = tmp_path / "data" / "guilds"
    try:
        await bot.wait_for_line("ready:")
        await emu.post_message(world.channel.id, world.user.id, f"<@{emu.bot_user.id}> hi")
        thread = await emu.wait_for_thread(world.channel.id, timeout=10)
        await emu.wait_for_message(
            thread.id, predicate=lambda m: not m["content"].endswith(CURSOR), timeout=10
        )
        with disk_full(bot):  # recorded (in the journal); its idle save, 1 s later, fails
            failures = await wait_for_count(bot, "could not save idle conversation", 2)
            assert not list(files.glob("*/*.json"))
        # The next attempt comes without a new message, and saves it.
        async with asyncio.timeout(15):
            while not list(files.glob("*/*.json")):
                await asyncio.sleep(0.05)
        attempts = len(lines_with(bot, "could not save idle conversation"))
        code = await bot.stop(signal.SIGTERM)
    finally:
        await bot.kill()
    assert code == 0, bot.log
    delays = [float(re.search(r"will retry in ([\d.]+) s", line).group(1)) for line in failures]  # type: ignore[union-attr]
    assert delays == [1.0, 2.0], failures
    assert attempts == 2, bot.log
    [path] = list(files.glob("*/*.json"))
    history = json.loads(path.read_text())["history"]
    assert history[0]["message_content"] == "@Echo hi"
