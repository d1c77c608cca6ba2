"""Reading what the real Echo did in an end-to-end test: its messages in a channel, the
replies in flight, the conversation it recorded and saved, and what it sent the model."""

from __future__ import annotations

import json
from typing import Any

from memory import Conversation

from .echo_harness import Echo

CURSOR = "▌"
PERM_MENTION_EVERYONE = 1 << 17


def echo_messages(echo: Echo, channel_id: int) -> list[dict[str, Any]]:
    """Echo's live messages in a channel or thread, oldest first."""
    return [
        m
        for m in echo.emu.messages_in(channel_id)
        if int(m["author"]["id"]) == echo.emu.bot_user.id
    ]


async def replies_done(echo: Echo, timeout: float = 10) -> None:
    """Wait until no reply is being written (the cog's worker tasks have all finished)."""
    await echo.emu.wait_for(
        lambda: all(t.done() for t in echo.bot.reply_tasks) or None,
        timeout=timeout,
        what="the replies in flight to finish",
    )


def kinds(conversation: Conversation | None) -> list[str]:
    assert conversation is not None
    return [m.message_type.value for m in conversation.history]


def saved_history(echo: Echo) -> list[dict[str, Any]]:
    [path] = echo.files()
    return json.loads(path.read_text())["history"]


def sent_text(request: Any) -> str:
    """Everything a request put in front of the model, as one string."""
    return json.dumps(request.messages, ensure_ascii=False)


def assert_tool_calls_complete(messages: list[dict[str, Any]]) -> None:
    """Every assistant tool call is followed by exactly its results, and no result is stray."""
    index = 0
    while index < len(messages):
        message = messages[index]
        assert message["role"] != "tool", f"a tool result without its call at {index}: {messages}"
        if message["role"] == "assistant" and message.get("tool_calls"):
            ids = [c["id"] for c in message["tool_calls"]]
            results = messages[index + 1 : index + 1 + len(ids)]
            assert [r["role"] for r in results] == ["tool"] * len(ids), messages
            assert sorted(r["tool_call_id"] for r in results) == sorted(ids)
            index += 1 + len(ids)
            continue
        index += 1
