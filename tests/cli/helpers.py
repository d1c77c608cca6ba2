"""Running the real ``python -m bot`` as an operator would, and conversations to look at."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from memory import (
    ConversationStore,
    InMemoryConversationManager,
    JsonFileStore,
    Message,
    MessageType,
)

GUILD = "1310000000000000022"
OTHER_GUILD = "1310000000000000033"
ALICE = "111111111111111111"
BOB = "222222222222222222"
# Three conversations: TOOLS (all four message types) in GUILD, NEWEST in GUILD a day later,
# OLDEST in OTHER_GUILD a day earlier.
TOOLS = "1310000000000000100"
NEWEST = "1310000000000000200"
OLDEST = "1310000000000000300"
T0 = datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC)
TOOL_RESULT = "\n".join(f"result line {n}" for n in range(1, 11))


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def error_line(self) -> str:
        """The one line a failing command prints."""
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got:\n{self.stderr}"
        assert "Traceback" not in self.stderr
        return lines[0]


def cli_env(tmp_path: Path, **values: str) -> dict[str, str]:
    """A fresh shell's environment: no Echo settings of the developer's, data in tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ECHO_", "DISCORD_", "LLM_"))}
    env.pop("NO_COLOR", None)
    env["ECHO_DATA_DIR"] = str(tmp_path / "data")
    env.update(values)
    return env


async def run_cli(
    *args: str,
    cwd: Path,
    env: dict[str, str],
    stdin: bytes | None = None,
    timeout: float = 30,
) -> Result:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


async def write_conversations(where: Path | ConversationStore) -> None:
    """The three conversations above, written with the memory library as the bot would: as
    JSON files in a data folder, or into a store (not yet opened) such as a ``RedisStore``."""
    store = JsonFileStore(where) if isinstance(where, Path) else where
    async with InMemoryConversationManager(store=store) as manager:
        await manager.create_conversation(
            thread_id=TOOLS,
            guild_id=GUILD,
            guild_name="Test Guild",
            requester=ALICE,
            channel_id="1310000000000000044",
            created_at=T0,
        )
        at = iter(T0 + timedelta(seconds=n) for n in range(1, 100))
        for message in [
            Message(
                created_at=next(at),
                message_type=MessageType.CHAT,
                message_content="Hello, Echo! What did we say about pizza?",
                requester=ALICE,
                message_id="1310000000000000101",
                meta={"author_name": "alice"},
            ),
            Message(
                created_at=next(at),
                message_type=MessageType.THINKING,
                message_content="Alice wants an old message: search.",
            ),
            Message(
                created_at=next(at),
                message_type=MessageType.TOOL_CALL,
                tools=[
                    {"id": "call_1", "name": "search_conversation", "params": {"query": "pizza"}}
                ],
            ),
            Message(
                created_at=next(at),
                message_type=MessageType.TOOL_CALL_RESPONSE,
                message_content=TOOL_RESULT,
                tool_call_id="call_1",
                name="search_conversation",
            ),
            Message(
                created_at=next(at),
                message_type=MessageType.CHAT,
                message_content="You agreed on pizza on Friday.",
                meta={"reply_to": "1310000000000000101"},
            ),
            Message(
                created_at=next(at),
                message_type=MessageType.CHAT,
                message_content="Thanks!",
                requester=BOB,
                message_id="1310000000000000102",
                meta={"author_name": "bob"},
            ),
        ]:
            await manager.add_message_to_conversation(TOOLS, message)
        await manager.set_summary(
            TOOLS, "Alice asked what was said about pizza; Echo searched and found Friday."
        )
        await manager.end_conversation(TOOLS)

        await manager.create_conversation(
            thread_id=NEWEST,
            guild_id=GUILD,
            guild_name="Test Guild",
            requester=BOB,
            channel_id="1310000000000000044",
            created_at=T0 + timedelta(days=1),
        )
        await manager.add_message_to_conversation(
            NEWEST,
            Message(
                created_at=T0 + timedelta(days=1, seconds=1),
                message_type=MessageType.CHAT,
                message_content="Morning!",
                requester=BOB,
                message_id="1310000000000000201",
                meta={"author_name": "bob"},
            ),
        )

        await manager.create_conversation(
            thread_id=OLDEST,
            guild_id=OTHER_GUILD,
            guild_name="Other Place",
            requester=ALICE,
            channel_id="1310000000000000055",
            created_at=T0 - timedelta(days=1),
        )
        for n, (requester, text) in enumerate([(ALICE, "Anyone here?"), (None, "I am.")]):
            await manager.add_message_to_conversation(
                OLDEST,
                Message(
                    created_at=T0 - timedelta(days=1) + timedelta(seconds=n + 1),
                    message_type=MessageType.CHAT,
                    message_content=text,
                    requester=requester,
                    message_id=None if requester is None else "1310000000000000301",
                ),
            )
