"""Echo in Discord: mention -> thread -> recorded, streamed answers; who it answers; idle save."""

from __future__ import annotations

import json
from pathlib import Path

from tests.discord_emulator import DiscordEmulator
from tests.fake_llm.server.core import FakeLLM

from .echo_harness import running_echo


async def test_mention_opens_a_thread_and_answers_there(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.queue_text("Threads keep a conversation together. " * 3, chunk_size=6)
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("what are threads for?")
        answer = await echo.answer_in(thread.id)
        conversation = echo.conversation(thread.id)

    assert thread.name == "what are threads for?"
    assert thread.parent_id == echo.world.channel.id
    assert answer["content"] == ("Threads keep a conversation together. " * 3).strip()
    # What the model saw: the system prompt, then alice's message with her name.
    request = fake_llm.chat_requests[0]
    assert request.messages[0]["role"] == "system"
    assert request.messages[-1] == {
        "role": "user",
        "content": "[Alice] @Echo what are threads for?",
    }
    assert request.stream is True
    # What was recorded: alice's message (with its Discord id) and Echo's answer.
    assert conversation is not None
    assert conversation.requester == str(echo.world.user.id)
    assert conversation.channel_id == str(echo.world.channel.id)
    kinds = [(m.message_type.value, m.requester) for m in conversation.history]
    assert kinds == [("chat", str(echo.world.user.id)), ("chat", None)]
    assert conversation.history[0].message_id == str(thread.id)
    # Shutdown saved the file at the documented place.
    [path] = echo.files()
    assert path.name == conversation.filename
    assert len(json.loads(path.read_text())["history"]) == 2


async def test_thread_messages_are_recorded_and_answered_in_order(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    bob = emu.create_user("bob", global_name="Bob")
    async with running_echo(emu, tmp_path, llm=fake_llm) as echo:
        emu.add_member(echo.world.guild.id, bob.id)
        fake_llm.queue_text("Hello!")
        thread = await echo.mention("hi")
        await echo.answer_in(thread.id, lambda m: m["content"] == "Hello!")
        fake_llm.queue_text("Hi Bob, welcome.")
        await echo.say(thread.id, "mind if I join?", author_id=bob.id)
        await echo.answer_in(thread.id, lambda m: m["content"] == "Hi Bob, welcome.")
        conversation = echo.conversation(thread.id)

    assert conversation is not None
    assert conversation.participants == [str(echo.world.user.id), str(bob.id)]
    assert [m.message_content for m in conversation.history] == [
        "@Echo hi",
        "Hello!",
        "mind if I join?",
        "Hi Bob, welcome.",
    ]
    # The second request carried the whole conversation, each person by name.
    assert [m["content"] for m in fake_llm.chat_requests[1].messages[1:]] == [
        "[Alice] @Echo hi",
        "Hello!",
        "[Bob] mind if I join?",
    ]


async def test_a_burst_is_answered_once_with_everything_in_context(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        fake_llm.queue_text("A slow first answer.", delay=0.6)
        thread = await echo.mention("first question")
        await fake_llm.wait_for_requests(1)
        for text in ("one", "two", "three"):
            await echo.say(thread.id, text)
        fake_llm.queue_text("All three, answered together.")
        await echo.answer_in(thread.id, lambda m: m["content"] == "All three, answered together.")
        conversation = echo.conversation(thread.id)

    assert len(fake_llm.chat_requests) == 2  # not one per message
    assert [m["content"] for m in fake_llm.chat_requests[1].messages[-3:]] == [
        "[Alice] one",
        "[Alice] two",
        "[Alice] three",
    ]
    assert conversation is not None
    contents = [m.message_content for m in conversation.history]
    assert contents == [
        "@Echo first question",
        "one",
        "two",
        "three",
        "A slow first answer.",
        "All three, answered together.",
    ] or contents.index("A slow first answer.") < contents.index("All three, answered together.")


async def test_requester_mode_answers_others_only_when_mentioned(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    bob = emu.create_user("bob")
    async with running_echo(emu, tmp_path, llm=fake_llm, ECHO_THREAD_REPLIES="requester") as echo:
        emu.add_member(echo.world.guild.id, bob.id)
        thread = await echo.mention("hi")
        await echo.answer_in(thread.id)
        await echo.say(thread.id, "just chatting", author_id=bob.id)
        await echo.say(thread.id, echo.ping("and you?"), author_id=bob.id)
        await emu.wait_for(lambda: len(fake_llm.chat_requests) == 2 or None, timeout=5, what="2nd")
        await echo.say(thread.id, "me again, no mention")
        await emu.wait_for(lambda: len(fake_llm.chat_requests) == 3 or None, timeout=5, what="3rd")
        await emu.wait_for(
            lambda: len(echo.conversation(thread.id).history) == 7 or None,  # type: ignore[union-attr]
            timeout=5,
            what="all recorded",
        )
        conversation = echo.conversation(thread.id)

    # bob's unmentioned message was recorded (context) but did not trigger a request.
    assert conversation is not None
    assert "just chatting" in [m.message_content for m in conversation.history]
    assert "[bob] just chatting" in [m["content"] for m in fake_llm.chat_requests[1].messages]
    assert len(fake_llm.chat_requests) == 3


async def test_mention_mode_answers_only_mentions(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    async with running_echo(
        discord_emulator, tmp_path, llm=fake_llm, ECHO_THREAD_REPLIES="mention"
    ) as echo:
        thread = await echo.mention("hi")
        await echo.answer_in(thread.id)
        await echo.say(thread.id, "no mention here")
        await echo.say(thread.id, echo.ping("but here"))
        await fake_llm.wait_for_requests(2)
        # In the thread: answer, the two messages, answer (the starter is in #general).
        await echo.emu.wait_for(
            lambda: len(echo.emu.messages_in(thread.id)) == 4 or None, timeout=5, what="answer"
        )
    assert len(fake_llm.chat_requests) == 2


async def test_what_echo_ignores(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    other_bot = emu.create_user("otherbot", bot=True)
    async with running_echo(emu, tmp_path, llm=fake_llm) as echo:
        emu.add_member(echo.world.guild.id, other_bot.id)
        await echo.say(echo.world.channel.id, "no mention, just talking")
        await echo.say(echo.world.channel.id, echo.ping("a bot pinging"), author_id=other_bot.id)
        # A marker mention proves the two before it were seen and skipped.
        thread = await echo.mention("the real one")
        await echo.answer_in(thread.id)
        conversations = echo.bot.manager.get_all_conversations()
    assert len(emu.threads(echo.world.channel.id)) == 1
    assert len(fake_llm.chat_requests) == 1
    assert [c.history[0].message_content for c in conversations] == ["@Echo the real one"]


async def test_a_mention_inside_an_existing_thread_starts_there(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path, llm=fake_llm) as echo:
        side = await emu.create_thread(
            echo.world.channel.id, "side talk", owner_id=echo.world.user.id
        )
        await echo.say(side.id, "talking among ourselves")
        await echo.say(side.id, echo.ping("what do you think?"))
        await echo.answer_in(side.id)
        conversation = echo.conversation(side.id)
    assert conversation is not None
    assert conversation.channel_id == str(echo.world.channel.id)
    # Only from the mention on: what came before was not addressed to Echo.
    assert conversation.history[0].message_content == "@Echo what do you think?"
    assert len(emu.threads(echo.world.channel.id)) == 1


async def test_missing_thread_permission_is_said_to_both(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path, caplog
) -> None:  # type: ignore[no-untyped-def]
    emu = discord_emulator
    emu.fail_route(
        "POST",
        "/channels/{channel_id}/messages/{message_id}/threads",
        status=403,
        code=50013,
        message="Missing Permissions",
    )
    async with running_echo(emu, tmp_path, llm=fake_llm) as echo:
        await echo.say(echo.world.channel.id, echo.ping("hello?"))
        notice = await emu.wait_for_message(echo.world.channel.id)
    assert "Create Public Threads" in notice["content"]
    assert any(
        "Create Public Threads" in r.getMessage() and r.levelname == "WARNING"
        for r in caplog.records
    )
    assert fake_llm.chat_requests == []


async def test_a_restarted_bot_resumes_the_thread_in_the_same_file(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path, llm=fake_llm) as echo:
        fake_llm.queue_text("first run")
        thread = await echo.mention("remember me")
        await echo.answer_in(thread.id)
    [saved] = echo.files()
    # No catch-up (it would read the thread back at start): a new message resumes it from disk.
    async with running_echo(emu, tmp_path, llm=fake_llm, ECHO_CATCH_UP_HOURS="0") as echo:
        assert echo.conversation(thread.id) is None  # nothing active after a restart
        fake_llm.queue_text("second run")
        await echo.say(thread.id, "still there?")
        await echo.answer_in(thread.id, lambda m: m["content"] == "second run")
    assert echo.files() == [saved]
    history = json.loads(saved.read_text())["history"]
    assert [m["message_content"] for m in history] == [
        "@Echo remember me",
        "first run",
        "still there?",
        "second run",
    ]
    # The model saw the earlier run's messages too.
    assert "[Alice] @Echo remember me" in [m["content"] for m in fake_llm.chat_requests[1].messages]


async def test_idle_conversations_are_saved_while_running(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    async with running_echo(
        discord_emulator, tmp_path, llm=fake_llm, ECHO_IDLE_SECONDS="0.3"
    ) as echo:
        thread = await echo.mention("save me when idle")
        await echo.answer_in(thread.id)
        await echo.emu.wait_for(lambda: echo.files() or None, timeout=5, what="the idle save")
        # Evicted right after the save (the file appears a step before the eviction).
        await echo.emu.wait_for(
            lambda: True if echo.conversation(thread.id) is None else None,
            timeout=5,
            what="the eviction",
        )
        await echo.say(thread.id, "back again")
        await echo.emu.wait_for(
            lambda: len(echo.emu.messages_in(thread.id)) == 3 or None, timeout=5, what="answer"
        )
    [path] = echo.files()
    assert len(json.loads(path.read_text())["history"]) == 4


async def test_a_dropped_gateway_is_resumed_and_nothing_is_answered_twice(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("before the drop")
        await echo.answer_in(thread.id)
        await emu.drop_gateway(4000)
        fake_llm.queue_text("after the drop")
        await echo.say(thread.id, "during the drop")
        await echo.answer_in(thread.id, lambda m: m["content"] == "after the drop")
        conversation = echo.conversation(thread.id)
    assert emu.identify_count == 1 and emu.resume_count >= 1
    assert conversation is not None
    assert [m.message_content for m in conversation.history].count("during the drop") == 1
    assert len(fake_llm.chat_requests) == 2


async def test_a_direct_message_gets_a_one_line_note(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path, llm=fake_llm) as echo:
        await emu.post_dm(echo.world.user.id, "hello in private")
        dm = emu.dm_channel(echo.world.user.id)
        note = await emu.wait_for_message(dm.id)
        assert echo.bot.manager.get_all_conversations() == []
    assert note["content"].count("\n") == 0 and "servers" in note["content"]
    assert fake_llm.chat_requests == []
    assert echo.files() == []


async def test_a_redelivered_message_is_recorded_and_answered_once(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("hello")
        await echo.answer_in(thread.id)
        posted = await echo.say(thread.id, "only once please")
        await emu.wait_for(lambda: len(fake_llm.chat_requests) == 2 or None, timeout=5, what="2")
        await echo.emu.wait_for(
            lambda: len(emu.messages_in(thread.id)) == 3 or None, timeout=5, what="answer"
        )
        assert await emu.redeliver_message(int(posted["id"])) == 1
        # A RESUME that replays events the bot already handled, as Discord may do.
        first_seq = min(f.s for f in emu.gateway_frames("MESSAGE_CREATE") if f.s is not None)
        await emu.drop_gateway(4000, replay_from=first_seq)
        await emu.wait_for(lambda: emu.resume_count >= 1 or None, timeout=5, what="resume")
        # A marker message proves the redelivered events were processed before it.
        fake_llm.queue_text("marker answered")
        await echo.say(thread.id, "marker")
        await echo.answer_in(thread.id, lambda m: m["content"] == "marker answered")
        conversation = echo.conversation(thread.id)
    assert conversation is not None
    contents = [m.message_content for m in conversation.history]
    assert contents.count("only once please") == 1
    assert contents.count("@Echo hello") == 1
    assert len(fake_llm.chat_requests) == 3  # hello, only once please, marker
    assert len(emu.threads(echo.world.channel.id)) == 1
    # The replayed mention in #general did not make Echo try (and fail) to open a thread again.
    assert [m["content"] for m in emu.messages_in(echo.world.channel.id)] == [echo.ping("hello")]
    assert len(emu.requests_to("POST", "/channels/{channel_id}/messages/{message_id}/threads")) == 1
