"""``Agent.context()``: what the model is sent, and how history is trimmed to the token
budget (a tool call never without its results).

Real parts only: a JSON-file store under ``tmp_path``, the memory manager, the real
providers (the offline ``EchoProvider``, or ``OpenAIProvider`` against the fake LLM).
"""

from __future__ import annotations

import json

from bot.llm import EchoProvider
from memory import (
    InMemoryConversationManager,
    Message,
    MessageType,
)

from .helpers import (
    ALICE,
    BOB,
    NAMES,
    SYSTEM,
    THREAD,
    Clock,
    assert_tool_calls_complete,
    conversation_of,
    echo_says,
    make_agent,
    say,
    tool_round,
)

# --- what is sent --------------------------------------------------------------------------


async def test_context_is_system_then_history_with_names_and_without_thinking(
    manager: InMemoryConversationManager,
) -> None:
    clock = Clock()
    await say(manager, clock, ALICE, "hi")
    await manager.add_message_to_conversation(
        THREAD,
        Message(message_type=MessageType.THINKING, message_content="PRIVATE", created_at=clock()),
    )
    await echo_says(manager, clock, "Hello Alice.")
    await say(manager, clock, BOB, "and me?")
    stranger = "333333333333333333"
    await manager.add_message_to_conversation(
        THREAD,
        Message(
            message_type=MessageType.CHAT,
            message_content="who am I?",
            requester=stranger,
            created_at=clock(),
            meta={"author_name": "Carol"},
        ),
    )
    agent = make_agent(manager, EchoProvider())
    window = agent.context(conversation_of(manager), NAMES)

    assert window.messages == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "[Alice] hi"},
        {"role": "assistant", "content": "Hello Alice."},
        {"role": "user", "content": "[Bob] and me?"},
        {"role": "user", "content": "[Carol] who am I?"},
    ]
    assert window.dropped == []
    assert "PRIVATE" not in json.dumps(window.messages)
    # Thinking stays on disk.
    assert [m.message_type for m in conversation_of(manager).history].count(
        MessageType.THINKING
    ) == 1


async def test_the_summary_goes_into_the_system_message(
    manager: InMemoryConversationManager,
) -> None:
    await manager.set_summary(THREAD, "Alice likes teal.")
    await say(manager, Clock(), ALICE, "hi")
    window = make_agent(manager, EchoProvider()).context(conversation_of(manager), NAMES)
    assert window.messages[0]["role"] == "system"
    assert window.messages[0]["content"].startswith(SYSTEM)
    assert "Alice likes teal." in window.messages[0]["content"]


# --- trimming ------------------------------------------------------------------------------


async def test_trimming_keeps_the_newest_and_never_separates_a_tool_call_from_its_results(
    manager: InMemoryConversationManager,
) -> None:
    clock = Clock()
    for n in range(3):
        await say(manager, clock, ALICE, f"old message {n} " + "x" * 300)
        await echo_says(manager, clock, f"old answer {n}")
    await say(manager, clock, ALICE, "look it up")
    await tool_round(
        manager,
        clock,
        [("call_a", "current_time"), ("call_b", "search_conversation")],
        ["r" * 700, "s" * 700],
    )
    await echo_says(manager, clock, "found it")
    await say(manager, clock, BOB, "newest question")
    conversation = conversation_of(manager)

    sizes = []
    for tokens in range(100, 2000, 25):
        window = make_agent(manager, EchoProvider(), tokens).context(conversation, NAMES)
        messages = window.messages
        assert_tool_calls_complete(messages)
        assert messages[-1] == {"role": "user", "content": "[Bob] newest question"}
        ids = [m.get("tool_call_id") for m in messages if m["role"] == "tool"]
        assert ids in ([], ["call_a", "call_b"])
        # What was left out is exactly the oldest part of the history.
        kept = len(messages) - 1
        assert len(window.dropped) + kept == len(conversation.history)
        assert window.dropped == conversation.history[: len(window.dropped)]
        sizes.append(kept)
    assert sizes == sorted(sizes), "a bigger budget never keeps less"
    assert sizes[0] <= 2 and sizes[-1] == len(conversation.history)
    # Somewhere in between the pair was in and the old messages out.
    assert any(0 < s < len(conversation.history) and s >= 5 for s in sizes)


async def test_a_tool_call_without_its_results_is_left_out(
    manager: InMemoryConversationManager,
) -> None:
    """A crash between recording the call and its results: the API would refuse the call."""
    clock = Clock()
    await say(manager, clock, ALICE, "first")
    calls = [("call_x", "current_time"), ("call_y", "current_time")]
    await tool_round(manager, clock, calls, ["only one"])
    await say(manager, clock, ALICE, "second")
    await tool_round(manager, clock, [], [])  # a call record with no calls at all
    await manager.add_message_to_conversation(
        THREAD,
        Message(
            message_type=MessageType.TOOL_CALL_RESPONSE,
            message_content="stray",
            tool_call_id="call_nobody",
            created_at=clock(),
        ),
    )
    window = make_agent(manager, EchoProvider()).context(conversation_of(manager), NAMES)
    assert window.messages[1:] == [
        {"role": "user", "content": "[Alice] first"},
        {"role": "user", "content": "[Alice] second"},
    ]


async def test_a_message_too_long_for_the_whole_budget_keeps_its_end(
    manager: InMemoryConversationManager,
) -> None:
    text = "START " + "blah " * 2000 + "the actual question?"
    await say(manager, Clock(), ALICE, text)
    window = make_agent(manager, EchoProvider(), 600).context(conversation_of(manager), NAMES)
    [_, message] = window.messages
    assert message["content"].endswith("the actual question?")
    assert "START" not in message["content"]
    assert len(message["content"]) < 600 * 4
