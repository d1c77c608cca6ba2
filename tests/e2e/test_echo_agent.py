"""The reply agent end to end: the real Echo (``bot.app.echo_app``) on the Discord emulator,
talking to the fake LLM through the real ``openai`` SDK.

Each test looks at three things: what people in the thread see (the emulator's messages),
what the model was sent (``fake_llm.chat_requests``), and what was recorded (the live
conversation and the JSON file written at shutdown).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path
from typing import Any

from memory import Conversation, MessageType
from tests.discord_emulator import DiscordEmulator
from tests.fake_llm.server.core import FakeLLM

from .echo_harness import Echo, running_echo

CURSOR = "▌"
PERM_MENTION_EVERYONE = 1 << 17


# --- helpers (written here: the harness belongs to someone else) ------------------------------


def echo_messages(echo: Echo, channel_id: int) -> list[dict[str, Any]]:
    """Echo's live messages in a channel or thread, oldest first."""
    return [
        m
        for m in echo.emu.messages_in(channel_id)
        if int(m["author"]["id"]) == echo.emu.bot_user.id
    ]


async def replies_done(echo: Echo) -> None:
    """Wait until no reply is being written (the cog's worker tasks have all finished)."""
    await echo.emu.wait_for(
        lambda: all(t.done() for t in echo.bot.reply_tasks) or None,
        timeout=10,
        what="the replies in flight to finish",
    )


def kinds(conversation: Conversation | None) -> list[str]:
    assert conversation is not None
    return [m.message_type.value for m in conversation.history]


def saved_history(echo: Echo) -> list[dict[str, Any]]:
    [path] = echo.files()
    return json.loads(path.read_text())["history"]


def sent_text(request: Any) -> str:
    """Everything a request put in front of the model, as one string."""
    return json.dumps(request.messages, ensure_ascii=False)


def assert_tool_calls_complete(messages: list[dict[str, Any]]) -> None:
    """Every assistant tool call is followed by exactly its results, and no result is stray."""
    index = 0
    while index < len(messages):
        message = messages[index]
        assert message["role"] != "tool", f"a tool result without its call at {index}: {messages}"
        if message["role"] == "assistant" and message.get("tool_calls"):
            ids = [c["id"] for c in message["tool_calls"]]
            results = messages[index + 1 : index + 1 + len(ids)]
            assert [r["role"] for r in results] == ["tool"] * len(ids), messages
            assert sorted(r["tool_call_id"] for r in results) == sorted(ids)
            index += 1 + len(ids)
            continue
        index += 1


# --- reasoning -------------------------------------------------------------------------------


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


# --- tools -----------------------------------------------------------------------------------


async def test_a_current_time_call_is_recorded_and_its_result_goes_back_to_the_model(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.queue_tool_call("current_time", {"timezone": "Europe/Paris"}, call_id="call_time_1")
    fake_llm.queue_text("It's afternoon in Paris.")
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("what time is it in Paris?")
        answer = await echo.answer_in(thread.id)
        await replies_done(echo)
        conversation = echo.conversation(thread.id)
        shown = echo_messages(echo, thread.id)

    assert answer["content"] == "It's afternoon in Paris."
    assert len(shown) == 1
    assert kinds(conversation) == ["chat", "tool_call", "tool_call_response", "chat"]
    assert conversation is not None
    call, result = conversation.history[1], conversation.history[2]
    assert [t.model_dump() for t in call.tools or []] == [
        {"id": "call_time_1", "name": "current_time", "params": {"timezone": "Europe/Paris"}}
    ]
    assert result.tool_call_id == "call_time_1"
    assert "Europe/Paris" in result.message_content
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00", result.message_content)
    # On disk with the documented meta keys.
    saved = saved_history(echo)
    assert saved[1]["meta"]["tools"] == [
        {"id": "call_time_1", "name": "current_time", "params": {"timezone": "Europe/Paris"}}
    ]
    assert saved[2]["meta"]["tool_call_id"] == "call_time_1"

    # The first request offered the tools, with schemas from their signatures.
    first, second = fake_llm.chat_requests
    offered = {t["function"]["name"]: t["function"] for t in first.tools or []}
    assert {"current_time", "search_conversation"} <= set(offered)
    assert "timezone" in offered["current_time"]["parameters"]["properties"]
    assert offered["search_conversation"]["parameters"]["required"] == ["query"]
    # The second carried the assistant's call and the tool's result, in that order.
    assistant, tool = second.messages[-2:]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"] == [
        {
            "id": "call_time_1",
            "type": "function",
            "function": {"name": "current_time", "arguments": '{"timezone": "Europe/Paris"}'},
        }
    ]
    assert tool == {
        "role": "tool",
        "tool_call_id": "call_time_1",
        "content": result.message_content,
    }
    assert second.messages[-3] == {
        "role": "user",
        "content": "[Alice] @Echo what time is it in Paris?",
    }


async def test_search_conversation_finds_an_older_message(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        fake_llm.queue_text("Noted!")
        thread = await echo.mention("my locker code is 4711, remember it")
        await echo.answer_in(thread.id, lambda m: m["content"] == "Noted!")
        fake_llm.queue_text("Rainy, probably.")
        await echo.say(thread.id, "what's the weather like?")
        await echo.answer_in(thread.id, lambda m: m["content"] == "Rainy, probably.")
        fake_llm.queue_tool_call("search_conversation", {"query": "locker code"}, call_id="c_s")
        fake_llm.queue_text("Your locker code is 4711.")
        await echo.say(thread.id, "what was my locker code again?")
        await echo.answer_in(thread.id, lambda m: m["content"] == "Your locker code is 4711.")
        await replies_done(echo)
        conversation = echo.conversation(thread.id)

    tool = fake_llm.chat_requests[-1].messages[-1]
    assert tool["role"] == "tool" and tool["tool_call_id"] == "c_s"
    assert "my locker code is 4711" in tool["content"]
    # The question being answered is not a "match" of itself.
    assert "again" not in tool["content"]
    assert conversation is not None
    assert conversation.history[-2].message_type is MessageType.TOOL_CALL_RESPONSE
    assert conversation.history[-2].message_content == tool["content"]


async def test_two_tool_calls_in_one_round(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.queue_tool_calls(
        [("current_time", {"timezone": "UTC"}), ("current_time", {"timezone": "Asia/Tokyo"})],
        content="Let me check both clocks.",
    )
    fake_llm.queue_text("London and Tokyo are 9 hours apart.")
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("time in UTC and Tokyo?")
        answer = await echo.answer_in(
            thread.id, lambda m: m["content"] == "London and Tokyo are 9 hours apart."
        )
        await replies_done(echo)
        conversation = echo.conversation(thread.id)
        shown = echo_messages(echo, thread.id)

    assert [m["content"] for m in shown] == [answer["content"]]
    assert kinds(conversation) == [
        "chat",
        "tool_call",
        "tool_call_response",
        "tool_call_response",
        "chat",
    ]
    assert conversation is not None
    call = conversation.history[1]
    assert call.message_content == "Let me check both clocks."
    assert [(t.name, t.params) for t in call.tools or []] == [
        ("current_time", {"timezone": "UTC"}),
        ("current_time", {"timezone": "Asia/Tokyo"}),
    ]
    ids = [t.id for t in call.tools or []]
    assert [m.tool_call_id for m in conversation.history[2:4]] == ids
    assert "UTC" in conversation.history[2].message_content
    assert "Asia/Tokyo" in conversation.history[3].message_content

    second = fake_llm.chat_requests[1].messages
    assert second[-3]["content"] == "Let me check both clocks."
    assert [c["id"] for c in second[-3]["tool_calls"]] == ids
    assert [(m["role"], m["tool_call_id"]) for m in second[-2:]] == [("tool", i) for i in ids]


async def test_the_last_tool_round_is_asked_without_tools_and_its_answer_is_the_reply(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.queue_tool_call("current_time", {})
    fake_llm.queue_tool_call("search_conversation", {"query": "anything"})
    fake_llm.queue_text("Done looking things up.")
    async with running_echo(
        discord_emulator, tmp_path, llm=fake_llm, ECHO_MAX_TOOL_ROUNDS="2"
    ) as echo:
        thread = await echo.mention("look things up")
        answer = await echo.answer_in(
            thread.id, lambda m: m["content"] == "Done looking things up."
        )
        await replies_done(echo)
        conversation = echo.conversation(thread.id)

    requests = fake_llm.chat_requests
    assert len(requests) == 3
    assert requests[0].tools and requests[1].tools
    assert requests[2].tools is None
    assert "tools" not in (requests[2].body or {})
    assert answer["content"] == "Done looking things up."
    assert kinds(conversation) == [
        "chat",
        "tool_call",
        "tool_call_response",
        "tool_call",
        "tool_call_response",
        "chat",
    ]
    assert [m["role"] for m in requests[2].messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
    ]


async def test_a_tool_that_raises_gives_the_model_an_error_result(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path, caplog: Any
) -> None:
    caplog.set_level(logging.INFO)
    fake_llm.queue_tool_calls(
        [("explode", {"how": "loudly"}), ("current_time", {"timezone": "Mars/Olympus_Mons"})]
    )
    fake_llm.queue_text("Both tools failed, sorry: I can't tell.")
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:

        @echo.bot.agent.tools.tool
        async def explode(how: str) -> str:
            """Always fails (a tool with a bug)."""
            raise RuntimeError(f"boom {how}")

        thread = await echo.mention("try the broken tool")
        answer = await echo.answer_in(thread.id)
        await replies_done(echo)
        conversation = echo.conversation(thread.id)

    assert answer["content"] == "Both tools failed, sorry: I can't tell."
    explode_result, time_result = fake_llm.chat_requests[1].messages[-2:]
    assert explode_result["role"] == "tool"
    assert "RuntimeError: boom loudly" in explode_result["content"]
    assert "Traceback" not in explode_result["content"]
    assert "unknown time zone 'Mars/Olympus_Mons'" in time_result["content"]
    assert kinds(conversation) == [
        "chat",
        "tool_call",
        "tool_call_response",
        "tool_call_response",
        "chat",
    ]
    assert any("explode" in r.getMessage() for r in caplog.records if r.name.startswith("bot."))


async def test_malformed_arguments_and_an_unknown_tool_become_error_results(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.queue_tool_calls(
        [("current_time", '{"timezone": "Europe/Par'), ("weather_forecast", {"city": "Oslo"})],
    )
    fake_llm.queue_text("I couldn't use my tools properly; it's probably daytime.")
    fake_llm.queue_text("Still here.")
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("time and weather?")
        await echo.answer_in(thread.id, lambda m: m["content"].startswith("I couldn't use"))
        await echo.say(thread.id, "are you ok?")
        await echo.answer_in(thread.id, lambda m: m["content"] == "Still here.")
        await replies_done(echo)
        conversation = echo.conversation(thread.id)

    bad_json, unknown = fake_llm.chat_requests[1].messages[-2:]
    assert bad_json["role"] == unknown["role"] == "tool"
    assert "not valid JSON" in bad_json["content"]
    assert "unknown tool 'weather_forecast'" in unknown["content"]
    assert "current_time" in unknown["content"]  # says what is available
    assert kinds(conversation) == [
        "chat",
        "tool_call",
        "tool_call_response",
        "tool_call_response",
        "chat",
        "chat",
        "chat",
    ]
    assert conversation is not None
    [malformed, _] = conversation.history[1].tools or []
    assert malformed.params == {"_raw_arguments": '{"timezone": "Europe/Par'}
    # The next turn replays the call as the model sent it, with its results.
    third = fake_llm.chat_requests[2].messages
    assert_tool_calls_complete(third)
    [call] = [m for m in third if m.get("tool_calls")]
    assert call["tool_calls"][0]["function"]["arguments"] == '{"timezone": "Europe/Par'
    assert third[-1] == {"role": "user", "content": "[Alice] are you ok?"}


# --- the context budget ----------------------------------------------------------------------


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


# --- what Echo's messages look like ----------------------------------------------------------


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


async def test_with_no_tool_rounds_no_tools_are_offered(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.queue_text("Plain answer.")
    async with running_echo(
        discord_emulator, tmp_path, llm=fake_llm, ECHO_MAX_TOOL_ROUNDS="0"
    ) as echo:
        thread = await echo.mention("hi")
        answer = await echo.answer_in(thread.id)
    assert answer["content"] == "Plain answer."
    [request] = fake_llm.chat_requests
    assert "tools" not in (request.body or {})
