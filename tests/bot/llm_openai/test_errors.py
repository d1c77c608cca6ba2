"""``OpenAIProvider`` through the real ``openai`` SDK against the loopback fake server:
errors, retries and timeouts, and ``complete()``.

Nothing of the SDK is mocked: what passes here is what the bot sees from a real
OpenAI-compatible endpoint, errors and retries included.
"""

from __future__ import annotations

import time

import openai
import pytest

from bot.llm import (
    USER_MESSAGES,
    ContentDelta,
    LLMError,
    OpenAIProvider,
)
from tests.fake_llm import FakeLLM

from .helpers import (
    MESSAGES,
    MODEL,
    collect,
    failure,
    free_port,
    texts,
)

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
