"""Wrong Redis credentials are a setting to fix, not an outage to wait out.

The real ``python -m bot``, ``python -m bot worker`` and a CLI command, against a private
``redis-server --requirepass`` (no password, a wrong one, an ACL user without access to
Echo's keys) and against a TCP listener that is not Redis: each exits 2 at once with one line
naming host:port and the cause, and never prints the password.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.redis_support import PrivateRedis, require_redis

from .helpers import cli_env

PASSWORD = "s3cret-Pa55word"
WRONG = "wr0ng-Pa55word"
STRANGER = "str4nger-Pa55word"

COMMANDS = {
    "bot": ["run"],
    "worker": ["worker"],
    "cli": ["conversations", "list"],
}


@pytest.fixture
def locked_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A private redis-server that wants a password, with a user who may touch no Echo key."""
    server = PrivateRedis(tmp_path / "locked-redis", password=PASSWORD)
    try:
        server.start()
    except RuntimeError as exc:
        require_redis(server.url)  # fails under CI, skips on a laptop without redis-server
        raise exc
    server.add_user("stranger", STRANGER, "~elsewhere:*", "+@all")
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture
async def not_redis() -> AsyncIterator[str]:
    """A loopback TCP listener that answers like a web server; yields its host:port."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def run_echo(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Exit code and everything printed; a process still running after 20 s fails the test
    (it is retrying what no retry can fix)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), 20)
    except TimeoutError:
        process.kill()
        out, _ = await process.communicate()
        pytest.fail(f"python -m bot {' '.join(args)} still running after 20 s:\n{out.decode()}")
    assert process.returncode is not None
    return process.returncode, out.decode()


def env_for(tmp_path: Path, url: str) -> dict[str, str]:
    return cli_env(tmp_path, ECHO_STORE="redis", REDIS_URL=url, DISCORD_TOKEN="x")


def the_one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("echo: "), output
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("credentials", "cause"),
    [
        ((None, None), "NOAUTH"),
        ((None, WRONG), "WRONGPASS"),
        (("stranger", STRANGER), "NOPERM"),
    ],
    ids=["no-password", "wrong-password", "no-permission"],
)
async def test_refused_credentials_exit_2_with_one_line_and_no_password(
    locked_redis: PrivateRedis,
    tmp_path: Path,
    command: str,
    credentials: tuple[str | None, str | None],
    cause: str,
) -> None:
    url = locked_redis.url_as(*credentials)
    code, output = await run_echo(COMMANDS[command], env_for(tmp_path, url), tmp_path)
    assert code == 2, output
    line = the_one_line(output)
    assert locked_redis.address in line and cause in line, line
    for secret in (PASSWORD, WRONG, STRANGER):
        assert secret not in output


@pytest.mark.parametrize("command", COMMANDS)
async def test_a_url_that_is_not_redis_exits_2_with_one_line(
    not_redis: str, tmp_path: Path, command: str
) -> None:
    url = f"redis://:{PASSWORD}@{not_redis}/0"
    code, output = await run_echo(COMMANDS[command], env_for(tmp_path, url), tmp_path)
    assert code == 2, output
    line = the_one_line(output)
    assert not_redis in line and "not answer as a Redis server" in line, line
    assert PASSWORD not in output


@pytest.mark.parametrize("command", COMMANDS)
async def test_an_invalid_redis_url_is_shown_with_its_password_masked(
    tmp_path: Path, command: str
) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:not-a-port/0"
    code, output = await run_echo(COMMANDS[command], env_for(tmp_path, url), tmp_path)
    assert code == 2, output
    line = the_one_line(output)
    assert "REDIS_URL='redis://***@127.0.0.1:not-a-port/0'" in line, line
    assert "port" in line and PASSWORD not in output
