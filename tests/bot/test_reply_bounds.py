"""The reply's time bound covers every part of it: a tool call, and a model still thinking."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from bot.agent import Agent, Failure, Final, ToolUse
from bot.agent.bounds import STOP_NOTES
from bot.llm import OpenAIProvider
from bot.tools import ToolContext, ToolRegistry
from memory import InMemoryConversationManager, JsonFileStore, Message, MessageType
from tests.fake_llm.server import FakeLLM

THREAD = "900000000000000011"
ALICE = "111111111111111111"


@pytest_asyncio.fixture
async def manager(tmp_path: Path) -> AsyncIterator[InMemoryConversationManager]:
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path)) as manager:
        await manager.create_conversation(
            thread_id=THREAD, guild_id="900000000000000013", requester=ALICE,
            channel_id="900000000000000012",
        )  # fmt: skip
        await manager.add_message_to_conversation(
            THREAD,
            Message(
                message_type=MessageType.CHAT,
                message_content="Look it up, please.",
                requester=ALICE,
                message_id="900000000000000014",
            ),
        )
        yield manager


def slow_tools() -> ToolRegistry:
    tools = ToolRegistry(timeout=60)

    @tools.tool
    async def look_up(ctx: ToolContext, what: str) -> str:
        """Look something up (slowly)."""
        await asyncio.sleep(30)
        return what

    return tools


async def test_a_slow_tool_is_stopped_at_the_reply_bound(
    manager: InMemoryConversationManager, fake_llm: FakeLLM
) -> None:
    provider = OpenAIProvider(fake_llm.base_url, fake_llm.api_key, "fake-model", 5, 0)
    agent = Agent(manager, provider, slow_tools(), system_prompt="Echo.", max_reply_seconds=0.5)
    fake_llm.queue_tool_call("look_up", {"what": "tides"})
    started = time.monotonic()
    async with provider:
        events = [event async for event in agent.respond(THREAD)]
    took = time.monotonic() - started
    assert isinstance(events[0], ToolUse)
    assert events[-1] == Failure(STOP_NOTES["time"])
    assert took < 5
    history = manager.get_conversation(THREAD).history  # type: ignore[union-attr]
    assert [m.message_type for m in history] == [MessageType.CHAT, MessageType.TOOL_CALL]


async def test_a_model_thinking_past_the_bound_is_stopped_and_its_thinking_kept(
    manager: InMemoryConversationManager, fake_llm: FakeLLM
) -> None:
    provider = OpenAIProvider(fake_llm.base_url, fake_llm.api_key, "fake-model", 5, 0)
    agent = Agent(manager, provider, ToolRegistry(), system_prompt="Echo.", max_reply_seconds=0.5)
    fake_llm.queue_text("Answer.", reasoning="hmm " * 500, chunk_size=4, chunk_delay=0.02)
    async with provider:
        events = [event async for event in agent.respond(THREAD)]
    assert not any(isinstance(e, Final) for e in events)
    assert events[-1] == Failure(STOP_NOTES["time"])
    history = manager.get_conversation(THREAD).history  # type: ignore[union-attr]
    assert [m.message_type for m in history] == [MessageType.CHAT, MessageType.THINKING]
    assert history[-1].message_content.startswith("hmm hmm")
