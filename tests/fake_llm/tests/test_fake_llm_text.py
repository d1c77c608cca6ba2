"""The fake LLM, driven through the real ``openai`` SDK: text, streamed or not, and the
model's reasoning (``reasoning_content``, ``reasoning``, ``<think>`` tags).

Each test checks one wire behaviour the bot relies on, so a regression in the fake shows up
here and not as a puzzling failure in an end-to-end test.
"""

from __future__ import annotations

import openai
import pytest

from tests.fake_llm import DEFAULT_REPLY, FakeLLM

from .sdk_reading import (
    MESSAGES,
    MODEL,
    finish_reasons,
    joined_content,
    stream_chunks,
)

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
