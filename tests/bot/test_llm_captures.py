"""Every recorded capture of a real model server, replayed through ``OpenAIProvider``.

The bodies (``tests/fake_llm/captures.py`` says where they live) are served byte for byte
by the fake server's raw mode, to the real ``openai`` SDK: a stream once one SSE event per
write, as servers flush, and once in 7-byte pieces that cut events, lines and UTF-8
characters anywhere. Each capture has its expectation here, written from the body: the
visible text, the reasoning kept apart from it, every tool call with its id, name and
parsed arguments, why the model stopped, and for an error body its class and the words
the operator's log line must carry. A capture added to the index without an expectation
fails ``test_every_capture_has_an_expectation``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import pytest

from bot.llm import (
    ContentDelta,
    ContentRetracted,
    Finish,
    LLMError,
    OpenAIProvider,
    ReasoningDelta,
    ToolCallRequest,
)
from tests.fake_llm import FakeLLM
from tests.fake_llm.captures import Capture, CapturesMissing, captures

MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "Hello"}]
PIECE_SIZES = {"event-per-write": None, "7-byte-pieces": 7}


@dataclass(frozen=True)
class Span:
    """A long text by its ends and length: the ends show order, the length that nothing
    was lost or doubled in between."""

    start: str
    end: str
    length: int

    def check(self, actual: str, what: str) -> None:
        assert actual.startswith(self.start), f"{what} starts {actual[:80]!r}"
        assert actual.endswith(self.end), f"{what} ends {actual[-80:]!r}"
        assert len(actual) == self.length, f"{what}: {len(actual)} characters"


@dataclass(frozen=True)
class Call:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Expect:
    text: str | Span = ""
    reasoning: str | Span = ""
    calls: tuple[Call, ...] = ()
    finish: str | None = "stop"
    error: str | None = None
    """The ``LLMError.kind`` the body must raise."""
    log_says: tuple[str, ...] = ()
    """Words the operator's log line (``str(LLMError)``) must hold."""


def _check(value: str, expected: str | Span, what: str) -> None:
    if isinstance(expected, Span):
        expected.check(value, what)
    else:
        assert value == expected, what


EXPECTATIONS: dict[str, Expect] = {
    "01_openai_text_moderation": Expect(text="Paris."),
    "02_openai_text_long": Expect(
        text=Span(
            "**Holiday Name:** Harmony Day\n\n**Date:**",
            "through shared human experiences and mutual respect.",
            1724,
        )
    ),
    "03_openai_tool_call_split": Expect(
        calls=(Call("call_ZR5UUuTt3pf61kjwAJIYdVMj", "get_capital", {"country": "UK"}),),
        finish="tool_calls",
    ),
    "04_openai_parallel_tool_calls": Expect(
        calls=(
            Call("call_q2UyBRP7eXNTzAoR8lEhjc9Z", "get_country", {}),
            Call("call_b51ijcpFkDiTQG1bQzsrmtW5", "get_product_name", {}),
        ),
        finish="tool_calls",
    ),
    "06_vllm_tool_call": Expect(
        calls=(
            Call(
                "chatcmpl-tool-ca99dda515524c6abe47d1ea22813507", "run_command", {"command": "ls"}
            ),
        ),
        finish="tool_calls",
    ),
    "07_ollama_parallel_tool_calls": Expect(
        calls=(
            Call("call_wteop8bt", "run_command", {"command": "ls"}),
            Call("call_rk2xye1l", "run_command", {"command": "ls -l"}),
        ),
        finish="tool_calls",
    ),
    # Non-streamed bodies answer complete(), which returns the answer without reasoning.
    "08_ollama_cloud_nonstream_reasoning": Expect(text="Paris."),
    "09_ollama_local_nonstream_reasoning": Expect(text='{ "city": "Paris", "country": "France" }'),
    # A bug of llama.cpp b6097 (fixed since): gpt-oss's harmony markup leaked into `content`.
    # Echo passes it through verbatim rather than strip `<|...|>` tokens: stripping would
    # change answers of every other server that talk about such tokens, and a server
    # with the fix sends the analysis as `reasoning_content` already.
    "10_llamacpp_gptoss_harmony_in_content": Expect(
        text=(
            '<|channel|>analysis<|message|>User says "test". Likely wants a test response. '
            "We'll respond acknowledging.<|start|>assistant<|channel|>final<|message|>Got it! "
            "If you have any questions or need assistance, just let me know."
        )
    ),
    # llama.cpp b6522 leaked the start of qwen3-coder's XML tool call into `content` before
    # sending the call properly: the text goes through as said (the leak included), the
    # call is assembled from its fragments.
    "11_llamacpp_mixed_content_toolcall": Expect(
        text=(
            "Hi there! Let me check the current weather for Washington DC for you.\n"
            "<tool_call>\n<function=get_current_weather"
        ),
        calls=(
            Call(
                "emGvNsMhrq1M2MOwwmEiS9MHA7L1XNrE",
                "get_current_weather",
                {"location": "Washington DC"},
            ),
        ),
        finish="tool_calls",
    ),
    "12_deepseek_reasoner_stream": Expect(
        text="Hello there! 😊 How can I help you today?",
        reasoning=Span(
            'Hmm, the user just said "Hello".',
            "If they're just being polite, they might not reply further - and that's okay too.",
            882,
        ),
    ),
    "14_deepseek_nonstream": Expect(
        text=Span(
            "Crossing the street safely involves careful observation and ",
            "stay alert until you've fully crossed.",
            1568,
        )
    ),
    "15_openrouter_reasoning_claude": Expect(
        text="2 + 2 = 4", reasoning="This is a simple arithmetic question. 2+2 equals 4."
    ),
    # o3's reasoning is encrypted (`reasoning_details` only): there is none to show.
    "16_openrouter_o3_reasoning_details": Expect(
        text=Span(
            "I\u2019m ChatGPT, a large-language-model assistant created by OpenAI.",
            "If there\u2019s something specific you\u2019d like help with, just let me know!",
            446,
        )
    ),
    "18_openrouter_429": Expect(
        error="rate_limited",
        finish=None,
        log_says=("HTTP 429", "Provider returned error", "Google", "rate-limited upstream"),
    ),
    "19_openrouter_web_search_annotations": Expect(
        text="The URL for Pydantic AI's GitHub repository is:  \n\nhttps://github.com/pydantic/pydantic-ai"
    ),
    # Groq streams gpt-oss's reasoning, then refuses the tool call it generated with an
    # `event: error` carrying status_code 400: the model's request was bad, the server is up.
    "20_groq_event_error_midstream": Expect(
        reasoning=Span(
            "We need to call the tool with invalid parameters first,",
            'Then second call with name: "test". Let\'s do that.',
            412,
        ),
        finish=None,
        error="bad_request",
        log_says=("400", "tool_use_failed", "Tool call validation failed"),
    ),
    "22_groq_tool_call_single_chunk": Expect(
        calls=(Call("tk85n1k4m", "weather", {}),), finish="tool_calls"
    ),
    "23_together_r1_think_tags": Expect(
        text=Span(
            "\nCrossing the street safely requires attention and following key steps.",
            "Practice these steps every time—it could save your life! 🌟",
            2557,
        ),
        reasoning=Span(
            '\nOkay, the user asked "How do I cross the street?"',
            "Safety first, but don't sound like a paranoid robot.\n",
            1437 - len("<think>"),
        ),
    ),
    "24_zai_glm_reasoning": Expect(
        text="4",
        reasoning=Span(
            "\n1.  **Analyze the User's Request:**",
            '**Draft the final response:** "4".',
            2173,
        ),
    ),
    "25_mistral_api_incremental_tool_call": Expect(
        calls=(
            Call(
                "chatcmpl-tool-9f149c74c42f265b",
                "webSearchTool",
                {"query": "current Berlin weather"},
            ),
        ),
        finish="tool_calls",
    ),
    "28_openai_nonstream_text": Expect(text="The capital of Mexico is Mexico City."),
    "29_ollama_local_gemma3_nonstream": Expect(text="4200 + 42 = 4242"),
    # An excerpt: ~100 middle chunks were left out of the recording (the answer's "Hello!").
    "30_llamacpp_b6459_reasoning_content_EXCERPT": Expect(
        text=" How can I help you today? 😊", reasoning="Hmm, the user"
    ),
    # LM Studio's error body is a bare string: the log line must carry it.
    "33_lmstudio_400_json_object": Expect(
        error="bad_request",
        finish=None,
        log_says=("HTTP 400", "'response_format.type' must be 'json_schema' or 'text'"),
    ),
}


def _capture(name: str) -> Capture:
    try:
        return captures()[name]
    except CapturesMissing as exc:
        pytest.fail(str(exc))
    except KeyError:
        pytest.fail(f"capture {name} is no longer in the index: drop its expectation")


def test_every_capture_has_an_expectation() -> None:
    try:
        names = list(captures())
    except CapturesMissing as exc:
        pytest.fail(str(exc))
    assert sorted(names) == sorted(EXPECTATIONS)


@pytest.fixture
async def provider(fake_llm: FakeLLM) -> AsyncIterator[OpenAIProvider]:
    # No retries: a 429 body is served once, and its error is what the test is about.
    llm = OpenAIProvider(fake_llm.base_url, None, "replayed-model", timeout=5.0, max_retries=0)
    yield llm
    await llm.aclose()


@dataclass
class Seen:
    text: str = ""
    reasoning: str = ""
    calls: tuple[ToolCallRequest, ...] = ()
    finish: str | None = None
    error: LLMError | None = None


async def _stream(llm: OpenAIProvider) -> Seen:
    seen = Seen()
    try:
        async with aclosing(llm.stream_chat(MESSAGES)) as events:
            async for event in events:
                if isinstance(event, ContentDelta):
                    seen.text += event.text
                elif isinstance(event, ContentRetracted):
                    seen.text = ""
                elif isinstance(event, ReasoningDelta):
                    seen.reasoning += event.text
                elif isinstance(event, ToolCallRequest):
                    seen.calls += (event,)
                elif isinstance(event, Finish):
                    seen.finish = event.reason
    except LLMError as exc:
        seen.error = exc
    return seen


async def _complete(llm: OpenAIProvider) -> Seen:
    seen = Seen()
    try:
        seen.text = await llm.complete(MESSAGES)
        seen.finish = "stop"
    except LLMError as exc:
        seen.error = exc
    return seen


@pytest.mark.parametrize("pieces", list(PIECE_SIZES))
@pytest.mark.parametrize("name", list(EXPECTATIONS))
async def test_capture_replays(
    name: str, pieces: str, fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    capture = _capture(name)
    expect = EXPECTATIONS[name]
    fake_llm.queue_raw(
        capture.body,
        status=capture.status,
        content_type=capture.content_type,
        piece_size=PIECE_SIZES[pieces],
    )
    seen = await (_stream(provider) if capture.stream else _complete(provider))

    if expect.error is None:
        assert seen.error is None, f"unexpected {seen.error!r}"
    else:
        assert seen.error is not None, f"{name} should fail with {expect.error}"
        assert seen.error.kind == expect.error, repr(seen.error)
        for words in expect.log_says:
            assert words in str(seen.error), f"{words!r} missing from the log: {seen.error}"
    _check(seen.text, expect.text, "text")
    _check(seen.reasoning, expect.reasoning, "reasoning")
    assert [(c.id, c.name) for c in seen.calls] == [(c.id, c.name) for c in expect.calls]
    assert [json.loads(c.arguments) for c in seen.calls] == [c.arguments for c in expect.calls]
    assert seen.finish == expect.finish


# The error bodies answered with an HTTP error status (not an error inside a stream).
HTTP_ERRORS = ["18_openrouter_429", "33_lmstudio_400_json_object"]


@pytest.mark.parametrize("name", HTTP_ERRORS)
async def test_an_error_body_fails_a_streamed_request_alike(
    name: str, fake_llm: FakeLLM, provider: OpenAIProvider
) -> None:
    """An HTTP error answers a stream request before any event: same class, same words."""
    capture = _capture(name)
    expect = EXPECTATIONS[name]
    fake_llm.queue_raw(capture.body, status=capture.status, content_type=capture.content_type)
    seen = await _stream(provider)
    assert seen.error is not None and seen.error.kind == expect.error
    assert all(words in str(seen.error) for words in expect.log_says), str(seen.error)
    assert (seen.text, seen.reasoning, seen.calls) == ("", "", ())
