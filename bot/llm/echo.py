"""The offline model: repeats the user, so a bot with only a Discord token works end to end.

A newcomer can see threads open, replies stream, and conversations saved before they
configure any LLM; each reply is shown under a line that says it is no real model and how to
get one (the provider's ``notice``: shown, never recorded).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

from bot.llm.base import ChatProvider, ContentDelta, ProviderEvent

log = logging.getLogger(__name__)

__all__ = ["ECHO_NOTICE", "ECHO_PREFIX", "EchoProvider"]

ECHO_NOTICE = (
    "-# 🔁 offline echo model: for real answers the bot's operator sets LLM_MODEL "
    "(and LLM_BASE_URL for a local server)"
)
ECHO_PREFIX = "You said: "
_NOTHING = "(nothing I could read)"
_EXTRACT_CHARS = 500
_PIECES = 4
# The agent prefixes people's messages with "[Display Name] "; the echo repeats the words only.
_SPEAKER = re.compile(r"^\[[^\]\n]{1,100}\] ")


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last user message, as given (string or text content parts)."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(
                part.get("text", "")
                for part in content
                if isinstance(part, dict) and part.get("type") == "text"
            )
        return ""
    return ""


def _pieces(text: str, count: int) -> list[str]:
    """Split into a few pieces at spaces, so the reply streams like a real one."""
    words = text.split(" ")
    size = max(1, -(-len(words) // count))
    groups = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [g + " " for g in groups[:-1]] + groups[-1:]


class EchoProvider(ChatProvider):
    """Answers without a network; never calls tools."""

    offline = True
    notice = ECHO_NOTICE

    def __init__(self) -> None:
        self.model = "echo"

    def __repr__(self) -> str:
        return "EchoProvider()"

    async def stream_chat(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
    ) -> AsyncIterator[ProviderEvent]:
        said = _SPEAKER.sub("", last_user_text(messages), count=1) or _NOTHING
        yield ContentDelta(ECHO_PREFIX)
        for piece in _pieces(said, _PIECES):
            await asyncio.sleep(0)  # let the agent's editor run between pieces, like a stream
            if piece:
                yield ContentDelta(piece)

    async def complete(self, messages: list[dict[str, Any]], *, json_mode: bool = False) -> str:
        """The last user message, cut short; in json_mode wrapped as ``{"text": ...}``.

        Callers check ``offline`` and summarise extractively themselves; this only keeps
        a caller that does not from crashing.
        """
        text = " ".join(last_user_text(messages).split())
        if len(text) > _EXTRACT_CHARS:
            text = text[: _EXTRACT_CHARS - 1].rstrip() + "…"
        if json_mode:
            return json.dumps({"text": text}, ensure_ascii=False)
        return text or _NOTHING
