"""The reply agent end to end: the context budget trims old turns, keeps tool pairs whole
and folds what it drops into a summary, with the model or offline.

The real Echo (``bot.app.echo_app``) on the Discord emulator, talking to the fake LLM
through the real ``openai`` SDK; each test looks at what people in the thread see, what the
model was sent (``fake_llm.chat_requests``) and what was recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.discord_emulator import DiscordEmulator
from tests.fake_llm.server.core import FakeLLM

from .agent_views import (
    assert_tool_calls_complete,
    echo_messages,
    replies_done,
)
from .echo_harness import Echo, running_echo


def paragraph(n: int) -> str:
    """About 400 characters whose words occur nowhere else in the conversation."""
    words = [f"{w}{n}" for w in FILLER_WORDS]
    return " ".join(
        f"{a.capitalize()} {b} {c}." for a, b, c in zip(*[iter(words)] * 3, strict=False)
    )


FILLER_WORDS = (
    "apples bridges candles dolphins engines forests glaciers hammers islands jackets kettles "
    "lanterns marbles needles oranges pencils quilts rivers saddles tunnels umbrellas violins "
    "wagons yachts zebras anchors barrels cactus drums eagles ferries goblets harps igloos"
).split()


async def converse(echo: Echo, thread_id: int, text: str) -> dict[str, Any]:
    """Say something in the thread and wait for Echo's (next) complete answer."""
    before = len(echo_messages(echo, thread_id))
    await echo.say(thread_id, text)
    await echo.emu.wait_for(
        lambda: len(echo_messages(echo, thread_id)) > before or None, timeout=10, what="an answer"
    )
    await replies_done(echo)
    return echo_messages(echo, thread_id)[-1]


async def test_the_context_budget_trims_keeps_tool_pairs_and_folds_with_the_model(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    """ECHO_MAX_CONTEXT_TOKENS=600: about 1,400 characters of history fit beside the prompt."""
    fake_llm.default_reply = "Noted."  # every answer, and every rolling summary
    async with running_echo(
        discord_emulator, tmp_path, llm=fake_llm, ECHO_MAX_CONTEXT_TOKENS="600"
    ) as echo:
        fake_llm.queue_tool_call("current_time", {}, call_id="call_old")
        thread = await echo.mention("we launch ZEPHYR on Friday; what time is it now?")
        await echo.answer_in(thread.id)
        await replies_done(echo)
        for n in range(6):
            await converse(echo, thread.id, paragraph(n))
        await converse(echo, thread.id, "what did we plan?")
        conversation = echo.conversation(thread.id)

    assert conversation is not None
    requests = fake_llm.chat_requests
    folds = [r for r in requests if not r.stream]
    answers = [r for r in requests if r.stream]
    assert len(answers) == 9  # 2 for the tool round, then one per message
    # The fold request: the summariser's prompt, the dropped messages by name, no tools.
    assert folds, "nothing was folded into the rolling summary"
    first_fold = folds[0].messages
    assert first_fold[0]["content"].startswith("You maintain the running summary")
    assert "Summary so far:\n(none)" in first_fold[1]["content"]
    assert (
        "Alice: @Echo we launch ZEPHYR on Friday; what time is it now?" in first_fold[1]["content"]
    )
    assert "(tool current_time returned:" in first_fold[1]["content"]
    assert folds[0].tools is None
    for request in answers:
        assert_tool_calls_complete(request.messages)
        assert len(json.dumps(request.messages)) < 600 * 4, "a request exceeds the budget"
    # The tool call left the window together with its result.
    ids = [[m.get("tool_call_id") for m in r.messages if m["role"] == "tool"] for r in answers]
    assert ["call_old"] in ids and ids[-1] == []
    # The oldest messages fell out of the window; the summary is in the system message.
    last = answers[-1].messages
    assert "ZEPHYR" not in json.dumps(last[1:])
    assert conversation.summary == "Noted."
    assert last[0]["content"].endswith("Summary of the earlier part of this conversation:\nNoted.")
    assert last[-1] == {"role": "user", "content": "[Alice] what did we plan?"}
    # Nothing was lost on disk: 1 + 3 (tool round) + 7 x 2.
    assert len(conversation.history) == 18
    saved = json.loads(echo.files()[0].read_text())
    assert len(saved["history"]) == 18 and saved["summary"] == "Noted."


async def test_offline_the_context_budget_folds_extractively(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    async with running_echo(discord_emulator, tmp_path, ECHO_MAX_CONTEXT_TOKENS="600") as echo:
        thread = await echo.mention("The ZEPHYR launch happens on Friday at the harbour.")
        await echo.answer_in(thread.id)
        await replies_done(echo)
        for n in range(5):
            await converse(echo, thread.id, paragraph(n))
        last = await converse(echo, thread.id, "what did we plan?")
        conversation = echo.conversation(thread.id)
        names = echo.bot.get_cog("Conversation").names  # type: ignore[union-attr]
        window = echo.bot.agent.context(conversation, names)  # type: ignore[arg-type]

    assert last["content"].endswith("You said: what did we plan?")
    assert conversation is not None
    assert (
        "Alice: @Echo The ZEPHYR launch happens on Friday at the harbour." in conversation.summary
    )
    assert conversation.summary in window.messages[0]["content"]
    assert "ZEPHYR" not in json.dumps(window.messages[1:])
    # The model gets the answer as recorded: without the offline model's notice shown above it.
    assert window.messages[-2:] == [
        {"role": "user", "content": "[Alice] what did we plan?"},
        {"role": "assistant", "content": "You said: what did we plan?"},
    ]
    saved = json.loads(echo.files()[0].read_text())
    assert saved["summary"] == conversation.summary
    assert len(saved["history"]) == 14
