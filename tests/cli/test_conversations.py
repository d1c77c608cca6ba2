"""``python -m bot conversations list|show|export`` on files the memory library wrote."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import sys
from pathlib import Path

import pytest

from memory import Conversation, JsonFileStore
from tests.cli.helpers import (
    ALICE,
    BOB,
    GUILD,
    NEWEST,
    OLDEST,
    OTHER_GUILD,
    TOOLS,
    cli_env,
    run_cli,
    write_conversations,
)


@pytest.fixture
async def data(tmp_path: Path) -> Path:
    await write_conversations(tmp_path / "data")
    return tmp_path / "data"


def the_file(data: Path, thread_id: str) -> Path:
    [path] = data.glob(f"guilds/*/*_{thread_id}.json")
    return path


# --- list -----------------------------------------------------------------------------------


async def test_list_with_nothing_recorded_says_so(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    del env["ECHO_DATA_DIR"]  # the default, ./data, which does not exist yet
    result = await run_cli("conversations", "list", cwd=tmp_path, env=env)
    assert (result.code, result.stdout, result.stderr) == (
        0,
        f"No conversations in .{os.sep}data yet.\n",
        "",
    )
    assert not (tmp_path / "data").exists()  # looking never creates anything
    result = await run_cli("conversations", "list", "--json", cwd=tmp_path, env=env)
    assert result.code == 0 and json.loads(result.stdout) == []


async def test_list_is_a_table_newest_first(tmp_path: Path, data: Path) -> None:
    result = await run_cli("conversations", "list", cwd=tmp_path, env=cli_env(tmp_path))
    assert result.code == 0, result
    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        "THREAD", "GUILD", "REQUESTER", "CREATED", "(UTC)", "UPDATED", "(UTC)", "MSGS", "SUMMARY"
    ]  # fmt: skip
    assert [row.split()[0] for row in rows] == [NEWEST, TOOLS, OLDEST]
    tools = rows[1]
    assert f"Test Guild ({GUILD})" in tools
    assert f"alice ({ALICE})" in tools
    assert "2026-11-20 10:00" in tools
    assert " 6  " in tools  # messages
    # The summary's head, cut to about 40 characters; ended conversations are marked.
    assert "[ended] Alice asked what was said about pizza;…" in tools
    assert "Friday" not in tools
    assert "\x1b[" not in result.stdout  # not a terminal: no colours


async def test_list_json_has_every_field_newest_first(tmp_path: Path, data: Path) -> None:
    result = await run_cli("conversations", "list", "--json", cwd=tmp_path, env=cli_env(tmp_path))
    assert result.code == 0, result
    rows = json.loads(result.stdout)
    assert [r["thread_id"] for r in rows] == [NEWEST, TOOLS, OLDEST]
    assert [r["messages"] for r in rows] == [1, 6, 2]
    newest, tools, oldest = rows
    assert tools["summary"] == (
        "Alice asked what was said about pizza; Echo searched and found Friday."
    )
    assert tools["guild_id"] == GUILD and tools["guild_name"] == "Test Guild"
    assert tools["requester"] == ALICE and tools["requester_name"] == "alice"
    assert tools["created_at"] == "2026-11-20T10:00:00+00:00"
    assert tools["updated_at"] > tools["created_at"]
    assert tools["ended_at"] is not None and newest["ended_at"] is None
    assert Path(tools["location"]) == the_file(data, TOOLS)
    assert "file" not in tools  # one field for where it is kept, not two copies of it
    assert oldest["guild_id"] == OTHER_GUILD and newest["requester"] == BOB


async def test_list_of_one_guild(tmp_path: Path, data: Path) -> None:
    env = cli_env(tmp_path)
    mine, other, none = await asyncio.gather(
        run_cli("conversations", "list", "--json", "--guild", GUILD, cwd=tmp_path, env=env),
        run_cli("conversations", "list", "--guild", OTHER_GUILD, cwd=tmp_path, env=env),
        run_cli("conversations", "list", "--guild", "999", cwd=tmp_path, env=env),
    )
    assert [r["thread_id"] for r in json.loads(mine.stdout)] == [NEWEST, TOOLS]
    assert [row.split()[0] for row in other.stdout.splitlines()[1:]] == [OLDEST]
    assert none.code == 0 and none.stdout.startswith("No conversations of guild 999 in ")


async def test_list_with_a_bad_guild_id_is_one_line(tmp_path: Path) -> None:
    guilds = ["12a", "../x"]
    env = cli_env(tmp_path)
    results = await asyncio.gather(
        *(run_cli("conversations", "list", "--guild", g, cwd=tmp_path, env=env) for g in guilds)
    )
    for guild, result in zip(guilds, results, strict=True):
        assert result.code == 2
        assert result.error_line == (
            f"echo: --guild must be a string of digits (a Discord server id), got {guild!r}"
        )
        assert result.stdout == ""


async def test_list_works_beside_a_running_bot_and_reports_a_broken_file(
    tmp_path: Path, data: Path
) -> None:
    the_file(data, NEWEST).write_text('{"thread_id": "oops"')
    async with JsonFileStore(data):  # holds the folder lock, as a running bot does
        result = await run_cli(
            "conversations", "list", "--json", cwd=tmp_path, env=cli_env(tmp_path)
        )
    assert result.code == 0, result
    rows = {r["thread_id"]: r for r in json.loads(result.stdout)}
    assert rows[TOOLS]["messages"] == 6
    assert rows[NEWEST]["messages"] is None and "does not parse" in rows[NEWEST]["error"]
    assert the_file(data, NEWEST).read_text() == '{"thread_id": "oops"'  # never moved


# --- show -----------------------------------------------------------------------------------


async def test_show_is_a_transcript_with_thinking_and_tools_set_apart(
    tmp_path: Path, data: Path
) -> None:
    result = await run_cli("conversations", "show", TOOLS, cwd=tmp_path, env=cli_env(tmp_path))
    assert result.code == 0, result
    assert result.stderr == ""
    text = result.stdout
    head, body = text.split("\n\n", 1)
    assert head.splitlines()[0] == f"Conversation {TOOLS}"
    assert f"guild:        Test Guild ({GUILD})" in head
    assert f"requester:    alice ({ALICE})" in head
    assert f"participants: alice ({ALICE}), bob ({BOB})" in head
    assert "created:      2026-11-20 10:00:00 UTC" in head
    assert "summary:      Alice asked what was said about pizza" in head
    assert "ended:        20" in head
    assert str(the_file(data, TOOLS)) in head
    lines = body.splitlines()
    assert lines[0] == (
        f"[2026-11-20 10:00:01] alice ({ALICE}): Hello, Echo! What did we say about pizza?"
    )
    assert (
        lines[1]
        == "[2026-11-20 10:00:02]   … Echo is thinking: Alice wants an old message: search."
    )
    assert lines[2] == '[2026-11-20 10:00:03]   → tool search_conversation {"query": "pizza"}'
    assert lines[3] == "[2026-11-20 10:00:04]   ← search_conversation: result line 1"
    assert lines[4].strip() == "result line 2"
    assert lines[6].strip() == "… (7 more lines; --full shows them)"
    assert lines[7] == "[2026-11-20 10:00:05] Echo: You agreed on pizza on Friday."
    assert lines[8] == f"[2026-11-20 10:00:06] bob ({BOB}): Thanks!"
    assert len(lines) == 9
    assert "result line 10" not in text


async def test_show_full_shows_long_tool_results(tmp_path: Path, data: Path) -> None:
    result = await run_cli(
        "conversations", "show", TOOLS, "--full", cwd=tmp_path, env=cli_env(tmp_path)
    )
    assert result.code == 0
    assert "result line 10" in result.stdout and "more lines" not in result.stdout


async def test_show_of_a_person_without_a_name_uses_the_id(tmp_path: Path, data: Path) -> None:
    result = await run_cli("conversations", "show", OLDEST, cwd=tmp_path, env=cli_env(tmp_path))
    assert result.code == 0
    assert f"] {ALICE}: Anyone here?" in result.stdout
    assert "] Echo: I am." in result.stdout
    assert f"Other Place ({OTHER_GUILD})" in result.stdout


def _show_on_a_terminal(tmp_path: Path, **env: str) -> str:
    leader, follower = pty.openpty()
    try:
        import subprocess

        subprocess.run(
            [sys.executable, "-m", "bot", "conversations", "show", TOOLS],
            cwd=tmp_path,
            env=cli_env(tmp_path, **env),
            stdout=follower,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=30,
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)


async def test_show_has_colours_on_a_terminal_unless_no_color(tmp_path: Path, data: Path) -> None:
    coloured = await asyncio.to_thread(_show_on_a_terminal, tmp_path)
    assert "\x1b[2;3m… Echo is thinking: \x1b[0m" in coloured
    plain = await asyncio.to_thread(_show_on_a_terminal, tmp_path, NO_COLOR="1")
    assert "\x1b[" not in plain and "… Echo is thinking: " in plain


async def test_show_of_an_unknown_conversation_is_one_line_exit_1(
    tmp_path: Path, data: Path
) -> None:
    result = await run_cli("conversations", "show", "123", cwd=tmp_path, env=cli_env(tmp_path))
    assert result.code == 1
    assert result.error_line == f"echo: no conversation 123 in {data}"
    assert result.stdout == ""


async def test_show_of_a_bad_id_is_one_line_exit_2(tmp_path: Path) -> None:
    ids = ["12a", "../x", "1" * 21]
    env = cli_env(tmp_path)
    results = await asyncio.gather(
        *(run_cli("conversations", "show", i, cwd=tmp_path, env=env) for i in ids)
    )
    for thread_id, result in zip(ids, results, strict=True):
        assert result.code == 2
        assert result.error_line == (
            f"echo: THREAD_ID must be a string of digits (a Discord thread id), got {thread_id!r}"
        )


async def test_show_of_a_broken_file_says_why(tmp_path: Path, data: Path) -> None:
    the_file(data, NEWEST).write_text("{ not json")
    result = await run_cli("conversations", "show", NEWEST, cwd=tmp_path, env=cli_env(tmp_path))
    assert result.code == 1
    assert result.error_line.startswith(f"echo: the file of conversation {NEWEST} does not parse")


# --- export ---------------------------------------------------------------------------------


async def test_export_to_stdout_is_the_file_and_round_trips(tmp_path: Path, data: Path) -> None:
    result = await run_cli("conversations", "export", TOOLS, cwd=tmp_path, env=cli_env(tmp_path))
    assert result.code == 0 and result.stderr == ""
    stored = the_file(data, TOOLS).read_text()
    assert result.stdout == stored
    conversation = Conversation.from_json(result.stdout)
    assert conversation.thread_id == TOOLS and len(conversation.history) == 6
    assert conversation.to_json() == stored
    assert [m.message_type.value for m in conversation.history] == [
        "chat", "thinking", "tool_call", "tool_call_response", "chat", "chat"
    ]  # fmt: skip


async def test_export_to_a_file_never_overwrites_without_force(tmp_path: Path, data: Path) -> None:
    env = cli_env(tmp_path)
    target = tmp_path / "out.json"
    result = await run_cli(
        "conversations", "export", TOOLS, "-o", str(target), cwd=tmp_path, env=env
    )
    assert result.code == 0, result
    assert result.stdout == f"Exported conversation {TOOLS} (6 messages) to {target}\n"
    assert target.read_bytes() == the_file(data, TOOLS).read_bytes()

    again = await run_cli(
        "conversations", "export", NEWEST, "-o", str(target), cwd=tmp_path, env=env
    )
    assert again.code == 2
    assert again.error_line == f"echo: {target} exists: add --force to overwrite it"
    assert Conversation.from_json(target.read_text()).thread_id == TOOLS  # untouched

    forced = await run_cli(
        "conversations", "export", NEWEST, "-o", str(target), "--force", cwd=tmp_path, env=env
    )
    assert forced.code == 0
    assert Conversation.from_json(target.read_text()).thread_id == NEWEST


async def test_export_errors_are_one_line(tmp_path: Path, data: Path) -> None:
    env = cli_env(tmp_path)
    unknown, bad, folder = await asyncio.gather(
        run_cli("conversations", "export", "42", cwd=tmp_path, env=env),
        run_cli("conversations", "export", "4 2", cwd=tmp_path, env=env),
        run_cli("conversations", "export", TOOLS, "-o", str(tmp_path), cwd=tmp_path, env=env),
    )
    assert unknown.code == 1 and unknown.error_line == f"echo: no conversation 42 in {data}"
    assert unknown.stdout == ""
    assert bad.code == 2 and bad.error_line.startswith("echo: THREAD_ID must be a string of digits")
    assert (
        folder.code == 2 and folder.error_line == f"echo: {tmp_path} is a folder: give a file name"
    )


async def test_a_bad_setting_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ECHO_IDLE_SECONDS=soon\n")
    result = await run_cli("conversations", "list", cwd=tmp_path, env=cli_env(tmp_path))
    assert result.code == 2
    assert result.error_line.startswith("echo: invalid setting ECHO_IDLE_SECONDS='soon'")
