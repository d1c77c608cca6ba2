"""The reply agent end to end: the model's thinking is recorded, not shown unless asked,
and never sent back.

The real Echo (``bot.app.echo_app``) on the Discord emulator, talking to the fake LLM
through the real ``openai`` SDK; each test looks at what people in the thread see, what the
model was sent (``fake_llm.chat_requests``) and what was recorded.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.discord_emulator import DiscordEmulator
from tests.fake_llm.server.core import FakeLLM

from .agent_views import (
    echo_messages,
    kinds,
    replies_done,
    saved_history,
    sent_text,
)
from .echo_harness import running_echo


async def test_reasoning_content_is_recorded_not_shown_and_not_sent_back(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    reasoning = "The user asks 2+2. Basic arithmetic: SECRET-CHAIN-OF-THOUGHT gives 4."
    fake_llm.queue_text("2 + 2 = 4.", reasoning=reasoning)
    fake_llm.queue_text("You're welcome!")
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("what is 2+2?")
        answer = await echo.answer_in(thread.id)
        await echo.say(thread.id, "thanks")
        await echo.answer_in(thread.id, lambda m: m["content"] == "You're welcome!")
        await replies_done(echo)
        conversation = echo.conversation(thread.id)
        shown = [m["content"] for m in echo_messages(echo, thread.id)]

    assert answer["content"] == "2 + 2 = 4."
    assert not any("SECRET" in text for text in shown)
    assert kinds(conversation) == ["chat", "thinking", "chat", "chat", "chat"]
    assert conversation is not None
    thinking = conversation.history[1]
    assert thinking.message_content == reasoning
    assert thinking.requester is None
    # Kept on disk...
    assert [m["message_type"] for m in saved_history(echo)][1] == "thinking"
    assert saved_history(echo)[1]["message_content"] == reasoning
    # ...but never sent back to the model.
    second = fake_llm.chat_requests[1]
    assert "SECRET-CHAIN-OF-THOUGHT" not in sent_text(second)
    assert [m["content"] for m in second.messages[1:]] == [
        "[Alice] @Echo what is 2+2?",
        "2 + 2 = 4.",
        "[Alice] thanks",
    ]


async def test_the_reasoning_field_spelling_is_recorded_too(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.queue_text("Paris.", reasoning="France's capital: Paris.", reasoning_field="reasoning")
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("capital of France?")
        answer = await echo.answer_in(thread.id)
        await replies_done(echo)
        conversation = echo.conversation(thread.id)

    assert answer["content"] == "Paris."
    assert conversation is not None
    assert [(m.message_type.value, m.message_content) for m in conversation.history[1:]] == [
        ("thinking", "France's capital: Paris."),
        ("chat", "Paris."),
    ]


async def test_think_tags_are_recorded_as_thinking_and_stripped_from_the_answer(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.queue_text(
        "Blue, because of Rayleigh scattering.",
        reasoning="Sky colour question; mention scattering.",
        think_tags=True,
        chunk_size=3,
    )
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("why is the sky blue?")
        answer = await echo.answer_in(thread.id)
        await replies_done(echo)
        conversation = echo.conversation(thread.id)
        every_version = [
            r.json.get("content", "")
            for r in echo.emu.requests_to("*", f"/channels/{thread.id}/messages*")
            if isinstance(r.json, dict)
        ]

    assert answer["content"] == "Blue, because of Rayleigh scattering."
    # Not even a streamed intermediate version showed the tags or the reasoning.
    assert every_version and not any(
        "think>" in text or "Sky colour" in text for text in every_version
    )
    assert conversation is not None
    assert [(m.message_type.value, m.message_content) for m in conversation.history[1:]] == [
        ("thinking", "Sky colour question; mention scattering."),
        ("chat", "Blue, because of Rayleigh scattering."),
    ]


async def test_show_thinking_puts_the_reasoning_in_a_spoiler_before_the_answer(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.queue_text("It is 42.", reasoning="Deep thought computed this for ages.")
    async with running_echo(
        discord_emulator, tmp_path, llm=fake_llm, ECHO_SHOW_THINKING="true"
    ) as echo:
        thread = await echo.mention("the answer?")
        answer = await echo.answer_in(thread.id, lambda m: m["content"].endswith("It is 42."))
        await replies_done(echo)
        shown = [m["content"] for m in echo_messages(echo, thread.id)]

    assert shown == [answer["content"]]
    spoiler = re.match(r"^(.*?)\|\|(.+?)\|\|\s*\n\s*It is 42\.$", answer["content"], re.S)
    assert spoiler is not None, answer["content"]
    assert "Deep thought computed this for ages." in spoiler.group(2)


async def test_thinking_is_not_shown_by_default(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.queue_text("It is 42.", reasoning="Deep thought computed this for ages.")
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("the answer?")
        answer = await echo.answer_in(thread.id)
    assert answer["content"] == "It is 42."
    assert "||" not in answer["content"]
