"""The fake LLM, driven through the real ``openai`` SDK: what the SDK parses, the bot will.

Each test checks one wire behaviour the bot relies on (streaming, reasoning, tool calls,
errors, retries, timeouts), so a regression in the fake shows up here and not as a
puzzling failure in an end-to-end test.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from tests.fake_llm import DEFAULT_REPLY, FakeLLM, ToolCall
from tests.fake_llm.raw import sse_events

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


@pytest.fixture
async def client(fake_llm: FakeLLM) -> AsyncIterator[openai.AsyncOpenAI]:
    async with fake_llm.client(timeout=5.0) as sdk_client:
        yield sdk_client


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


# --- text ---------------------------------------------------------------------------------------


async def test_streamed_text_arrives_in_several_chunks(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI
) -> None:
    text = "Sunny and 24 degrees in Paris today."
    fake_llm.queue_text(text, chunk_size=5)

    chunks = await stream_chunks(client)

    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) == 8  # ceil(36 / 5)
    assert joined_content(chunks) == text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert finish_reasons(chunks) == ["stop"]
    assert {c.model for c in chunks} == {MODEL}
    assert len({c.id for c in chunks}) == 1
    assert all(c.object == "chat.completion.chunk" for c in chunks)


async def test_non_streaming_request_gets_a_completion_object(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI
) -> None:
    fake_llm.queue_text("Sunny.")

    completion = await client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.choices[0].message.content == "Sunny."
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens > 0


async def test_usage_chunk_only_when_asked_for(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI
) -> None:
    fake_llm.queue_text("one")
    fake_llm.queue_text("two")

    with_usage = await stream_chunks(client, stream_options={"include_usage": True})
    without = await stream_chunks(client)

    assert with_usage[-1].choices == []
    assert with_usage[-1].usage is not None
    assert with_usage[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in with_usage[:-1])
    assert all(c.usage is None for c in without)
    assert joined_content(with_usage) == "one"
    assert joined_content(without) == "two"


async def test_default_reply_when_queue_is_empty(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI
) -> None:
    assert fake_llm.pending == 0

    chunks = await stream_chunks(client)
    completion = await client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert joined_content(chunks) == DEFAULT_REPLY
    assert completion.choices[0].message.content == DEFAULT_REPLY


async def test_queue_is_first_in_first_out(fake_llm: FakeLLM, client: openai.AsyncOpenAI) -> None:
    fake_llm.queue_text("first")
    fake_llm.queue_text("second")

    answers = [joined_content(await stream_chunks(client)) for _ in range(3)]

    assert answers == ["first", "second", DEFAULT_REPLY]


# --- reasoning ----------------------------------------------------------------------------------


async def test_reasoning_content_streams_before_the_answer(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI
) -> None:
    fake_llm.queue_text("It is sunny.", reasoning="The user wants the weather; I know it.")

    chunks = await stream_chunks(client)

    # The SDK has no `reasoning_content` field: it keeps unknown fields as pydantic extras,
    # readable as an attribute (only when present) or from `model_extra`.
    kinds = []
    reasoning = ""
    for chunk in chunks:
        delta = chunk.choices[0].delta
        piece = (delta.model_extra or {}).get("reasoning_content")
        if piece:
            assert getattr(delta, "reasoning_content", None) == piece
            reasoning += piece
            kinds.append("reasoning")
        elif delta.content:
            kinds.append("content")
    assert reasoning == "The user wants the weather; I know it."
    assert joined_content(chunks) == "It is sunny."
    assert kinds.index("content") > max(i for i, k in enumerate(kinds) if k == "reasoning")
    assert kinds.count("reasoning") > 1


async def test_reasoning_content_in_non_streaming_message(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI
) -> None:
    fake_llm.queue_text("It is sunny.", reasoning="Weather question.")

    completion = await client.chat.completions.create(model=MODEL, messages=MESSAGES)

    message = completion.choices[0].message
    assert message.content == "It is sunny."
    assert getattr(message, "reasoning_content", None) == "Weather question."
    assert message.model_extra == {"reasoning_content": "Weather question."}


async def test_reasoning_field_can_be_spelled_reasoning(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI
) -> None:
    fake_llm.queue_text("Sunny.", reasoning="Short thought.", reasoning_field="reasoning")

    chunks = await stream_chunks(client)

    extras = [c.choices[0].delta.model_extra or {} for c in chunks]
    assert "".join(e.get("reasoning", "") for e in extras) == "Short thought."
    assert not any("reasoning_content" in e for e in extras)


async def test_think_tags_arrive_inside_content(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI
) -> None:
    fake_llm.queue_text("It is sunny.", reasoning="Weather question.", think_tags=True)
    fake_llm.queue_text("It is sunny.", reasoning="Weather question.", think_tags=True)

    chunks = await stream_chunks(client)
    completion = await client.chat.completions.create(model=MODEL, messages=MESSAGES)

    expected = "<think>Weather question.</think>It is sunny."
    assert joined_content(chunks) == expected
    contents = [c.choices[0].delta.content for c in chunks]
    assert "<think>" in contents
    assert "</think>" in contents
    assert all(not c.choices[0].delta.model_extra for c in chunks)
    assert completion.choices[0].message.content == expected
    assert not completion.choices[0].message.model_extra


def test_think_tags_without_reasoning_is_a_scripting_error() -> None:
    with pytest.raises(ValueError, match="think_tags"):
        FakeLLM().queue_text("x", think_tags=True)


# --- tool calls ---------------------------------------------------------------------------------


async def test_streamed_tool_call_with_dict_arguments(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI
) -> None:
    fake_llm.queue_tool_call("get_weather", {"city": "Paris", "unit": "celsius"}, call_id="call_1")

    chunks = await stream_chunks(client, tools=[WEATHER_TOOL])

    header = chunks[0].choices[0].delta.tool_calls
    assert header is not None
    assert header[0].index == 0
    assert header[0].id == "call_1"
    assert header[0].type == "function"
    assert header[0].function is not None
    assert header[0].function.name == "get_weather"
    calls = accumulate_tool_calls(chunks)
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    argument_chunks = [c for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert len(argument_chunks) > 2  # the header plus several argument fragments
    assert finish_reasons(chunks) == ["tool_calls"]
    assert joined_content(chunks) == ""


async def test_non_streamed_tool_call(fake_llm: FakeLLM, client: openai.AsyncOpenAI) -> None:
    fake_llm.queue_tool_call("get_weather", {"city": "Paris"})

    completion = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, tools=[WEATHER_TOOL]
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    [call] = choice.message.tool_calls
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


async def test_two_tool_calls_with_text_alongside(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI
) -> None:
    fake_llm.queue_tool_calls(
        [("get_weather", {"city": "Paris"}), ToolCall("get_weather", {"city": "Oslo"}, "call_b")],
        content="Let me check both.",
    )

    chunks = await stream_chunks(client, tools=[WEATHER_TOOL])

    calls = accumulate_tool_calls(chunks)
    assert sorted(calls) == [0, 1]
    assert [json.loads(calls[i]["arguments"]) for i in (0, 1)] == [
        {"city": "Paris"},
        {"city": "Oslo"},
    ]
    assert calls[1]["id"] == "call_b"
    assert calls[0]["id"].startswith("call_")
    assert calls[0]["id"] != calls[1]["id"]
    assert joined_content(chunks) == "Let me check both."
    assert finish_reasons(chunks) == ["tool_calls"]


async def test_malformed_tool_arguments_arrive_verbatim(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI
) -> None:
    broken = '{"city": "Paris", '
    fake_llm.queue_tool_call("get_weather", broken)
    fake_llm.queue_tool_call("get_weather", broken)

    streamed = accumulate_tool_calls(await stream_chunks(client, tools=[WEATHER_TOOL]))
    completion = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, tools=[WEATHER_TOOL]
    )

    assert streamed[0]["arguments"] == broken
    assert completion.choices[0].message.tool_calls is not None
    assert completion.choices[0].message.tool_calls[0].function.arguments == broken
    with pytest.raises(json.JSONDecodeError):
        json.loads(streamed[0]["arguments"])


async def test_sdk_stream_helper_accumulates_the_fake_stream(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI
) -> None:
    """The SDK's own accumulator is strict about chunk shapes; it must accept ours."""
    fake_llm.queue_tool_calls([("get_weather", {"city": "Paris"})], content="Checking.")

    async with client.chat.completions.stream(
        model=MODEL, messages=MESSAGES, tools=[WEATHER_TOOL]
    ) as stream:
        final = await stream.get_final_completion()

    message = final.choices[0].message
    assert message.content == "Checking."
    assert message.tool_calls is not None
    assert message.tool_calls[0].function.name == "get_weather"
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Paris"}
    assert final.choices[0].finish_reason == "tool_calls"


# --- errors, retries, timeouts ------------------------------------------------------------------


async def test_server_error_once_then_the_sdk_retry_succeeds(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI
) -> None:
    fake_llm.queue_error(500, "boom", retry_after=0.01)
    fake_llm.queue_text("Recovered.")

    chunks = await stream_chunks(client)

    assert joined_content(chunks) == "Recovered."
    assert len(fake_llm.chat_requests) == 2
    assert [r.headers["x-stainless-retry-count"] for r in fake_llm.chat_requests] == ["0", "1"]


async def test_rate_limited_three_times_raises(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI
) -> None:
    fake_llm.queue_error(429, "Slow down.", times=3, retry_after=0.01)

    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as caught:
        await stream_chunks(client)

    assert time.monotonic() - started < 1.0  # retry-after was honoured, not the 0.5 s backoff
    assert caught.value.status_code == 429
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.type == "requests"
    assert caught.value.body == {
        "message": "Slow down.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert caught.value.response.headers["retry-after"] == "0.01"
    assert len(fake_llm.chat_requests) == 3
    assert fake_llm.pending == 0


async def test_error_without_retries_is_raised_at_once(fake_llm: FakeLLM) -> None:
    fake_llm.queue_error(500, times=2)

    async with fake_llm.client(max_retries=0) as sdk_client:
        with pytest.raises(openai.InternalServerError) as caught:
            await sdk_client.chat.completions.create(model=MODEL, messages=MESSAGES)

        assert caught.value.type == "server_error"
        assert len(fake_llm.chat_requests) == 1
        assert fake_llm.pending == 1
        with pytest.raises(openai.InternalServerError):
            await sdk_client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert len(fake_llm.chat_requests) == 2


async def test_slow_reply_trips_the_client_timeout(fake_llm: FakeLLM) -> None:
    fake_llm.queue_slow("Too late.", delay=3.0)

    started = time.monotonic()
    async with fake_llm.client(timeout=0.3, max_retries=0) as sdk_client:
        with pytest.raises(openai.APITimeoutError):
            await stream_chunks(sdk_client)

    assert time.monotonic() - started < 2.0
    assert len(fake_llm.chat_requests) == 1


async def test_slow_chunks_trip_the_read_timeout_mid_stream(fake_llm: FakeLLM) -> None:
    fake_llm.queue_text("First words, then silence.", chunk_size=4, chunk_delay=3.0)

    async with fake_llm.client(timeout=0.3, max_retries=0) as sdk_client:
        stream = await sdk_client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True
        )
        received: list[str] = []
        with pytest.raises(openai.APITimeoutError):
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")

    assert received == [""]  # the role delta came, then silence longer than the timeout


async def test_slow_reply_within_the_timeout_is_delivered(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI
) -> None:
    fake_llm.queue_slow("Worth the wait.", delay=0.2)

    started = time.monotonic()
    chunks = await stream_chunks(client)

    assert time.monotonic() - started >= 0.2
    assert joined_content(chunks) == "Worth the wait."


async def test_wrong_api_key_is_refused_when_required() -> None:
    async with FakeLLM(require_api_key=True) as server:
        server.queue_text("only for the right key")
        async with openai.AsyncOpenAI(
            base_url=server.base_url, api_key="wrong", max_retries=0
        ) as sdk_client:
            with pytest.raises(openai.AuthenticationError):
                await sdk_client.chat.completions.create(model=MODEL, messages=MESSAGES)
        async with server.client() as sdk_client:
            completion = await sdk_client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert completion.choices[0].message.content == "only for the right key"


async def test_request_without_messages_is_refused_without_consuming_a_reply(
    fake_llm: FakeLLM,
) -> None:
    fake_llm.queue_text("kept")

    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake_llm.base_url}/chat/completions", json={"model": MODEL}) as response,
    ):
        body = await response.json()

    assert response.status == 400
    assert body["error"]["code"] == "missing_required_parameter"
    assert fake_llm.pending == 1
    async with fake_llm.client() as sdk_client:
        completion = await sdk_client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert completion.choices[0].message.content == "kept"


# --- other routes -------------------------------------------------------------------------------


async def test_models_list_names_configured_and_requested_models(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI
) -> None:
    await client.chat.completions.create(model=MODEL, messages=MESSAGES)

    page = await client.models.list()
    model = await client.models.retrieve(MODEL)

    assert [m.id for m in page.data] == ["fake-model", MODEL]
    assert all(m.object == "model" for m in page.data)
    assert model.id == MODEL
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("no-such-model")


async def test_unknown_route_is_a_loud_openai_style_404(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="tests.fake_llm.server.routes"),
        pytest.raises(openai.NotFoundError) as caught,
    ):
        await client.embeddings.create(model=MODEL, input="hello")

    assert caught.value.type == "invalid_request_error"
    assert "POST /v1/embeddings" in caught.value.message
    assert any("no route for POST /v1/embeddings" in r.getMessage() for r in caplog.records)
    assert fake_llm.requests[-1].path == "/v1/embeddings"
    assert fake_llm.chat_requests == []


# --- recording ----------------------------------------------------------------------------------


async def test_recorded_request_carries_what_the_client_sent(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI
) -> None:
    await stream_chunks(client, tools=[WEATHER_TOOL], temperature=0.2)

    [request] = await fake_llm.wait_for_requests(1)

    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.messages == MESSAGES
    assert request.tools == [WEATHER_TOOL]
    assert request.model == MODEL
    assert request.stream is True
    assert request.body is not None
    assert request.body["temperature"] == 0.2
    assert request.authorization == f"Bearer {fake_llm.api_key}"
    assert request.headers["authorization"] == request.authorization  # case-insensitive


async def test_wait_for_requests_names_what_did_arrive(
    fake_llm: FakeLLM, client: openai.AsyncOpenAI
) -> None:
    await client.models.list()

    with pytest.raises(TimeoutError, match=r"expected 1 requests.*GET /v1/models"):
        await fake_llm.wait_for_requests(1, timeout=0.1)
    assert len(await fake_llm.wait_for_requests(1, timeout=0.1, path=None)) == 1


# --- raw replay ------------------------------------------------------------------------------

RAW_STREAM = (
    b": keep-alive comment\n\n"
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"caf\xc3\xa9 "},"finish_reason":null}]}\r\n\r\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"ol\xc3\xa9"},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


def test_sse_events_cut_after_each_blank_line_and_lose_nothing() -> None:
    events = sse_events(RAW_STREAM + b"data: tail")
    assert len(events) == 5
    assert events[0] == b": keep-alive comment\n\n"
    assert events[1].endswith(b"\r\n\r\n")
    assert b"".join(events) == RAW_STREAM + b"data: tail"


@pytest.mark.parametrize("piece_size", [None, 1, 7])
async def test_raw_stream_reaches_the_sdk_byte_for_byte(
    fake_llm: FakeLLM, piece_size: int | None
) -> None:
    fake_llm.queue_raw(RAW_STREAM, piece_size=piece_size)
    async with fake_llm.client(max_retries=0) as client:
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "café olé"


async def test_raw_error_body_keeps_its_status_and_bytes(fake_llm: FakeLLM) -> None:
    fake_llm.queue_raw(
        b'{"error":"plain words"}', status=400, content_type="application/json", piece_size=3
    )
    async with fake_llm.client(max_retries=0) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.body == "plain words"


async def test_default_reply_thinks_then_streams_and_its_timing_is_recorded() -> None:
    async with FakeLLM(default_delay=0.1, default_chunk_delay=0.01, default_chunk_size=4) as llm:
        async with llm.client(max_retries=0) as client:
            stream = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            pieces = [c.choices[0].delta.content async for c in stream if c.choices]
        [request] = llm.chat_requests
    assert "".join(p or "" for p in pieces) == llm.default_reply
    assert len([p for p in pieces if p]) == -(-len(llm.default_reply) // 4)
    [first] = request.first_content_at
    assert first - request.arrived >= 0.1 + 0.01  # the think time, then the role delta's pause
