"""``OpenAIProvider`` through the real ``openai`` SDK against the loopback fake server:
streamed text, reasoning and tool calls, and servers that stretch OpenAI's streaming shape.

Nothing of the SDK is mocked: what passes here is what the bot sees from a real
OpenAI-compatible endpoint, errors and retries included.
"""

from __future__ import annotations

import json
import time
from contextlib import aclosing
from typing import Any

from bot.llm import (
    ContentDelta,
    Finish,
    OpenAIProvider,
    ReasoningDelta,
    ToolCallRequest,
)
from bot.llm.openai_provider import _Turn
from tests.fake_llm import FakeLLM

from .helpers import (
    MESSAGES,
    MODEL,
    WEATHER_TOOL,
    collect,
    texts,
)

# --- streaming -------------------------------------------------------------------------------


async def test_text_deltas_join_to_the_answer(fake_llm: FakeLLM, provider: OpenAIProvider) -> None:
    text = "Sunny and 24 degrees in Paris today."
    fake_llm.queue_text(text, chunk_size=5)

    events = await collect(provider)

    assert all(isinstance(e, ContentDelta) for e in events)
    assert len(events) == 8
    assert texts(events, ContentDelta) == text


async def test_deltas_are_yielded_as_they_arrive(
    fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    fake_llm.queue_text("first...second..", chunk_size=8, chunk_delay=0.25)
    async with aclosing(provider.stream_chat(MESSAGES)) as events:
        first = await anext(events)
        first_at = time.monotonic()
        rest = [event async for event in events]
        done_at = time.monotonic()

    assert first == ContentDelta("first...")
    assert rest == [ContentDelta("second.."), Finish("stop")]
    # The first piece came out while the server was still sleeping before the second.
    assert done_at - first_at > 0.2


async def test_reasoning_content_field(fake_llm: FakeLLM, provider: OpenAIProvider) -> None:
    fake_llm.queue_text("It is sunny.", reasoning="Look up the weather, then answer.")

    events = await collect(provider)

    assert texts(events, ReasoningDelta) == "Look up the weather, then answer."
    assert texts(events, ContentDelta) == "It is sunny."
    kinds = [type(e) for e in events]
    assert kinds.index(ContentDelta) > kinds.index(ReasoningDelta)


async def test_reasoning_field_openrouter_spelling(
    fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    fake_llm.queue_text("Hi!", reasoning="Greet back.", reasoning_field="reasoning")

    events = await collect(provider)

    assert texts(events, ReasoningDelta) == "Greet back."
    assert texts(events, ContentDelta) == "Hi!"


async def test_think_tags_become_reasoning(fake_llm: FakeLLM, provider: OpenAIProvider) -> None:
    fake_llm.queue_text("Bonjour!", reasoning="French user; answer in French.", think_tags=True)

    events = await collect(provider)

    assert texts(events, ReasoningDelta) == "French user; answer in French."
    assert texts(events, ContentDelta) == "Bonjour!"
    assert not any("think>" in e.text for e in events if not isinstance(e, ToolCallRequest))


async def test_reasoning_only_answer_is_not_empty(
    fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    """The model thought and ran out of tokens: the agent decides, not an 'empty' error."""
    fake_llm.queue_text("", reasoning="Hmm, let me think about this for a long")

    events = await collect(provider)

    assert texts(events, ReasoningDelta) == "Hmm, let me think about this for a long"


async def test_request_carries_messages_tools_and_model(
    fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    fake_llm.queue_text("ok")

    await collect(provider, tools=[WEATHER_TOOL])

    [request] = fake_llm.chat_requests
    assert request.messages == MESSAGES
    assert request.tools == [WEATHER_TOOL]
    assert request.model == MODEL
    assert request.stream is True
    assert request.authorization == f"Bearer {fake_llm.api_key}"


async def test_no_tools_means_no_tools_field(fake_llm: FakeLLM, provider: OpenAIProvider) -> None:
    fake_llm.queue_text("ok")

    await collect(provider)

    assert "tools" not in (fake_llm.chat_requests[0].body or {})


async def test_tool_calls_assembled_from_fragments(
    fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    fake_llm.queue_tool_calls(
        [("get_weather", {"city": "Paris", "unit": "celsius"}), ("get_weather", '{"city": "Lyo')],
        content="Let me check both.",
        chunk_size=4,
    )

    events = await collect(provider, tools=[WEATHER_TOOL])

    calls = [e for e in events if isinstance(e, ToolCallRequest)]
    assert [c.name for c in calls] == ["get_weather", "get_weather"]
    assert json.loads(calls[0].arguments) == {"city": "Paris", "unit": "celsius"}
    assert calls[1].arguments == '{"city": "Lyo'  # malformed, passed through verbatim
    assert calls[0].id.startswith("call_")
    assert calls[0].id != calls[1].id
    assert texts(events, ContentDelta) == "Let me check both."
    # Calls come once the stream is over, after every piece of text.
    assert events[-2:] == calls


async def test_tool_call_ids_are_the_models(fake_llm: FakeLLM, provider: OpenAIProvider) -> None:
    fake_llm.queue_tool_call("get_weather", {"city": "Oslo"}, call_id="call_abc123")

    events = await collect(provider, tools=[WEATHER_TOOL])

    assert events == [ToolCallRequest("call_abc123", "get_weather", '{"city": "Oslo"}')]


# --- servers that stretch OpenAI's streaming shape -------------------------------------------


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    """A chunk as the provider gets it from the SDK: the event's decoded JSON."""
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def test_fragments_without_index_repeated_names_and_ids() -> None:
    turn = _Turn()
    fragments = [
        {"id": "a", "function": {"name": "f", "arguments": '{"x":'}},
        {"id": "a", "function": {"name": "f", "arguments": " 1}"}},
        {"id": "b", "function": {"name": "g", "arguments": "{}"}},
    ]
    events = [e for f in fragments for e in turn.feed(chunk({"tool_calls": [f]}))]
    events += turn.feed(chunk({}, "tool_calls")) + turn.finish()

    assert events == [ToolCallRequest("a", "f", '{"x": 1}'), ToolCallRequest("b", "g", "{}")]


def test_a_fragment_index_sent_as_a_string_is_that_number() -> None:
    """The SDK's typed chunk read ``"index": "0"`` as 0: the chunk's plain JSON is read alike."""
    turn = _Turn()
    first = {"index": "0", "id": "a", "function": {"name": "f", "arguments": '{"x":'}}
    turn.feed(chunk({"tool_calls": [first]}))
    turn.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]}))

    assert turn.finish() == [ToolCallRequest("a", "f", '{"x": 1}')]


def test_both_reasoning_fields_are_not_doubled() -> None:
    turn = _Turn()
    events = turn.feed(chunk({"reasoning": "think", "reasoning_content": "think"}))

    assert events == [ReasoningDelta("think")]


def test_call_without_id_gets_one() -> None:
    turn = _Turn()
    turn.feed(chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": ""}}]}))

    [call] = turn.finish()

    assert isinstance(call, ToolCallRequest)
    assert call.id.startswith("call_")
    assert call.arguments == ""
