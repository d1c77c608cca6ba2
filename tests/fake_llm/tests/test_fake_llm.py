"""The fake LLM, driven through the real ``openai`` SDK: what the SDK parses, the bot will.
Here: its other routes, what it records of each request, and raw replays of recorded bytes
(the other wire behaviours: ``test_fake_llm_text``, ``_tools``, ``_errors``).

Each test checks one wire behaviour the bot relies on, so a regression in the fake shows up
here and not as a puzzling failure in an end-to-end test.
"""

from __future__ import annotations

import logging

import openai
import pytest

from tests.fake_llm import FakeLLM
from tests.fake_llm.raw import sse_events

from .sdk_reading import (
    MESSAGES,
    MODEL,
    WEATHER_TOOL,
    stream_chunks,
)

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
