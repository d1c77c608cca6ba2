"""Start-up against a Discord that cannot be reached: ``python -m bot`` and ``python -m bot sync``
say what is wrong in one line, promptly, and a signal while logging in is a clean stop."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.config import load_settings
from tests.discord_emulator import DiscordEmulator
from tests.e2e.test_echo_process import bot_env, emulator_env, run_bot, start_bot


class SilentListener:
    """A loopback TCP server that accepts every connection and never answers a byte."""

    def __init__(self) -> None:
        self.accepted = 0
        self._release = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        await self._release.wait()
        writer.close()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self._release.set()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest_asyncio.fixture
async def silent_port() -> AsyncIterator[int]:
    listener = SilentListener()
    port = await listener.start()
    try:
        yield port
    finally:
        await listener.close()


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening, so no other process
    can take it meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def silent_api_env(tmp_path: Path, port: int, **values: str) -> dict[str, str]:
    return bot_env(
        tmp_path,
        DISCORD_TOKEN="a.b.c",
        DISCORD_API_BASE=f"http://127.0.0.1:{port}/api/v10",
        ECHO_DATA_DIR=str(tmp_path / "data"),
        **values,
    )


def test_the_default_start_up_deadline_is_under_30_seconds() -> None:
    assert load_settings({}, env_file=None).discord_connect_timeout_seconds <= 25


async def test_an_api_that_never_answers_is_one_line_within_the_deadline(
    silent_port: int, tmp_path: Path
) -> None:
    env = silent_api_env(tmp_path, silent_port, DISCORD_CONNECT_TIMEOUT_SECONDS="2")
    started = time.monotonic()
    code, output = await run_bot(env, cwd=tmp_path, timeout=60)
    elapsed = time.monotonic() - started
    assert code == 2, output
    last = output.strip().splitlines()[-1]
    assert last == (
        f"echo: cannot reach Discord at http://127.0.0.1:{silent_port}/api/v10: "
        "no answer within 2 s (timed out)"
    )
    assert "Traceback" not in output
    assert elapsed < 15, elapsed


async def test_an_unreachable_gateway_is_one_line_and_exit_2(
    discord_emulator: DiscordEmulator, refusing_port: int, tmp_path: Path
) -> None:
    port = refusing_port
    env = emulator_env(discord_emulator, tmp_path, DISCORD_GATEWAY_URL=f"ws://127.0.0.1:{port}")
    code, output = await run_bot(env, cwd=tmp_path)
    assert code == 2, output
    last = output.strip().splitlines()[-1]
    assert last.startswith(f"echo: cannot reach the Discord gateway at ws://127.0.0.1:{port}: ")
    assert "Connect call failed" in last or "Cannot connect" in last, last
    assert "Traceback" not in output
    assert " ERROR " not in output, output
    # discord.py's voice-library notes are no news for a bot that never speaks.
    assert "PyNaCl" not in output and "davey" not in output, output


async def test_a_gateway_that_never_answers_is_one_line_within_the_deadline(
    discord_emulator: DiscordEmulator, silent_port: int, tmp_path: Path
) -> None:
    env = emulator_env(
        discord_emulator,
        tmp_path,
        DISCORD_GATEWAY_URL=f"ws://127.0.0.1:{silent_port}",
        DISCORD_CONNECT_TIMEOUT_SECONDS="2",
    )
    started = time.monotonic()
    code, output = await run_bot(env, cwd=tmp_path, timeout=60)
    assert code == 2, output
    assert output.strip().splitlines()[-1] == (
        f"echo: cannot reach the Discord gateway at ws://127.0.0.1:{silent_port}: "
        "no answer within 2 s (timed out)"
    )
    assert "Traceback" not in output
    assert time.monotonic() - started < 15


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_while_logging_in_is_a_clean_stop(
    silent_port: int, tmp_path: Path, sig: int
) -> None:
    bot = await start_bot(silent_api_env(tmp_path, silent_port), tmp_path)
    try:
        await bot.wait_for_line("logging in using static token")
        code = await bot.stop(sig)
    finally:
        await bot.kill()
    assert code == 0, bot.log
    assert "cannot reach" not in bot.log
    assert "Traceback" not in bot.log
    assert bot.lines[-1].endswith("bot: stopped"), bot.log


async def test_sync_with_an_api_that_never_answers_is_one_line_and_exit_2(
    silent_port: int, tmp_path: Path
) -> None:
    env = silent_api_env(tmp_path, silent_port, DISCORD_CONNECT_TIMEOUT_SECONDS="2")
    code, output = await run_bot(env, tmp_path, "sync", timeout=60)
    assert code == 2, output
    assert output.strip() == (
        f"echo: cannot reach Discord at http://127.0.0.1:{silent_port}/api/v10: "
        "no answer within 2 s (timed out)"
    )


async def test_sync_with_nothing_listening_exits_2_like_run(
    refusing_port: int, tmp_path: Path
) -> None:
    port = refusing_port
    env = silent_api_env(tmp_path, port)
    code, output = await run_bot(env, tmp_path, "sync")
    run_code, run_output = await run_bot(env, cwd=tmp_path)
    assert (code, run_code) == (2, 2), output + run_output
    line = f"echo: cannot reach Discord at http://127.0.0.1:{port}/api/v10: "
    assert output.strip().startswith(line), output
    assert run_output.strip().splitlines()[-1].startswith(line), run_output
