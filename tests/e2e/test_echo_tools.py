"""The reply agent end to end: tool calls and their results are recorded, go back to the
model in pairs, and a failing or unknown tool becomes an error result.

The real Echo (``bot.app.echo_app``) on the Discord emulator, talking to the fake LLM
through the real ``openai`` SDK; each test looks at what people in the thread see, what the
model was sent (``fake_llm.chat_requests``) and what was recorded.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from memory import MessageType
from tests.discord_emulator import DiscordEmulator
from tests.fake_llm.server.core import FakeLLM

from .agent_views import (
    assert_tool_calls_complete,
    echo_messages,
    kinds,
    replies_done,
    saved_history,
)
from .echo_harness import running_echo


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
