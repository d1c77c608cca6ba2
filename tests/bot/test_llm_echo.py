"""The offline echo provider and ``make_provider``: a bot with no model still answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.config import load_settings
from bot.llm import (
    ChatProvider,
    ContentDelta,
    EchoProvider,
    OpenAIProvider,
    ProviderEvent,
    make_provider,
)
from bot.llm.echo import ECHO_PREFIX

CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are Echo."},
    {"role": "user", "content": "first question"},
    {"role": "assistant", "content": "first answer"},
    {"role": "user", "content": "<@123> asks: what's new with the garden today?"},
]
TOOLS = [{"type": "function", "function": {"name": "t", "description": "d", "parameters": {}}}]


async def events_of(llm: ChatProvider, messages: list[dict[str, Any]]) -> list[ProviderEvent]:
    return [event async for event in llm.stream_chat(messages, tools=TOOLS)]


async def test_echo_streams_the_last_user_message_as_given() -> None:
    events = await events_of(EchoProvider(), CONVERSATION)

    assert len(events) >= 3
    assert all(isinstance(e, ContentDelta) and e.text for e in events)
    reply = "".join(e.text for e in events if isinstance(e, ContentDelta))
    assert reply == ECHO_PREFIX + "<@123> asks: what's new with the garden today?"
    # What it is and how to get a real model is a notice shown above the answer, never part of
    # the answer: the record and the memories made from it must not repeat it.
    assert "LLM_" not in reply and "offline" not in reply
    notice = EchoProvider().notice
    assert "offline echo model" in notice and "LLM_MODEL" in notice and "LLM_BASE_URL" in notice
    assert "LLM_PROVIDER" not in notice  # alone it would fail with 'LLM_MODEL is not set'


async def test_echo_reads_text_content_parts() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look at "},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "text", "text": "this"},
            ],
        }
    ]
    events = await events_of(EchoProvider(), messages)

    assert "".join(e.text for e in events if isinstance(e, ContentDelta)).endswith("look at this")


async def test_echo_without_a_user_message_still_answers() -> None:
    events = await events_of(EchoProvider(), [{"role": "system", "content": "You are Echo."}])

    reply = "".join(e.text for e in events if isinstance(e, ContentDelta))
    assert reply.startswith(ECHO_PREFIX)
    assert len(reply) > len(ECHO_PREFIX)


async def test_echo_complete_is_extractive() -> None:
    llm = EchoProvider()
    long = {"role": "user", "content": "word " * 400}

    assert await llm.complete(CONVERSATION) == "<@123> asks: what's new with the garden today?"
    assert len(await llm.complete([long])) <= 500
    assert json.loads(await llm.complete(CONVERSATION, json_mode=True)) == {
        "text": "<@123> asks: what's new with the garden today?"
    }


async def test_echo_identity() -> None:
    llm = EchoProvider()
    assert llm.model == "echo"
    assert llm.offline is True
    async with llm:
        pass


def test_make_provider_echo() -> None:
    llm = make_provider("Echo", base_url=None, api_key=None, model=None, timeout=30.0)
    assert isinstance(llm, EchoProvider)


async def test_make_provider_openai() -> None:
    llm = make_provider(
        "openai", base_url="http://127.0.0.1:9/v1", api_key=None, model="llama3.2", timeout=30.0
    )
    try:
        assert isinstance(llm, OpenAIProvider)
        assert llm.model == "llama3.2"
        assert llm.offline is False
        assert llm.reasoning_open is False
    finally:
        await llm.aclose()


async def test_make_provider_reasoning_open_setting() -> None:
    settings = load_settings({"LLM_MODEL": "qwen3", "LLM_REASONING_OPEN": "true"}, env_file=None)
    llm = make_provider(
        "openai",
        base_url="http://127.0.0.1:9/v1",
        api_key=None,
        model="qwen3",
        timeout=30.0,
        reasoning_open=settings.llm_reasoning_open,
    )
    try:
        assert isinstance(llm, OpenAIProvider)
        assert llm.reasoning_open is True
    finally:
        await llm.aclose()


def test_make_provider_openai_needs_a_model() -> None:
    with pytest.raises(ValueError, match="LLM_MODEL"):
        make_provider("openai", base_url=None, api_key="k", model="", timeout=30.0)


def test_make_provider_unknown() -> None:
    with pytest.raises(ValueError, match="LLM_PROVIDER") as caught:
        make_provider("anthropic", base_url=None, api_key=None, model="m", timeout=30.0)
    assert "echo" in str(caught.value)
    assert "openai" in str(caught.value)
