"""Streamed replies stay inside Discord's global limit when many threads stream at once:
Echo paces its own writes (``bot.discord.pacing.WriteBudget``) instead of collecting 429s."""

from __future__ import annotations

from pathlib import Path

from bot.discord.pacing import WriteBudget
from bot.discord.waits import Wait
from tests.discord_emulator import DiscordEmulator
from tests.fake_llm.server.core import FakeLLM

from .echo_harness import running_echo

THREADS = 6


async def test_many_streaming_replies_adapt_to_the_global_limit(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    text = " ".join(f"word{n}" for n in range(60))
    for _ in range(THREADS):
        fake_llm.queue_text(text, chunk_size=12, chunk_delay=0.04)  # about 1.6 s of streaming
    async with running_echo(
        emu, tmp_path, llm=fake_llm, ECHO_MAX_CONCURRENT_REPLIES=str(THREADS)
    ) as echo:
        # A small global budget on both sides, so that six replies are enough to reach it.
        echo.bot.write_budget = WriteBudget(global_limit=10)
        overall = emu.limit_global_rate(limit=10, per=1.0)
        channel_bucket = emu.limit_message_rate(limit=5, per=5.0)
        threads = []
        for i in range(THREADS):
            user = emu.create_user(f"reader{i}")
            emu.add_member(world.guild.id, user.id)
            thread = await emu.create_thread(world.channel.id, f"t{i}", owner_id=user.id)
            threads.append(thread)
            await emu.post_message(thread.id, user.id, f"<@{emu.bot_user.id}> tell me {i}")
        for thread in threads:
            await emu.wait_for_message(
                thread.id, predicate=lambda m: m["content"] == text, timeout=30
            )

    refused = [(r.method, r.path) for r in emu.requests if r.status == 429]
    assert overall.throttled == 0, refused
    assert channel_bucket.throttled == 0
    for thread in threads:
        assert [
            m["content"]
            for m in emu.messages_in(thread.id)
            if int(m["author"]["id"]) == emu.bot_user.id
        ] == [text]


async def test_a_message_that_came_while_its_reply_waited_is_not_answered_again(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    fake_llm.queue_text("the long answer", delay=1.0)  # holds the only model slot
    fake_llm.queue_text("one answer to both")
    fake_llm.queue_text("a second answer nobody asked for")
    async with running_echo(emu, tmp_path, llm=fake_llm, ECHO_MAX_CONCURRENT_REPLIES="1") as echo:
        waits: list[Wait] = []
        echo.bot.waits.subscribe(waits.append)
        first = await emu.create_thread(world.channel.id, "busy", owner_id=world.user.id)
        await emu.post_message(first.id, world.user.id, f"<@{emu.bot_user.id}> a long one")
        await fake_llm.wait_for_requests(1)
        other = emu.create_user("bob")
        emu.add_member(world.guild.id, other.id)
        second = await emu.create_thread(world.channel.id, "waiting", owner_id=other.id)
        await emu.post_message(second.id, other.id, f"<@{emu.bot_user.id}> question one")
        await emu.wait_for_message(second.id)  # the busy note: this reply waits for the slot
        await emu.post_message(second.id, other.id, "and question two")
        await emu.wait_for_message(
            second.id, predicate=lambda m: m["content"] == "one answer to both", timeout=10
        )
        await emu.wait_for(
            lambda: all(t.done() for t in echo.bot.reply_tasks) or None,
            timeout=10,
            what="the replies to finish",
        )

    # The reply that waited was built after both questions: it answered both, once.
    assert len(fake_llm.chat_requests) == 2
    newest = fake_llm.chat_requests[1].messages[-1]["content"]
    assert "question two" in newest
    shown = [
        m["content"]
        for m in emu.messages_in(second.id)
        if m["author"]["id"] == str(emu.bot_user.id)
    ]
    assert "a second answer nobody asked for" not in shown
    # The wait for the slot was reported, for that thread, ending before its model request.
    slot = [w for w in waits if w.kind == "model slot"]
    assert [w.channel_id for w in slot] == [second.id]
    assert 0 < slot[0].seconds < 10
    assert slot[0].ended <= fake_llm.chat_requests[1].arrived
