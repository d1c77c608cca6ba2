"""Dialects no recorded capture holds yet, written by hand after the servers' own formats
and replayed raw (one event per write and in 7-byte pieces) through ``OpenAIProvider``.

- llama.cpp / vLLM serving DeepSeek-V3.1 or a Qwen3 thinking model whose chat template
  opens the think block in the prompt: the answer arrives as ``reasoning</think>answer``.
- OpenRouter's error inside a 200 stream: a chunk with ``error: {code: 400, ...}`` and
  ``finish_reason: "error"``.
- ``finish_reason: "length"``: the answer was cut at the token limit.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest

from bot.llm import (
    ContentDelta,
    ContentRetracted,
    Finish,
    LLMError,
    OpenAIProvider,
    ProviderEvent,
    ReasoningDelta,
    ToolCallRequest,
)
from tests.fake_llm import FakeLLM

MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]
PIECES = [None, 7]


def sse_event(body: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def chunk(delta: dict[str, Any], reason: str | None = None) -> bytes:
    return sse_event(
        {
            "id": "chatcmpl-x",
            "object": "chat.completion.chunk",
            "created": 1760000000,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": reason}],
        }
    )


def sse(*deltas: dict[str, Any], finish: str = "stop") -> bytes:
    """A llama.cpp-style stream: a role chunk, one chunk per delta, a finish chunk, [DONE]."""
    parts = [chunk({"role": "assistant", "content": None})]
    parts += [chunk(d) for d in deltas]
    parts.append(chunk({}, finish))
    return b"".join(parts) + b"data: [DONE]\n\n"


def content(*texts: str) -> list[dict[str, Any]]:
    return [{"content": t} for t in texts]


TEMPLATE_OPENED = sse(
    *content("The user", " says hi. Greet", " back.", "</th", "ink>", "\n\nHello", "! 👋")
)


@pytest.fixture
async def provider(fake_llm: FakeLLM) -> AsyncIterator[OpenAIProvider]:
    llm = OpenAIProvider(fake_llm.base_url, None, "deepseek-v3.1", timeout=5.0, max_retries=0)
    yield llm
    await llm.aclose()


async def events_of(llm: OpenAIProvider) -> list[ProviderEvent]:
    async with aclosing(llm.stream_chat(MESSAGES)) as stream:
        return [event async for event in stream]


def answer(events: list[ProviderEvent]) -> tuple[str, str]:
    """``(reasoning, content)`` as a consumer ends with them."""
    reasoning, shown = "", ""
    for event in events:
        if isinstance(event, ContentRetracted):
            assert shown == event.text
            shown = ""
        elif isinstance(event, ReasoningDelta):
            reasoning += event.text
        elif isinstance(event, ContentDelta):
            shown += event.text
    return reasoning, shown


@pytest.mark.parametrize("piece_size", PIECES)
async def test_orphan_close_tag_is_reasoning_and_learned(
    fake_llm: FakeLLM, provider: OpenAIProvider, piece_size: int | None
) -> None:
    fake_llm.queue_raw(TEMPLATE_OPENED, piece_size=piece_size)
    first = await events_of(provider)
    # Undecided: the text streamed as the answer, then was taken back at the orphan tag.
    assert isinstance(first[0], ContentDelta)
    assert any(isinstance(e, ContentRetracted) for e in first)
    assert answer(first) == ("The user says hi. Greet back.", "\n\nHello! 👋")
    assert provider.reasoning_open

    # Learned: the next answer's reasoning is never shown as the answer, not even for a moment.
    fake_llm.queue_raw(TEMPLATE_OPENED, piece_size=piece_size)
    second = await events_of(provider)
    assert not any(isinstance(e, ContentRetracted) for e in second)
    shown_before_reasoning = [
        e for e in second[: next(i for i, e in enumerate(second) if isinstance(e, ReasoningDelta))]
    ]
    assert not any(isinstance(e, ContentDelta) for e in shown_before_reasoning)
    assert answer(second) == ("The user says hi. Greet back.", "\n\nHello! 👋")


async def test_reasoning_open_setting_applies_from_the_first_answer(fake_llm: FakeLLM) -> None:
    llm = OpenAIProvider(fake_llm.base_url, None, "qwen3", timeout=5.0, reasoning_open=True)
    async with llm:
        fake_llm.queue_raw(TEMPLATE_OPENED)
        events = await events_of(llm)
        # A model that did not think this time: its whole answer is still the answer.
        fake_llm.queue_raw(sse(*content("Just ", "an answer.")))
        plain = await events_of(llm)
    assert not any(isinstance(e, ContentRetracted) for e in events)
    assert answer(events) == ("The user says hi. Greet back.", "\n\nHello! 👋")
    assert answer(plain) == ("", "Just an answer.")


async def test_complete_drops_reasoning_before_an_orphan_close(
    fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    body = {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": 1760000000,
        "model": "deepseek-v3.1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": 'Need JSON.</think>{"a": 1}'},
                "finish_reason": "stop",
            }
        ],
    }
    fake_llm.queue_raw(json.dumps(body).encode(), content_type="application/json")
    assert await provider.complete(MESSAGES, json_mode=True) == '{"a": 1}'
    assert provider.reasoning_open


@pytest.mark.parametrize("piece_size", PIECES)
async def test_openrouter_error_chunk_mid_stream_is_classified_by_its_code(
    fake_llm: FakeLLM, provider: OpenAIProvider, piece_size: int | None
) -> None:
    error_chunk = {
        "id": "gen-1760000000-abc",
        "object": "chat.completion.chunk",
        "created": 1760000000,
        "model": "deepseek/deepseek-r1",
        "provider": "Chutes",
        "error": {"code": 400, "message": "Token limit reached"},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    }
    body = chunk({"reasoning": "Let me think"}) + chunk({"reasoning": " about it."})
    body += sse_event(error_chunk) + b"data: [DONE]\n\n"
    fake_llm.queue_raw(body, piece_size=piece_size)
    seen: list[ProviderEvent] = []
    with pytest.raises(LLMError) as caught:
        async with aclosing(provider.stream_chat(MESSAGES)) as stream:
            async for event in stream:
                seen.append(event)
    assert caught.value.kind == "bad_request"
    assert caught.value.status_code == 400
    assert "Token limit reached" in str(caught.value)
    # What streamed before the error was reasoning, never an answer.
    assert seen and all(isinstance(e, ReasoningDelta) for e in seen)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"code": 429, "message": "Rate limit exceeded"}, "rate_limited"),
        ({"code": 502, "message": "Upstream error"}, "unavailable"),
        ({"code": "server_error", "message": "Internal error"}, "unavailable"),
        ({"message": "Something odd"}, "unavailable"),
    ],
)
async def test_error_inside_a_stream_by_status_or_type(
    fake_llm: FakeLLM, provider: OpenAIProvider, error: dict[str, Any], kind: str
) -> None:
    fake_llm.queue_raw(sse_event({"error": error}))
    with pytest.raises(LLMError) as caught:
        await events_of(provider)
    assert caught.value.kind == kind
    assert error["message"] in str(caught.value)


@pytest.mark.parametrize("piece_size", PIECES)
async def test_finish_reason_length_is_reported(
    fake_llm: FakeLLM, provider: OpenAIProvider, piece_size: int | None
) -> None:
    fake_llm.queue_raw(
        sse(*content("The first three", " steps are"), finish="length"), piece_size=piece_size
    )
    events = await events_of(provider)
    assert events[-1] == Finish("length")
    assert events[-1].cut
    assert answer(events) == ("", "The first three steps are")


async def test_cut_while_inside_a_template_opened_block_is_reasoning(
    fake_llm: FakeLLM,
) -> None:
    llm = OpenAIProvider(fake_llm.base_url, None, "qwen3", timeout=5.0, reasoning_open=True)
    async with llm:
        fake_llm.queue_raw(sse(*content("Let me weigh", " the options"), finish="length"))
        events = await events_of(llm)
    assert answer(events) == ("Let me weigh the options", "")
    assert events[-1] == Finish("length")


async def test_vllm_bare_error_event_mid_stream(
    fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    """vLLM before 0.10 sent a stream error as the ErrorResponse itself, no `error` key."""
    vllm_error = {
        "object": "error",
        "message": "This model's maximum context length is 4096 tokens.",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
    fake_llm.queue_raw(chunk({"content": "Sure"}) + sse_event(vllm_error), piece_size=7)
    with pytest.raises(LLMError) as caught:
        await events_of(provider)
    assert caught.value.kind == "bad_request"
    assert "maximum context length is 4096" in str(caught.value)


async def test_fastapi_style_error_detail_reaches_the_log(
    fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    fake_llm.queue_raw(
        b'{"detail":"Model qwen3 is not loaded"}', status=404, content_type="application/json"
    )
    with pytest.raises(LLMError) as caught:
        await provider.complete(MESSAGES)
    assert caught.value.kind == "bad_request"
    assert "Model qwen3 is not loaded" in str(caught.value)


async def test_tool_arguments_sent_as_an_object_are_kept_as_json(
    fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
    }
    fake_llm.queue_raw(sse({"tool_calls": [call]}, finish="tool_calls"))
    events = await events_of(provider)
    [request] = [e for e in events if isinstance(e, ToolCallRequest)]
    assert (request.name, json.loads(request.arguments)) == ("get_weather", {"city": "Paris"})


async def test_a_reasoning_field_means_no_template_block_even_when_expected(
    fake_llm: FakeLLM,
) -> None:
    """Told (or having learned) that answers open inside a block, the provider still does not
    hold back an answer whose reasoning the server parsed out into `reasoning_content`."""
    llm = OpenAIProvider(fake_llm.base_url, None, "qwen3", timeout=5.0, reasoning_open=True)
    async with llm:
        fake_llm.queue_raw(
            sse({"reasoning_content": "Greet."}, *content("Hel", "lo!"), {"content": " Bye."})
        )
        events = await events_of(llm)
    assert answer(events) == ("Greet.", "Hello! Bye.")
    # The answer streamed as it came, not held to the end.
    assert next(e for e in events if isinstance(e, ContentDelta)) == ContentDelta("Hel")
