"""The fake LLM, driven through the real ``openai`` SDK: errors, the SDK's retries, timeouts,
refused keys and requests.

Each test checks one wire behaviour the bot relies on, so a regression in the fake shows up
here and not as a puzzling failure in an end-to-end test.
"""

from __future__ import annotations

import time

import aiohttp
import openai
import pytest

from tests.fake_llm import FakeLLM

from .sdk_reading import (
    MESSAGES,
    MODEL,
    joined_content,
    stream_chunks,
)

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
