"""Proof: a mention becomes a thread with a reply streamed from the LLM, all real clients.

The real discord.py client talks to the emulator over REST and the gateway, and the real
``openai`` SDK streams from the fake LLM; nothing in between is mocked.
"""

from __future__ import annotations

import time

import discord

from tests.discord_emulator import DiscordEmulator
from tests.discord_emulator.fixtures import make_bot, running_bot
from tests.fake_llm.server.core import FakeLLM

ANSWER = (
    "Hello Alice! Threads keep a conversation together, and this answer arrived "
    "from the fake LLM in small streamed pieces."
)


async def test_mention_starts_thread_and_streams_llm_reply(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    fake_llm.queue_text(ANSWER, chunk_size=9)
    llm = fake_llm.client(max_retries=0)
    bot = make_bot()

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if message.author.bot or bot.user not in message.mentions:
            return
        thread = await message.create_thread(name=f"Chat with {message.author.display_name}")
        assert bot.user is not None
        prompt = message.content.replace(bot.user.mention, "").strip()
        stream = await llm.chat.completions.create(
            model="fake-model",
            messages=[{"role": "user", "content": prompt}],
            stream=True,
        )
        text, reply, last_edit = "", None, 0.0
        async for chunk in stream:
            delta = chunk.choices[0].delta.content if chunk.choices else None
            if not delta:
                continue
            text += delta
            if reply is None:
                reply = await thread.send(text, allowed_mentions=discord.AllowedMentions.none())
                last_edit = time.monotonic()
            elif time.monotonic() - last_edit > 0.05:
                await reply.edit(content=text)
                last_edit = time.monotonic()
        assert reply is not None
        await reply.edit(content=text)

    async with llm, running_bot(bot, emu):
        posted = await emu.post_message(
            world.channel.id, world.user.id, f"<@{emu.bot_user.id}> what are threads for?"
        )
        thread = await emu.wait_for_thread(world.channel.id)
        final = await emu.wait_for_message(thread.id, predicate=lambda m: m["content"] == ANSWER)

    # The thread hangs off the user's message, as Discord does it.
    assert thread.id == int(posted["id"])
    assert thread.type == 11
    assert thread.parent_id == world.channel.id
    assert thread.owner_id == emu.bot_user.id
    assert emu.get_message(int(posted["id"])).thread_id == thread.id
    # The reply lives in the thread, was edited in place, and pings nobody.
    assert final["channel_id"] == str(thread.id)
    assert [m["id"] for m in emu.messages_in(thread.id)] == [final["id"]]
    assert emu.requests_to("PATCH", f"/channels/{thread.id}/messages/{final['id']}")
    assert emu.get_message(int(final["id"])).allowed_mentions == {"parse": []}
    # The LLM got the user's words, over a streamed request from the real SDK.
    [request] = fake_llm.chat_requests
    assert request.stream is True
    assert request.messages[-1] == {"role": "user", "content": "what are threads for?"}
