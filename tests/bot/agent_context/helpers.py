"""What the ``Agent.context()`` tests share: a thread of Alice and Bob, a clock that moves as
Discord's does, and ways to say things, answer, and run a tool round in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.agent import Agent
from bot.llm import ChatProvider
from bot.tools import default_tools
from memory import (
    Conversation,
    InMemoryConversationManager,
    Message,
    MessageType,
)
from memory.records.models import utcnow

THREAD = "900000000000000001"
ALICE = "111111111111111111"
BOB = "222222222222222222"
NAMES = {ALICE: "Alice", BOB: "Bob"}
SYSTEM = "You are Echo."
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
_ids = iter(range(300000000000000000, 400000000000000000))


def make_agent(
    manager: InMemoryConversationManager, provider: ChatProvider, tokens: int = 8000
) -> Agent:
    return Agent(
        manager, provider, default_tools(), system_prompt=SYSTEM, max_context_tokens=tokens
    )


class Clock:
    """The real time, strictly increasing, as Discord stamps people's messages."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        self.now = max(utcnow(), self.now + timedelta(microseconds=1))
        return self.now


async def say(manager: InMemoryConversationManager, clock: Clock, who: str, text: str) -> Message:
    message = Message(
        message_type=MessageType.CHAT,
        message_content=text,
        requester=who,
        message_id=str(next(_ids)),
        created_at=clock(),
    )
    await manager.add_message_to_conversation(THREAD, message)
    return message


async def echo_says(manager: InMemoryConversationManager, clock: Clock, text: str) -> None:
    await manager.add_message_to_conversation(
        THREAD, Message(message_type=MessageType.CHAT, message_content=text, created_at=clock())
    )


async def tool_round(
    manager: InMemoryConversationManager,
    clock: Clock,
    calls: list[tuple[str, str]],
    results: list[str],
) -> None:
    """A recorded tool call (ids, names) and its results (same order)."""
    await manager.add_message_to_conversation(
        THREAD,
        Message(
            message_type=MessageType.TOOL_CALL,
            tools=[{"id": i, "name": n, "params": {}} for i, n in calls],
            created_at=clock(),
        ),
    )
    for (call_id, name), text in zip(calls, results, strict=False):
        await manager.add_message_to_conversation(
            THREAD,
            Message(
                message_type=MessageType.TOOL_CALL_RESPONSE,
                message_content=text,
                tool_call_id=call_id,
                name=name,
                created_at=clock(),
            ),
        )


FILLER_WORDS = (
    "apples bridges candles dolphins engines forests glaciers hammers islands jackets kettles "
    "lanterns marbles needles oranges pencils quilts rivers saddles tunnels umbrellas violins "
    "wagons yachts zebras anchors barrels cactus drums eagles ferries goblets harps igloos"
).split()


def filler(n: int, sentences: int = 10) -> str:
    """About 350 characters of chatter whose words occur nowhere else in the conversation."""
    words = [f"{w}{n}" for w in FILLER_WORDS]
    return " ".join(
        f"{words[3 * k].capitalize()} {words[3 * k + 1]} {words[3 * k + 2]}."
        for k in range(sentences)
    )


def conversation_of(manager: InMemoryConversationManager) -> Conversation:
    conversation = manager.get_conversation(THREAD)
    assert conversation is not None
    return conversation


def assert_tool_calls_complete(messages: list[dict[str, Any]]) -> None:
    """Every assistant tool call is followed by exactly its results, and no result is stray."""
    index = 0
    while index < len(messages):
        message = messages[index]
        assert message["role"] != "tool", f"a tool result without its call at {index}"
        if message["role"] == "assistant" and message.get("tool_calls"):
            ids = [c["id"] for c in message["tool_calls"]]
            results = messages[index + 1 : index + 1 + len(ids)]
            assert [r.get("tool_call_id") for r in results] == ids
            index += 1 + len(ids)
            continue
        index += 1


async def answer(agent: Agent) -> list[Any]:
    return [event async for event in agent.respond(THREAD, NAMES)]
