"""``Agent.context()``: how what falls out of the window is folded into the rolling
summary, with the model or offline, once, and how a failing fold falls back.

Real parts only: a JSON-file store under ``tmp_path``, the memory manager, the real
providers (the offline ``EchoProvider``, or ``OpenAIProvider`` against the fake LLM).
"""

from __future__ import annotations

import asyncio
import json

from bot.agent import Agent, Failure, Final
from bot.llm import EchoProvider, OpenAIProvider
from memory import (
    InMemoryConversationManager,
    MessageType,
)
from tests.fake_llm.server.core import FakeLLM

from .helpers import (
    ALICE,
    BOB,
    FILLER_WORDS,
    NAMES,
    THREAD,
    Clock,
    answer,
    assert_tool_calls_complete,
    conversation_of,
    echo_says,
    filler,
    make_agent,
    say,
)

# --- folding -------------------------------------------------------------------------------


async def test_offline_folding_is_extractive_and_the_summary_is_then_sent(
    manager: InMemoryConversationManager,
) -> None:
    clock = Clock()
    await say(manager, clock, ALICE, "The ZEPHYR launch happens on Friday at the harbour.")
    await echo_says(manager, clock, "Noted: ZEPHYR launches Friday.")
    for n in range(6):
        await say(manager, clock, BOB, filler(n))
        await echo_says(manager, clock, f"Reply {n}.")
    agent = make_agent(manager, EchoProvider(), 600)

    events = await answer(agent)
    assert isinstance(events[-1], Final)
    conversation = conversation_of(manager)
    assert "Alice: The ZEPHYR launch happens on Friday at the harbour." in conversation.summary
    window = agent.context(conversation, NAMES)
    assert "ZEPHYR launch happens on Friday" not in json.dumps(window.messages[1:])
    assert conversation.summary in window.messages[0]["content"]


async def test_the_summary_never_crowds_the_recent_conversation_out(
    manager: InMemoryConversationManager,
) -> None:
    """However long a conversation gets, the summary takes a bounded share of the window.

    Offline, each fold appends extracted sentences; unbounded, the summary outgrew the whole
    budget and the model saw only the summary and the newest message (cut short).
    """
    clock = Clock()
    agent = make_agent(manager, EchoProvider(), 600)
    for n in range(12):
        await say(manager, clock, BOB, filler(n))
        events = await answer(agent)
        assert isinstance(events[-1], Final)
        question = f"Question {n}: " + "what do you make of all that? " * 6
        await say(manager, clock, ALICE, question)
        window = agent.context(conversation_of(manager), NAMES)
        assert window.messages[-1]["content"] == f"[Alice] {question}"
        # Echo's last answer and the message it answered are still there.
        assert window.messages[-2]["role"] == "assistant"
        assert window.messages[-3]["content"] == f"[Bob] {filler(n)}"
        assert window.tokens <= 600 * 0.75 + 10
    summary = conversation_of(manager).summary
    assert summary and summary in window.messages[0]["content"]


LONG_SUMMARY = "The running summary. " + "It keeps every fact said so far. " * 8


async def turn_forgetting_nothing(
    agent: Agent, manager: InMemoryConversationManager, fake_llm: FakeLLM
) -> None:
    """Answer once; then check that every person's message is in the request or was folded."""
    said = [m.message_content for m in conversation_of(manager).history if m.requester]
    events = await answer(agent)
    assert isinstance(events[-1], Final), events
    request = fake_llm.chat_requests[-1]
    assert request.stream
    folded = "".join(r.messages[1]["content"] for r in fake_llm.chat_requests if not r.stream)
    for text in said:
        in_window = any(text in (m.get("content") or "") for m in request.messages[1:])
        assert in_window or text in folded, f"{text[:40]!r} is neither sent nor folded"


async def test_every_message_leaving_the_window_is_folded_first(
    manager: InMemoryConversationManager, fake_llm: FakeLLM
) -> None:
    """Also when the new summary itself pushes more messages out of the window."""
    provider = OpenAIProvider(fake_llm.base_url, fake_llm.api_key, "fake-model", 5, 0)
    agent = make_agent(manager, provider, 300)
    clock = Clock()
    fake_llm.default_reply = LONG_SUMMARY
    async with provider:
        await say(manager, clock, ALICE, "The ZEPHYR launch happens on Friday at the harbour.")
        for n in range(16):
            await turn_forgetting_nothing(agent, manager, fake_llm)
            await say(manager, clock, BOB, f"Short note {n}: {FILLER_WORDS[n]}.")

    folds = [r for r in fake_llm.chat_requests if not r.stream]
    assert len(folds) >= 2
    for request in folds:
        assert request.messages[0]["content"].startswith("You maintain the running summary")
        # 300 tokens: 75 % for the prompt, 30 % of that for the summary, at least 400 chars.
        assert "At most 12 sentences and 400 characters." in request.messages[0]["content"]
        assert request.tools is None
    assert "Alice: The ZEPHYR launch happens on Friday at the harbour." in "".join(
        r.messages[1]["content"] for r in folds
    )
    # The second fold builds on the first summary.
    assert folds[1].messages[1]["content"].startswith("Summary so far:\n" + LONG_SUMMARY.strip())
    assert conversation_of(manager).summary == LONG_SUMMARY.strip()


async def test_a_message_written_during_a_reply_is_folded_when_it_leaves_the_window(
    manager: InMemoryConversationManager, fake_llm: FakeLLM
) -> None:
    """Echo's answer is recorded after, but placed before, a message sent while it was written.

    When the question and that answer leave the window, the later message (older by its
    Discord timestamp than Echo's answer) must still be folded once it leaves too.
    """
    provider = OpenAIProvider(fake_llm.base_url, fake_llm.api_key, "fake-model", 5, 0)
    agent = make_agent(manager, provider, 200)
    clock = Clock()
    fake_llm.default_reply = "Short."
    async with provider:
        await say(manager, clock, ALICE, "The ZEPHYR launch happens on Friday at the harbour.")
        # The reply starts; meanwhile Bob writes; then the reply is recorded.
        noted = "Noted: the launch is on Friday, at the harbour, and I will keep it in mind. " * 3
        fake_llm.queue_text(noted.strip(), delay=0.2)
        reply = asyncio.ensure_future(answer(agent))
        await fake_llm.wait_for_requests(1)
        await say(manager, clock, BOB, "Bob here: the KESTREL budget is 40k.")
        await reply
        history = conversation_of(manager).history
        assert [m.message_content for m in history][-2:] == [
            "Bob here: the KESTREL budget is 40k.",
            noted.strip(),
        ]
        for n in range(16):
            await turn_forgetting_nothing(agent, manager, fake_llm)
            await say(manager, clock, ALICE, f"Short note {n}: {FILLER_WORDS[n]}.")

    last = fake_llm.chat_requests[-1]
    assert "KESTREL" not in json.dumps(last.messages[1:]), "the window should have moved on"


async def test_a_failing_fold_falls_back_to_an_extractive_summary(
    manager: InMemoryConversationManager, fake_llm: FakeLLM
) -> None:
    provider = OpenAIProvider(fake_llm.base_url, fake_llm.api_key, "fake-model", 5, 0)
    agent = make_agent(manager, provider, 600)
    clock = Clock()
    await say(manager, clock, ALICE, "The ZEPHYR launch happens on Friday at the harbour.")
    for n in range(7):
        await say(manager, clock, BOB, filler(n))
    fake_llm.queue_error(503, "overloaded")
    fake_llm.default_reply = "Here you go."
    async with provider:
        events = await answer(agent)
    assert events[-1] == Final("Here you go.", "")
    fold, *rest = fake_llm.chat_requests
    after, reply = rest[0], rest[-1]
    assert not fold.stream and reply.stream
    # The extractive summary went on: into the next fold, or into the answer's system message.
    line = "Alice: The ZEPHYR launch happens on Friday at the harbour."
    assert line in (after.messages[0]["content"] + after.messages[-1]["content"])
    assert conversation_of(manager).summary in reply.messages[0]["content"]


async def test_a_fold_is_not_repeated_for_messages_already_folded(
    manager: InMemoryConversationManager, fake_llm: FakeLLM
) -> None:
    provider = OpenAIProvider(fake_llm.base_url, fake_llm.api_key, "fake-model", 5, 0)
    agent = make_agent(manager, provider, 600)
    clock = Clock()
    await say(manager, clock, ALICE, "The ZEPHYR launch happens on Friday at the harbour.")
    for n in range(7):
        await say(manager, clock, BOB, filler(n))
    fake_llm.default_reply = "Summary or answer."
    async with provider:
        await answer(agent)
        folds = len([r for r in fake_llm.chat_requests if not r.stream])
        await answer(agent)  # nothing new fell out of the window
    assert folds >= 1
    assert len([r for r in fake_llm.chat_requests if not r.stream]) == folds


async def test_summarize_offline_and_online(
    manager: InMemoryConversationManager, fake_llm: FakeLLM
) -> None:
    clock = Clock()
    await say(manager, clock, ALICE, "The ZEPHYR launch happens on Friday at the harbour.")
    await echo_says(manager, clock, "Noted.")
    conversation = conversation_of(manager)
    offline = await make_agent(manager, EchoProvider()).summarize(conversation, NAMES)
    assert "Alice: The ZEPHYR launch happens on Friday at the harbour." in offline

    provider = OpenAIProvider(fake_llm.base_url, fake_llm.api_key, "fake-model", 5, 0)
    fake_llm.queue_text("Alice announced the ZEPHYR launch.")
    async with provider:
        online = await make_agent(manager, provider).summarize(conversation, NAMES)
    assert online == "Alice announced the ZEPHYR launch."
    [request] = fake_llm.chat_requests
    assert "Alice: The ZEPHYR launch happens on Friday" in request.messages[-1]["content"]
    assert "Echo: Noted." in request.messages[-1]["content"]


async def test_an_empty_history_answer_is_a_failure_not_a_crash(
    manager: InMemoryConversationManager, fake_llm: FakeLLM
) -> None:
    provider = OpenAIProvider(fake_llm.base_url, fake_llm.api_key, "fake-model", 5, 0)
    fake_llm.queue_text("")
    await say(manager, Clock(), ALICE, "hello?")
    async with provider:
        events = await answer(make_agent(manager, provider))
    assert isinstance(events[-1], Failure)
    assert [m.message_type for m in conversation_of(manager).history] == [MessageType.CHAT]


async def test_a_big_tool_result_never_pushes_the_question_out_of_the_window(
    manager: InMemoryConversationManager, fake_llm: FakeLLM
) -> None:
    """Round two must still show what was asked, beside the call and its (long) result."""
    clock = Clock()
    for n in range(8):
        await say(manager, clock, BOB, f"Harbour note {n}: " + "the harbour crane moved. " * 12)
    await say(manager, clock, ALICE, "What did Bob say about the harbour crane?")
    await manager.set_summary(THREAD, "Bob has been posting harbour notes.")  # no fold now
    provider = OpenAIProvider(fake_llm.base_url, fake_llm.api_key, "fake-model", 5, 0)
    fake_llm.queue_tool_call("search_conversation", {"query": "harbour crane", "limit": 8})
    fake_llm.queue_text("He said it moved.")
    async with provider:
        events = await answer(make_agent(manager, provider, 600))
    assert events[-1] == Final("He said it moved.", "")
    second = [r for r in fake_llm.chat_requests if r.stream][1].messages
    assert_tool_calls_complete(second)
    assert second[-1]["role"] == "tool"
    assert {"role": "user", "content": "[Alice] What did Bob say about the harbour crane?"} in (
        second
    )
    # The result was shortened at its end (the best matches come first), to fit the budget.
    assert second[-1]["content"].startswith("8 of 8 matching messages, best first:")
    assert second[-1]["content"].endswith("…")
    assert sum(len(json.dumps(m)) for m in second) < 600 * 4
