"""A broken data folder is never reported as an empty one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

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


async def test_conversations_only_in_a_crashed_bots_journal_are_listed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    crashed = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASHING_BOT, str(data), cwd=os.getcwd()
    )
    assert await asyncio.wait_for(crashed.wait(), 60) == -signal.SIGKILL
    assert not list(data.glob("guilds/*/*.json"))  # no file: only the journal has it
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
