"""What the ``OpenAIProvider`` tests share: the model, messages and tool they ask with, and
how they read a provider's stream (its events, its text, its failure)."""

from __future__ import annotations

import socket
from contextlib import aclosing
from typing import Any

import pytest

from bot.llm import (
    ContentDelta,
    Finish,
    LLMError,
    OpenAIProvider,
    ProviderEvent,
    ReasoningDelta,
)

MODEL = "echo-test-model"
MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are Echo."},
    {"role": "user", "content": "What's the weather in Paris?"},
]
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


async def collect(llm: OpenAIProvider, **kwargs: Any) -> list[ProviderEvent]:
    """The events before the stream's one closing ``Finish`` (checked to be last)."""
    async with aclosing(llm.stream_chat(MESSAGES, **kwargs)) as stream:
        events = [event async for event in stream]
    assert isinstance(events[-1], Finish), events[-1:]
    assert not any(isinstance(e, Finish) for e in events[:-1])
    return events[:-1]


def texts(events: list[ProviderEvent], kind: type[ReasoningDelta | ContentDelta]) -> str:
    return "".join(e.text for e in events if isinstance(e, kind))


async def failure(llm: OpenAIProvider, **kwargs: Any) -> LLMError:
    with pytest.raises(LLMError) as caught:
        await collect(llm, **kwargs)
    return caught.value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
