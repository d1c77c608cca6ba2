"""A reply has bounds: ECHO_MAX_REPLY_SECONDS for the whole of it, ECHO_MAX_REPLY_CHARS of
answer (issue 14, item 3). Past either Echo stops the model, keeps what it showed as the
answer (recorded with ``meta.cut``), says so in one line and frees its reply slot."""

from __future__ import annotations

import time
from pathlib import Path

from bot.agent.bounds import STOP_NOTES
from memory import MessageType
from tests.discord_emulator import DiscordEmulator
from tests.fake_llm.server.core import FakeLLM

from .echo_harness import Echo, running_echo


def echo_answers(echo: Echo, thread_id: int) -> list[str]:
    return [
        m.message_content
        for m in echo.conversation(thread_id).history  # type: ignore[union-attr]
        if m.requester is None and m.message_type is MessageType.CHAT
    ]


def cut_of(echo: Echo, thread_id: int) -> list[object]:
    return [
        m.meta.get("cut")
        for m in echo.conversation(thread_id).history  # type: ignore[union-attr]
        if m.requester is None and m.message_type is MessageType.CHAT
    ]


def stop_lines(echo: Echo, thread_id: int) -> int:
    return sum(m["content"].count("I stopped here") for m in echo.emu.messages_in(thread_id))


async def test_a_trickling_model_is_stopped_in_time_and_the_next_reply_proceeds(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    settings = {"ECHO_MAX_REPLY_SECONDS": "1.5", "ECHO_MAX_CONCURRENT_REPLIES": "1"}
    async with running_echo(emu, tmp_path, llm=fake_llm, **settings) as echo:
        bob = emu.create_user("bob")
        emu.add_member(echo.world.guild.id, bob.id)
        # Every read is quick (a chunk each 50 ms, LLM_TIMEOUT_SECONDS is 5), the whole is 40 s.
        fake_llm.queue_text("word " * 800, chunk_size=5, chunk_delay=0.05)
        fake_llm.queue_text("Your turn now, Bob.")
        started = time.monotonic()
        first = await echo.mention("Tell me everything you know.")
        await fake_llm.wait_for_requests(1)
        await emu.post_message(echo.world.channel.id, bob.id, echo.ping("A quick one?"))
        second = await emu.wait_for_thread(
            echo.world.channel.id, predicate=lambda t: t.id != first.id
        )
        shown = await echo.answer_in(
            first.id, lambda m: m["content"].endswith(STOP_NOTES["time"]), timeout=15
        )
        await echo.answer_in(second.id, lambda m: m["content"] == "Your turn now, Bob.", timeout=15)
        took = time.monotonic() - started
        await emu.wait_for(lambda: fake_llm.hangups or None, timeout=5, what="stream closed")
        [answer] = echo_answers(echo, first.id)
        cuts = cut_of(echo, first.id)
        lines = stop_lines(echo, first.id)
    assert answer.startswith("word word") and len(answer) < len("word " * 800) // 2
    assert shown["content"] == f"{answer}\n\n{STOP_NOTES['time']}"
    assert cuts == ["time"]
    assert lines == 1
    assert took < 10


async def test_a_huge_answer_is_cut_at_the_length_bound(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path, llm=fake_llm, ECHO_MAX_REPLY_CHARS="3000") as echo:
        fake_llm.queue_text("abcdefghij" * 30_000, chunk_size=1000)  # 300 KB
        thread = await echo.mention("Write me a novel.")
        await echo.answer_in(
            thread.id, lambda m: m["content"].endswith(STOP_NOTES["length"]), timeout=15
        )
        [answer] = echo_answers(echo, thread.id)
        cuts = cut_of(echo, thread.id)
        posted = [m["content"] for m in emu.messages_in(thread.id)]
        lines = stop_lines(echo, thread.id)
    assert answer == ("abcdefghij" * 300)[:3000]
    assert cuts == ["length"]
    assert lines == 1
    assert len(posted) == 2  # 3,000 characters and the line, in Discord's 2,000 a message
    assert "".join(posted).count("a") == 300 + STOP_NOTES["length"].count("a")
