"""``OpenAIProvider`` through the real ``openai`` SDK against the loopback fake server.

Nothing of the SDK is mocked: what passes here is what the bot sees from a real
OpenAI-compatible endpoint, errors and retries included.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import openai
import pytest

from bot.llm import (
    USER_MESSAGES,
    ContentDelta,
    Finish,
    LLMError,
    OpenAIProvider,
    ProviderEvent,
    ReasoningDelta,
    ToolCallRequest,
)
from bot.llm.openai_provider import _Turn
from tests.fake_llm import FakeLLM

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


@pytest.fixture
async def provider(fake_llm: FakeLLM) -> AsyncIterator[OpenAIProvider]:
    llm = OpenAIProvider(fake_llm.base_url, fake_llm.api_key, MODEL, timeout=5.0)
    yield llm
    await llm.aclose()


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


# --- errors ----------------------------------------------------------------------------------


async def test_server_error_once_is_retried(fake_llm: FakeLLM, provider: OpenAIProvider) -> None:
    fake_llm.queue_error(500, "overloaded", retry_after=0.01)
    fake_llm.queue_text("Recovered.")

    events = await collect(provider)

    assert texts(events, ContentDelta) == "Recovered."
    assert len(fake_llm.chat_requests) == 2


async def test_rate_limited_after_retries(fake_llm: FakeLLM, provider: OpenAIProvider) -> None:
    fake_llm.queue_error(429, "Rate limit reached for requests", times=3, retry_after=0.01)

    error = await failure(provider)

    assert error.kind == "rate_limited"
    assert error.status_code == 429
    assert "429" in str(error)
    assert "Rate limit reached for requests" in str(error)
    assert error.user_message == USER_MESSAGES["rate_limited"]
    assert "429" not in error.user_message
    assert "127.0.0.1" not in error.user_message
    assert isinstance(error.__cause__, openai.RateLimitError)
    assert len(fake_llm.chat_requests) == 3


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, "auth"), (403, "auth"), (400, "bad_request"), (404, "bad_request")],
)
async def test_client_errors_are_not_retried(
    fake_llm: FakeLLM, provider: OpenAIProvider, status: int, kind: str
) -> None:
    fake_llm.queue_error(status, "nope")

    error = await failure(provider)

    assert error.kind == kind
    assert str(status) in str(error)
    assert error.user_message == USER_MESSAGES[kind]
    assert len(fake_llm.chat_requests) == 1


async def test_server_error_after_retries_is_unavailable(
    fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    fake_llm.queue_error(503, "maintenance", times=3, retry_after=0.01)

    error = await failure(provider)

    assert error.kind == "unavailable"
    assert "503" in str(error)
    assert "maintenance" in str(error)


async def test_slow_reply_times_out(fake_llm: FakeLLM) -> None:
    fake_llm.queue_slow("too late", delay=3.0)
    llm = OpenAIProvider(fake_llm.base_url, None, MODEL, timeout=0.2, max_retries=0)
    try:
        started = time.monotonic()
        error = await failure(llm)
        elapsed = time.monotonic() - started
    finally:
        await llm.aclose()

    assert error.kind == "timeout"
    assert error.user_message == (
        "The model is taking too long to answer right now. Please try again in a moment."
    )
    assert "0.2s" in str(error)
    assert isinstance(error.__cause__, openai.APITimeoutError)
    assert elapsed < 2.0


async def test_stalled_stream_times_out_mid_stream(fake_llm: FakeLLM) -> None:
    fake_llm.queue_text("slow words", chunk_delay=3.0)
    llm = OpenAIProvider(fake_llm.base_url, None, MODEL, timeout=0.2, max_retries=0)
    try:
        error = await failure(llm)
    finally:
        await llm.aclose()

    assert error.kind == "timeout"
    assert fake_llm.chat_requests[0].stream


async def test_connection_refused_is_unavailable() -> None:
    port = free_port()
    llm = OpenAIProvider(f"http://127.0.0.1:{port}/v1", None, MODEL, timeout=2.0, max_retries=0)
    try:
        error = await failure(llm)
    finally:
        await llm.aclose()

    assert error.kind == "unavailable"
    assert f"cannot connect to http://127.0.0.1:{port}" in str(error)
    assert error.user_message == USER_MESSAGES["unavailable"]
    assert not isinstance(error, openai.OpenAIError)


async def test_empty_answer(fake_llm: FakeLLM, provider: OpenAIProvider) -> None:
    fake_llm.queue_text("")

    error = await failure(provider)

    assert error.kind == "empty"
    assert error.user_message == USER_MESSAGES["empty"]


async def test_missing_api_key_uses_a_placeholder(fake_llm: FakeLLM) -> None:
    """Ollama and llama.cpp need no key, but the SDK refuses to start without one."""
    fake_llm.queue_text("no key needed")
    llm = OpenAIProvider(fake_llm.base_url, None, MODEL, timeout=5.0)
    try:
        events = await collect(llm)
    finally:
        await llm.aclose()
        await llm.aclose()  # twice is fine

    assert texts(events, ContentDelta) == "no key needed"
    assert (fake_llm.chat_requests[0].authorization or "").startswith("Bearer ")


# --- complete() ------------------------------------------------------------------------------


async def test_complete_json_mode_and_think_tags(
    fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    fake_llm.queue_text('{"summary": "weather"}', reasoning="Summarise.", think_tags=True)

    result = await provider.complete(MESSAGES, json_mode=True)

    assert result == '{"summary": "weather"}'
    [request] = fake_llm.chat_requests
    assert request.body is not None
    assert request.body["response_format"] == {"type": "json_object"}
    assert not request.stream
    assert request.messages == MESSAGES


async def test_complete_plain_ignores_reasoning_field(
    fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    fake_llm.queue_text("A short summary.", reasoning="private thoughts")

    result = await provider.complete(MESSAGES)

    assert result == "A short summary."
    assert "response_format" not in (fake_llm.chat_requests[0].body or {})


async def test_complete_errors_are_llm_errors(fake_llm: FakeLLM, provider: OpenAIProvider) -> None:
    fake_llm.queue_error(429, "slow down", times=3, retry_after=0.01)
    fake_llm.queue_text("")

    with pytest.raises(LLMError) as limited:
        await provider.complete(MESSAGES)
    with pytest.raises(LLMError) as empty:
        await provider.complete(MESSAGES)

    assert limited.value.kind == "rate_limited"
    assert empty.value.kind == "empty"
