"""A broken data folder is never reported as an empty one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest
import redis as redis_sync

from tests.redis_support import PrivateRedis

from .helpers import cli_env, run_cli

# A bot that records a conversation, then dies before saving it: only its journal holds it.
CRASHING_BOT = """
import asyncio, os, sys
from memory import InMemoryConversationManager, JsonFileStore, Message

async def main():
    manager = InMemoryConversationManager(store=JsonFileStore(sys.argv[1], fsync="always"))
    await manager.start()
    await manager.create_conversation(
        thread_id="1310000000000000900", guild_id="1310000000000000022", guild_name="G",
        requester="111111111111111111", channel_id="44",
    )
    for n, text in enumerate(["recorded before the crash", "and this too"]):
        await manager.add_message_to_conversation("1310000000000000900", Message(
            message_type="chat", message_content=text, requester="111111111111111111",
            message_id=f"131000000000000090{n + 1}",
        ))
    os.kill(os.getpid(), 9)

asyncio.run(main())
"""


async def test_a_data_folder_that_is_a_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("oops")
    env = cli_env(tmp_path, ECHO_DATA_DIR=str(not_a_folder))
    for command in (("conversations", "list"), ("memories", "list")):
        result = await run_cli(*command, cwd=tmp_path, env=env)
        assert result.code == 2, result
        assert "is a file, not a folder" in result.error_line
        assert "No conversations" not in result.stdout and "No memories" not in result.stdout


def _break(tmp_path: Path, how: str) -> Path:
    """A data folder broken in one way; the path ECHO_DATA_DIR names."""
    (tmp_path / "a-file").write_text("oops")
    data = tmp_path / "data"
    if how == "under a file":
        return tmp_path / "a-file" / "data"
    if how == "a loop of links":
        data.symlink_to(data)
    elif how == "a link to nowhere":
        data.symlink_to(tmp_path / "gone")
    else:  # its guilds or journal is a file
        data.mkdir()
        (data / how.split()[0]).write_text("oops")
    return data


@pytest.mark.parametrize(
    ("how", "cause"),
    [
        ("under a file", "Not a directory"),
        ("a loop of links", "Too many levels of symbolic links"),
        ("a link to nowhere", "which does not exist"),
        ("guilds is a file", "guilds"),
        ("journal is a file", "journal"),
    ],
)
async def test_a_broken_data_folder_is_one_line_and_exit_2(
    tmp_path: Path, how: str, cause: str
) -> None:
    data = _break(tmp_path, how)
    env = cli_env(tmp_path, ECHO_DATA_DIR=str(data))
    commands = [("conversations", "list"), ("memories", "list")]
    commands.append(("memories", "search", "--guild", "1310000000000000022", "harbour"))
    for command in commands:
        result = await run_cli(*command, cwd=tmp_path, env=env)
        assert result.code == 2, (command, result)
        assert str(data) in result.error_line and cause in result.error_line, result
        assert result.stdout == ""


async def test_conversations_only_in_a_crashed_bots_journal_are_listed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    crashed = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASHING_BOT, str(data), cwd=os.getcwd()
    )
    assert await asyncio.wait_for(crashed.wait(), 60) == -signal.SIGKILL
    assert not list(data.glob("guilds/*/*.json"))  # no file: only the journal has it
    # A damaged line can still parse as JSON (a number, a list): passed over, not a failure.
    [segment] = (data / "journal").glob("*.log")
    with segment.open("ab") as handle:
        handle.write(b"12345\n[1]\n")
    env = cli_env(tmp_path, ECHO_DATA_DIR=str(data))

    table = await run_cli("conversations", "list", cwd=tmp_path, env=env)
    assert table.code == 0, table
    assert "1310000000000000900" in table.stdout and "not saved yet" in table.stdout
    assert "No conversations" not in table.stdout

    listed = await run_cli("conversations", "list", "--json", cwd=tmp_path, env=env)
    [row] = json.loads(listed.stdout)
    assert row["thread_id"] == "1310000000000000900" and row["messages"] == 2
    assert row["location"] == str(data / "journal")
    # Listing replays nothing: the journal is the bot's to replay at its next start.
    assert not list(data.glob("guilds/*/*.json")) and list((data / "journal").glob("*.log"))

    # ...and what is listed can be read: shown and exported as its records leave it.
    shown = await run_cli("conversations", "show", "1310000000000000900", cwd=tmp_path, env=env)
    assert shown.code == 0, shown
    assert "recorded before the crash" in shown.stdout and "and this too" in shown.stdout
    assert f"journal:      {data / 'journal'} (not saved to a file yet)" in shown.stdout
    exported = await run_cli(
        "conversations", "export", "1310000000000000900", cwd=tmp_path, env=env
    )
    assert exported.code == 0, exported
    assert len(json.loads(exported.stdout)["history"]) == 2
    assert not list(data.glob("guilds/*/*.json")) and list((data / "journal").glob("*.log"))


# A bot on Redis that begins a conversation while Redis is away, then dies: only its spool
# holds it.
SPOOLING_BOT = """
import asyncio, os, sys
from memory import InMemoryConversationManager, Message, RedisStore

async def main():
    store = RedisStore(sys.argv[1], spool_dir=os.path.join(sys.argv[2], "spool"))
    manager = InMemoryConversationManager(store=store)
    await manager.start()
    print("stop redis", flush=True)
    sys.stdin.readline()
    await manager.create_conversation(
        thread_id="1310000000000000950", guild_id="1310000000000000022", guild_name="G",
        requester="111111111111111111", channel_id="44",
    )
    await manager.add_message_to_conversation("1310000000000000950", Message(
        message_type="chat", message_content="said while Redis was away",
        requester="111111111111111111", message_id="1310000000000000951",
    ))
    os.kill(os.getpid(), 9)

asyncio.run(main())
"""


async def test_conversations_only_in_a_crashed_bots_spool_are_listed(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    data = tmp_path / "data"
    bot = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SPOOLING_BOT,
        private_redis.url,
        str(data),
        cwd=os.getcwd(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert bot.stdout is not None and bot.stdin is not None
    assert await asyncio.wait_for(bot.stdout.readline(), 60) == b"stop redis\n"
    await asyncio.to_thread(private_redis.stop)
    bot.stdin.write(b"go\n")
    assert await asyncio.wait_for(bot.wait(), 60) == -signal.SIGKILL
    await asyncio.to_thread(private_redis.start)
    env = cli_env(
        tmp_path, ECHO_DATA_DIR=str(data), ECHO_STORE="redis", REDIS_URL=private_redis.url
    )
    spool = data / "spool" / "journal"

    table = await run_cli("conversations", "list", cwd=tmp_path, env=env)
    assert table.code == 0, table
    assert "1310000000000000950" in table.stdout and "not in Redis yet" in table.stdout
    listed = await run_cli("conversations", "list", "--json", cwd=tmp_path, env=env)
    [row] = json.loads(listed.stdout)
    assert (row["thread_id"], row["messages"], row["location"]) == (
        "1310000000000000950",
        1,
        str(spool),
    )
    shown = await run_cli("conversations", "show", "1310000000000000950", cwd=tmp_path, env=env)
    assert shown.code == 0, shown
    assert "said while Redis was away" in shown.stdout and "(not in Redis yet)" in shown.stdout
    # Reading flushes nothing: the spool is the bot's to flush at its next start.
    assert list(spool.glob("*.log"))
    client = redis_sync.Redis.from_url(private_redis.url)
    try:
        assert client.keys("*1310000000000000950*") == []
    finally:
        client.close()
