"""The reply agent end to end: what Echo's messages look like (no pings, long answers
split at paragraphs, code blocks closed and reopened, streaming within Discord's rate
limit).

The real Echo (``bot.app.echo_app``) on the Discord emulator, talking to the fake LLM
through the real ``openai`` SDK; each test looks at what people in the thread see, what the
model was sent (``fake_llm.chat_requests``) and what was recorded.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.discord_emulator import DiscordEmulator
from tests.fake_llm.server.core import FakeLLM

from .agent_views import (
    CURSOR,
    PERM_MENTION_EVERYONE,
    echo_messages,
    replies_done,
)
from .echo_harness import running_echo


async def test_pings_in_model_output_never_ping(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    bob = emu.create_user("bob", global_name="Bob")
    role = emu.create_role(world.guild.id, "Moderators", mentionable=True)
    # Echo may mention @everyone in this guild: only allowed_mentions stands in the way.
    pingers = emu.create_role(world.guild.id, "Pingers", permissions=PERM_MENTION_EVERYONE)
    loud = f"@everyone @here look! <@&{role.id}> and <@{bob.id}> and <@{world.user.id}>"
    fake_llm.queue_text(loud)
    fake_llm.queue_text("Again: " + loud, chunk_size=5)
    fake_llm.queue_tool_call("explode_nonexistent", {})
    fake_llm.queue_text("")  # a failure line too
    async with running_echo(emu, tmp_path, llm=fake_llm) as echo:
        bot_member = emu.store.guild(world.guild.id).members[emu.bot_user.id]
        emu.add_member(world.guild.id, emu.bot_user.id, roles=[*bot_member.roles, pingers.id])
        emu.add_member(world.guild.id, bob.id)
        thread = await echo.mention("say something loud")
        await echo.answer_in(thread.id, lambda m: m["content"] == loud)
        await echo.say(thread.id, "once more, as a reply")  # Echo's answer quotes this one
        await echo.answer_in(thread.id, lambda m: m["content"] == "Again: " + loud)
        await echo.say(thread.id, "and fail")
        await echo.answer_in(thread.id, lambda m: m["content"].startswith("⚠️"))
        await replies_done(echo)
        shown = echo_messages(echo, thread.id)

    assert len(shown) == 3
    assert shown[1]["message_reference"] is not None  # a reply, yet not a ping
    for payload in shown:
        message = emu.get_message(int(payload["id"]))
        assert message.mention_everyone is False
        assert message.mention_ids == [] and message.mention_role_ids == []
        allowed = message.allowed_mentions
        assert allowed is not None, "Echo sent a message without allowed_mentions"
        assert not {"everyone", "roles", "users"} & set(allowed.get("parse", []))
        assert not allowed.get("users") and not allowed.get("roles")
    # Every edit of the streamed reply carried the same restriction.
    for request in emu.requests_to("PATCH", f"/channels/{thread.id}/messages/{{message_id}}"):
        allowed = request.json.get("allowed_mentions")
        assert allowed is not None and not allowed.get("parse") and not allowed.get("users")
        assert not allowed.get("replied_user"), "an edit turned the reply's ping on"


async def test_a_long_answer_is_split_at_a_paragraph_into_messages_of_at_most_2000(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    paragraphs = [f"Paragraph {n}. " + f"Sentence {n} goes on. " * 17 for n in range(10)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    assert 3300 < len(text) < 3700
    fake_llm.queue_text(text, chunk_size=250)
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("tell me a lot")
        await echo.emu.wait_for(
            lambda: (
                (
                    len(echo_messages(echo, thread.id)) == 2
                    and not echo_messages(echo, thread.id)[-1]["content"].endswith(CURSOR)
                )
                or None
            ),
            timeout=10,
            what="two messages",
        )
        await replies_done(echo)
        shown = [m["content"] for m in echo_messages(echo, thread.id)]
        conversation = echo.conversation(thread.id)

    assert len(shown) == 2
    assert all(len(part) <= 2000 for part in shown)
    assert shown[0] + "\n\n" + shown[1] == text  # cut between two paragraphs
    assert len(shown[0]) > 1000
    assert conversation is not None
    assert conversation.history[-1].message_content == text  # recorded whole, once


async def test_a_long_code_block_is_closed_and_reopened_across_messages(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    lines = [f"print('line {n:03d} of the program')  # step {n}" for n in range(95)]
    text = "Here you go:\n\n```python\n" + "\n".join(lines) + "\n```\n\nThat's all."
    assert len(text) > 4000
    fake_llm.queue_text(text, chunk_size=400)
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("write a program")
        await echo.answer_in(thread.id, lambda m: m["content"].endswith("That's all."))
        await replies_done(echo)
        shown = [m["content"] for m in echo_messages(echo, thread.id)]

    assert len(shown) == 3
    for part in shown:
        assert len(part) <= 2000
        fences = [line for line in part.split("\n") if line.startswith("```")]
        assert len(fences) % 2 == 0, f"an unclosed code block:\n{part}"
    assert shown[0].startswith("Here you go:\n\n```python\n") and shown[0].endswith("\n```")
    assert shown[1].startswith("```python\n") and shown[1].endswith("\n```")
    assert shown[2].startswith("```python\n")
    code = [line for part in shown for line in part.split("\n") if line.startswith("print(")]
    assert code == lines  # every line once, in order, none cut


async def test_a_reply_streams_within_discords_rate_limit_with_typing_first(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    text = " ".join(f"word{n}" for n in range(450))  # about 3,100 characters: two messages
    fake_llm.queue_text(text, chunk_size=60, chunk_delay=0.05)  # about 2.6 s of streaming
    limit = emu.limit_message_rate(limit=5, per=5.0)
    async with running_echo(emu, tmp_path, llm=fake_llm) as echo:
        loop = asyncio.get_running_loop()
        start = loop.time()
        thread = await echo.mention("stream a long one")
        # A first message appears while the model is still writing.
        first = await emu.wait_for_message(thread.id, timeout=5)
        first_after = loop.time() - start
        await emu.wait_for(
            lambda: " ".join(m["content"] for m in echo_messages(echo, thread.id)) == text or None,
            timeout=20,
            what="the whole answer",
        )
        whole_after = loop.time() - start
        await replies_done(echo)
        shown = [m["content"] for m in echo_messages(echo, thread.id)]

    # Posted with a few words (and the cursor) long before the model was done.
    assert first["content"].endswith(CURSOR) and len(first["content"]) < 500
    assert first_after < 1.0 and whole_after > 2.5, (first_after, whole_after)
    assert len(shown) == 2 and all(len(m) <= 2000 for m in shown)
    assert limit.throttled == 0, "Discord had to refuse a write (429)"
    writes = [
        r
        for r in emu.requests
        if r.method in ("POST", "PATCH", "DELETE")
        and r.path.startswith(f"/channels/{thread.id}/messages")
    ]
    # Posted, edited as it grew, finished: a handful of writes for about 50 deltas.
    assert 3 <= len(writes) <= 8, [(w.method, w.time) for w in writes]
    times = [w.time for w in writes]
    assert all(sum(1 for u in times if t <= u < t + 5.0) <= 5 for t in times), (
        "more than 5 writes in 5 s"
    )
    typing = emu.requests_to("POST", f"/channels/{thread.id}/typing")
    assert typing and typing[0].time <= writes[0].time
