"""The reply's time bound covers every part of it: a tool call, and a model still thinking."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.agent import Agent, Failure, Final, ToolUse
from bot.agent.bounds import STOP_NOTES, ReplyClock, Stopped, bounded
from bot.llm import ContentDelta, OpenAIProvider, ProviderEvent
from bot.tools import ToolContext, ToolRegistry
from memory import InMemoryConversationManager, JsonFileStore, Message, MessageType
from tests.fake_llm.server.core import FakeLLM

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


# --- one model stream under the deadline (``bounded``) -----------------------------------------


async def _events(stream: AsyncIterator[ProviderEvent], seconds: float) -> list[object]:
    return [event async for event in bounded(stream, ReplyClock(seconds, 10_000))]


async def test_a_stream_that_stalls_is_stopped_at_the_deadline_and_closed() -> None:
    closed = asyncio.Event()

    async def stalls() -> AsyncIterator[ProviderEvent]:
        try:
            yield ContentDelta("a")
            await asyncio.sleep(30)
            yield ContentDelta("never")
        finally:
            closed.set()

    started = time.monotonic()
    assert await _events(stalls(), 0.2) == [ContentDelta("a"), Stopped("time")]
    assert 0.15 < time.monotonic() - started < 5
    assert closed.is_set()
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_past_the_deadline_between_events_the_consumer_is_not_cancelled_but_stopped() -> None:
    async def two() -> AsyncIterator[ProviderEvent]:
        yield ContentDelta("a")
        yield ContentDelta("b")

    seen: list[object] = []
    async for event in bounded(two(), ReplyClock(0.1, 10_000)):
        seen.append(event)
        await asyncio.sleep(0.3)  # past the deadline, in the consumer: not cancelled here
    assert seen == [ContentDelta("a"), Stopped("time")]


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    async def stalls() -> AsyncIterator[ProviderEvent]:
        yield ContentDelta("a")
        await asyncio.sleep(30)
        yield ContentDelta("never")

    task = asyncio.get_running_loop().create_task(_events(stalls(), 10))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_stream_that_swallows_the_cancellation_is_still_stopped() -> None:
    async def stubborn() -> AsyncIterator[ProviderEvent]:
        yield ContentDelta("a")
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(30)
        yield ContentDelta("late")

    assert await _events(stubborn(), 0.1) == [ContentDelta("a"), Stopped("time")]
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
