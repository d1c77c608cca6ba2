"""Model-server dialects end to end: what people in the thread see and what is recorded.

- A think block opened by the prompt template (``reasoning</think>answer``: DeepSeek-V3.1,
  Qwen3 on llama.cpp): the reasoning Echo first streamed as the answer is taken off the
  screen at the orphan tag and recorded as thinking; from then on it is never shown.
- ``finish_reason: "length"``: the answer is shown with one line saying it was cut, and
  its record says so (``meta.cut``).
"""

from __future__ import annotations

import json
from pathlib import Path

from bot.agent.loop import CUT_NOTE
from tests.bot.test_llm_dialects import TEMPLATE_OPENED, content, sse
from tests.discord_emulator import DiscordEmulator
from tests.fake_llm.server.core import FakeLLM

from .agent_views import replies_done
from .echo_harness import Echo, running_echo

REASONING = "The user says hi. Greet back."
ANSWER = "Hello! 👋"


def versions(echo: Echo, thread_id: int) -> list[str]:
    """Every content Echo posted or edited in the thread, in order."""
    return [
        r.json.get("content", "")
        for r in echo.emu.requests_to("*", f"/channels/{thread_id}/messages*")
        if isinstance(r.json, dict) and "content" in r.json
    ]


async def test_reasoning_opened_by_the_template_is_taken_back_recorded_and_learned(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    # Slow enough that the first words are on screen before the orphan </think> comes.
    fake_llm.queue_raw(TEMPLATE_OPENED, piece_delay=0.15)
    fake_llm.queue_raw(TEMPLATE_OPENED, piece_delay=0.15)
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("hi")
        first = await echo.answer_in(thread.id, lambda m: m["content"] == ANSWER)
        await replies_done(echo)
        first_versions = versions(echo, thread.id)
        await echo.say(thread.id, "hi again")
        await echo.emu.wait_for(
            lambda: len([v for v in versions(echo, thread.id) if v == ANSWER]) >= 2 or None,
            timeout=10,
            what="the second answer",
        )
        await replies_done(echo)
        second_versions = versions(echo, thread.id)[len(first_versions) :]
        conversation = echo.conversation(thread.id)

    assert first["content"] == ANSWER
    # Undecided, the reasoning was on screen for a moment; it is gone from the answer.
    assert first_versions[0].startswith("The user"), first_versions
    assert not any("The user" in v for v in first_versions[1:]), first_versions
    assert not any("</think>" in v for v in first_versions + second_versions)
    # Learned: the second answer never showed it.
    assert second_versions and not any("The user" in v for v in second_versions)
    assert conversation is not None
    assert [(m.message_type.value, m.message_content) for m in conversation.history] == [
        ("chat", conversation.history[0].message_content),  # the mention
        ("thinking", REASONING),
        ("chat", ANSWER),
        ("chat", "hi again"),
        ("thinking", REASONING),
        ("chat", ANSWER),
    ]
    # The model is never sent its reasoning back as something it said.
    assert "The user says hi" not in json.dumps(fake_llm.chat_requests[1].messages)


async def test_an_answer_cut_at_the_length_limit_says_so_and_is_recorded_as_cut(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.queue_raw(sse(*content("The first three steps", " are: one, two"), finish="length"))
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("list the steps")
        answer = await echo.answer_in(thread.id, lambda m: m["content"].endswith(CUT_NOTE))
        await replies_done(echo)
        conversation = echo.conversation(thread.id)

    assert answer["content"] == f"The first three steps are: one, two\n\n{CUT_NOTE}"
    assert conversation is not None
    record = conversation.history[-1]
    assert record.message_content == "The first three steps are: one, two"
    assert record.meta.get("cut") == "length"
