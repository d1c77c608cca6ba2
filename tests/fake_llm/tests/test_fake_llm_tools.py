"""The fake LLM, driven through the real ``openai`` SDK: tool calls, streamed or not, several
at once, with malformed arguments, and through the SDK's stream helper.

Each test checks one wire behaviour the bot relies on, so a regression in the fake shows up
here and not as a puzzling failure in an end-to-end test.
"""

from __future__ import annotations

import json

import openai
import pytest

from tests.fake_llm import FakeLLM, ToolCall

from .sdk_reading import (
    MESSAGES,
    MODEL,
    WEATHER_TOOL,
    accumulate_tool_calls,
    finish_reasons,
    joined_content,
    stream_chunks,
)

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
