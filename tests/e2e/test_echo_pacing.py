"""Streamed replies stay inside Discord's global limit when many threads stream at once:
Echo paces its own writes (``bot.pacing.WriteBudget``) instead of collecting 429s."""

from __future__ import annotations

from pathlib import Path

from bot.pacing import WriteBudget
from tests.discord_emulator import DiscordEmulator
from tests.fake_llm.server import FakeLLM

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
