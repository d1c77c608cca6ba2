"""Text from Discord cannot drive the operator's terminal: the CLI shows control characters
escaped in human-readable output, and keeps them, as JSON escapes, in ``--json``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from memory import InMemoryConversationManager, JsonFileStore, Message
from tests.fake_llm.server.core import FakeLLM

from .helpers import cli_env, run_cli

GUILD, THREAD, MALLORY = "1310000000000000022", "1310000000000000500", "333333333333333333"
RETITLE = "\x1b]0;pwned\x07"  # sets the terminal window's title
CLIPBOARD = "\x1b]52;c;ZXZpbA==\x07"  # OSC 52: writes the clipboard
HIDE = "line one\rcovered"  # a carriage return hides what came before it
FLIP = "\u202edesrever"  # a bidi override shows the rest backwards


async def hostile_conversation(data: Path) -> None:
    at = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
    async with InMemoryConversationManager(store=JsonFileStore(data)) as manager:
        await manager.create_conversation(
            thread_id=THREAD,
            guild_id=GUILD,
            guild_name=f"Guild{RETITLE}",
            requester=MALLORY,
            channel_id="44",
            created_at=at,
        )
        for n, text in enumerate(
            [f"harbour plans {CLIPBOARD}", f"harbour {HIDE}", f"harbour {FLIP}"]
        ):
            await manager.add_message_to_conversation(
                THREAD,
                Message(
                    message_type="chat",
                    message_content=text,
                    requester=MALLORY,
                    message_id=f"{THREAD[:-1]}{n + 1}",
                    created_at=at,
                    meta={"author_name": f"mallory{RETITLE}"},
                ),
            )
        await manager.set_summary(THREAD, f"Summary {CLIPBOARD} of the harbour")


def assert_escaped(output: str) -> None:
    for raw in ("\x1b", "\x07", "\r", "\u202e"):
        assert raw not in output, (raw, output)
    assert "\\x1b]0;pwned\\x07" in output or "\\x1b]52;c;ZXZpbA==\\x07" in output, output


async def test_human_readable_output_escapes_control_characters(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await hostile_conversation(data)
    env = cli_env(tmp_path, ECHO_DATA_DIR=str(data))
    made = await run_cli("memories", "generate", "--idle-seconds", "0", cwd=tmp_path, env=env)
    assert made.code == 0, made
    for command in (
        ("conversations", "list"),
        ("conversations", "show", THREAD),
        ("conversations", "show", THREAD, "--full"),
        ("memories", "list"),
        ("memories", "show", THREAD),
        ("memories", "search", "--guild", GUILD, "harbour"),
        ("memories", "search", "--guild", GUILD, f"harbour {RETITLE}"),
    ):
        result = await run_cli(*command, cwd=tmp_path, env=env)
        assert result.code == 0, (command, result)
        assert_escaped(result.stdout)
    shown = await run_cli("conversations", "show", THREAD, cwd=tmp_path, env=env)
    assert "mallory\\x1b]0;pwned\\x07" in shown.stdout
    assert "line one\\x0dcovered" in shown.stdout and "\\u202edesrever" in shown.stdout


async def test_json_output_keeps_the_text_as_it_was(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await hostile_conversation(data)
    env = cli_env(tmp_path, ECHO_DATA_DIR=str(data))
    listed = await run_cli("conversations", "list", "--json", cwd=tmp_path, env=env)
    assert "\x1b" not in listed.stdout  # JSON escapes it...
    [row] = json.loads(listed.stdout)
    assert row["guild_name"] == f"Guild{RETITLE}"  # ...and a script gets it back exactly
    assert row["summary"] == f"Summary {CLIPBOARD} of the harbour"


async def test_chat_shows_the_models_control_characters_escaped(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    """The model's words can quote what anyone wrote in a server (recalled memories): in
    ``chat`` they are shown escaped too, newlines and tabs kept for the layout."""
    fake_llm.queue_text(f"Hi {RETITLE}there\n\tindented {HIDE}", reasoning=f"think {CLIPBOARD}")
    fake_llm.queue_text(f"Summary {CLIPBOARD} {FLIP}")  # what /summarize asks the model
    env = cli_env(tmp_path, LLM_PROVIDER="openai", LLM_BASE_URL=fake_llm.base_url, LLM_MODEL="m")
    script = b"hello\n/summarize\n"
    result = await run_cli("chat", "--thinking", cwd=tmp_path, env=env, stdin=script)
    assert result.code == 0, result
    assert_escaped(result.stdout)
    assert result.stdout.splitlines() == [
        "(thinking) think \\x1b]52;c;ZXZpbA==\\x07",
        "Echo: Hi \\x1b]0;pwned\\x07there",
        "\tindented line one\\x0dcovered",
        "Summary so far:",
        "Summary \\x1b]52;c;ZXZpbA==\\x07 \\u202edesrever",
    ]
