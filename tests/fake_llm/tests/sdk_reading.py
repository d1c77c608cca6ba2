"""What the fake LLM tests share: the model, messages and tool they ask with, and how they
read a stream back as a client would (its text, its finish reasons, its tool calls merged)."""

from __future__ import annotations

from typing import Any

import openai
from openai.types.chat import ChatCompletionChunk

MODEL = "echo-test-model"
MESSAGES: list[Any] = [
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


async def stream_chunks(client: openai.AsyncOpenAI, **kwargs: Any) -> list[ChatCompletionChunk]:
    stream = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, **kwargs
    )
    return [chunk async for chunk in stream]


def joined_content(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def finish_reasons(chunks: list[ChatCompletionChunk]) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


def accumulate_tool_calls(chunks: list[ChatCompletionChunk]) -> dict[int, dict[str, str]]:
    """What a streaming client has to do: merge fragments by index."""
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            call = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += tc.id or ""
            if tc.function is not None:
                call["name"] += tc.function.name or ""
                call["arguments"] += tc.function.arguments or ""
    return calls
