"""When the model fails: one short, friendly line in the thread, one log line with the cause
for the operator, nothing recorded is lost, and the next message is answered normally.

The real Echo (``bot.app.echo_app``) on the Discord emulator, the real ``openai`` SDK (with
its own retries: an error must come three times to surface) against the fake LLM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.discord_emulator import DiscordEmulator
from tests.fake_llm.server.core import FakeLLM

from .agent_views import CURSOR, echo_messages, replies_done
from .echo_harness import Echo, running_echo

# --- helpers -----------------------------------------------------------------------------------


async def settled_messages(echo: Echo, thread_id: int, count: int) -> list[dict[str, Any]]:
    """Echo's messages once ``count`` exist, none is still streaming and no reply runs."""

    def check() -> list[dict[str, Any]] | None:
        messages = echo_messages(echo, thread_id)
        if len(messages) < count or any(m["content"].endswith(CURSOR) for m in messages):
            return None
        return messages

    await echo.emu.wait_for(check, timeout=15, what=f"{count} finished messages of Echo's")
    await replies_done(echo, timeout=15)
    return echo_messages(echo, thread_id)


def operator_lines(caplog: Any) -> list[str]:
    """What Echo itself logged at WARNING or above (not the SDK's or discord.py's)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.split(".")[0] in ("bot", "cogs", "memory")
    ]


def assert_friendly(line: str) -> None:
    """One short line a person can read: no status code, traceback, URL or exception name."""
    assert line.startswith("⚠️ "), line
    assert "\n" not in line and len(line) <= 150, line
    assert not re.search(r"\b[1-5]\d\d\b", line), f"a status code in {line!r}"
    for word in ("Traceback", "http", "Error", "Exception", "127.0.0.1", "None"):
        assert word not in line, f"{word!r} in {line!r}"


def free_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def forwarding(
    port: int, target_port: int, *, hang_up_after: bytes | None = None
) -> AsyncIterator[None]:
    """Listen on ``port`` and pipe every connection to ``target_port``: the model is back.

    ``hang_up_after``: once the answer has carried these bytes, the connection is cut, as
    when a proxy or the model server dies in the middle of a streamed answer.
    """
    tasks: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, marker: bytes | None
    ) -> None:
        seen = b""
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
                seen += data
                if marker is not None and marker in seen:
                    await asyncio.sleep(0.05)  # let what was written leave before the cut
                    for other in writers:
                        other.transport.abort()
                    return
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        writers.extend((writer, up_writer))
        await asyncio.gather(pipe(reader, up_writer, None), pipe(up_reader, writer, hang_up_after))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


# --- the failures ------------------------------------------------------------------------------


@dataclass
class Case:
    """How to make the first answer fail, and what must then have been recorded and logged."""

    queue: Callable[[FakeLLM], None]
    cause: str  # in the operator's log line
    recorded: list[str] = field(default_factory=lambda: ["chat"])
    settings: dict[str, str] = field(default_factory=dict)


def _slow(llm: FakeLLM) -> None:
    for _ in range(3):  # the SDK retries a timeout twice
        llm.queue_slow("far too late", delay=3)


def _malformed(llm: FakeLLM) -> None:
    # Offered the tools, the model sends broken JSON; told so, it does it again anyway.
    llm.queue_tool_call("current_time", '{"timezone": "Europe/Par')
    llm.queue_tool_call("current_time", '{"timezone": "Europe/Par')


def _unknown(llm: FakeLLM) -> None:
    llm.queue_tool_call("weather_forecast", {"city": "Oslo"})
    llm.queue_tool_call("weather_forecast", {"city": "Oslo"})


CASES = {
    "timeout": Case(_slow, "no answer within 0.4s", settings={"LLM_TIMEOUT_SECONDS": "0.4"}),
    "rate_limited": Case(
        lambda llm: llm.queue_error(
            429, "Rate limit reached for fake-model", times=3, retry_after=0.01
        ),
        "HTTP 429",
    ),
    "server_error": Case(
        lambda llm: llm.queue_error(500, "The server had an error", times=3, retry_after=0.01),
        "HTTP 500",
    ),
    "bad_gateway": Case(
        lambda llm: llm.queue_error(502, "Bad gateway", times=3, retry_after=0.01), "HTTP 502"
    ),
    "empty_answer": Case(lambda llm: llm.queue_text(""), "no content"),
    "reasoning_only": Case(
        lambda llm: llm.queue_text("", reasoning="I could say many things."),
        "empty answer",
        recorded=["chat", "thinking"],
    ),
    "malformed_tool_arguments": Case(
        _malformed,
        "not valid JSON",
        recorded=["chat", "tool_call", "tool_call_response"],
        settings={"ECHO_MAX_TOOL_ROUNDS": "1"},
    ),
    "unknown_tool": Case(
        _unknown,
        "weather_forecast",
        recorded=["chat", "tool_call", "tool_call_response"],
        settings={"ECHO_MAX_TOOL_ROUNDS": "1"},
    ),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_a_failed_answer_is_one_friendly_line_and_the_next_message_works(
    name: str,
    discord_emulator: DiscordEmulator,
    fake_llm: FakeLLM,
    tmp_path: Path,
    caplog: Any,
) -> None:
    case = CASES[name]
    case.queue(fake_llm)
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm, **case.settings) as echo:
        thread = await echo.mention("please answer this")
        [failure] = await settled_messages(echo, thread.id, 1)
        conversation = echo.conversation(thread.id)
        assert conversation is not None
        after_failure = [m.message_type.value for m in conversation.history]
        logged = operator_lines(caplog)

        fake_llm.queue_text("Back to normal.")
        await echo.say(thread.id, "try again?")
        messages = await settled_messages(echo, thread.id, 2)

    assert_friendly(failure["content"])
    assert len(logged) == 1, logged
    assert case.cause in logged[0], logged
    assert after_failure == case.recorded
    # The next message: a normal answer, with everything recorded before in its context.
    assert [m["content"] for m in messages][1:] == ["Back to normal."]
    last = fake_llm.chat_requests[-1].messages
    assert last[1] == {"role": "user", "content": "[Alice] @Echo please answer this"}
    assert last[-1] == {"role": "user", "content": "[Alice] try again?"}
    history = json.loads(echo.files()[0].read_text())["history"]
    assert [m["message_type"] for m in history] == [*case.recorded, "chat", "chat"]
    assert history[-1]["message_content"] == "Back to normal."


async def test_connection_refused_then_the_model_comes_back(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path, caplog: Any
) -> None:
    port = free_port()
    async with running_echo(
        discord_emulator, tmp_path, llm=fake_llm, LLM_BASE_URL=f"http://127.0.0.1:{port}/v1"
    ) as echo:
        thread = await echo.mention("anyone there?")
        [failure] = await settled_messages(echo, thread.id, 1)
        logged = operator_lines(caplog)
        kinds = [m.message_type.value for m in echo.conversation(thread.id).history]  # type: ignore[union-attr]
        assert fake_llm.chat_requests == []

        fake_llm.queue_text("Back to normal.")
        async with forwarding(port, fake_llm.port):
            await echo.say(thread.id, "try again?")
            messages = await settled_messages(echo, thread.id, 2)

    assert_friendly(failure["content"])
    assert "reach the model" in failure["content"]
    assert len(logged) == 1 and "cannot connect" in logged[0], logged
    assert f"127.0.0.1:{port}" in logged[0]  # the operator sees where
    assert kinds == ["chat"]
    assert messages[1]["content"] == "Back to normal."
    [request] = fake_llm.chat_requests
    assert [m["content"] for m in request.messages[1:]] == [
        "[Alice] @Echo anyone there?",
        "[Alice] try again?",
    ]


async def test_a_failure_after_a_tool_round_keeps_the_tool_call_and_its_result(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path, caplog: Any
) -> None:
    fake_llm.queue_tool_call("current_time", {"timezone": "UTC"}, call_id="call_kept")
    fake_llm.queue_error(503, "overloaded", times=3, retry_after=0.01)
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("what time is it?")
        [failure] = await settled_messages(echo, thread.id, 1)
        logged = operator_lines(caplog)
        fake_llm.queue_text("It is noon (sorry for before).")
        await echo.say(thread.id, "hello?")
        messages = await settled_messages(echo, thread.id, 2)
        conversation = echo.conversation(thread.id)

    assert_friendly(failure["content"])
    assert len(logged) == 1 and "HTTP 503" in logged[0], logged
    assert conversation is not None
    assert [m.message_type.value for m in conversation.history] == [
        "chat",
        "tool_call",
        "tool_call_response",
        "chat",
        "chat",
    ]
    assert messages[1]["content"] == "It is noon (sorry for before)."
    # The kept call and its result went to the model with the next message.
    last = fake_llm.chat_requests[-1].messages
    [call] = [m for m in last if m.get("tool_calls")]
    assert call["tool_calls"][0]["id"] == "call_kept"
    assert last[last.index(call) + 1]["tool_call_id"] == "call_kept"


async def test_a_stream_cut_midway_keeps_what_was_shown_and_says_so_once(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path, caplog: Any
) -> None:
    port = free_port()
    fake_llm.queue_text("The first words, then nothing more.", chunk_size=15, chunk_delay=0.3)
    async with running_echo(
        discord_emulator, tmp_path, llm=fake_llm, LLM_BASE_URL=f"http://127.0.0.1:{port}/v1"
    ) as echo:
        async with forwarding(port, fake_llm.port, hang_up_after=b"The first words"):
            thread = await echo.mention("tell me a story")
            messages = await settled_messages(echo, thread.id, 2)
            logged = operator_lines(caplog)
            kinds = [m.message_type.value for m in echo.conversation(thread.id).history]  # type: ignore[union-attr]
        async with forwarding(port, fake_llm.port):
            fake_llm.queue_text("Back to normal.")
            await echo.say(thread.id, "again?")
            after = await settled_messages(echo, thread.id, 3)

    shown, failure = messages
    assert shown["content"] == "The first words"  # kept, without the cursor
    assert_friendly(failure["content"])
    assert len(logged) == 1 and "lost mid-answer" in logged[0], logged
    assert kinds == ["chat"]  # the half answer is not recorded as said
    assert after[-1]["content"] == "Back to normal."
    assert len(fake_llm.chat_requests) == 2  # the SDK does not retry a stream under way


async def test_a_failure_after_streamed_commentary_leaves_no_cursor_behind(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path, caplog: Any
) -> None:
    """The model said something, called a tool, then failed: no message stays "typing"."""
    fake_llm.queue_tool_calls(
        [("current_time", {})], content="Let me look at the clock first.", chunk_delay=0.05
    )
    fake_llm.queue_error(500, "boom", times=3, retry_after=0.01)
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("what time is it?")
        await echo.emu.wait_for(
            lambda: (
                any(m["content"].startswith("⚠️") for m in echo_messages(echo, thread.id)) or None
            ),
            timeout=10,
            what="the failure line",
        )
        await replies_done(echo, timeout=15)
        shown = [m["content"] for m in echo_messages(echo, thread.id)]

    assert not any(CURSOR in text for text in shown), shown
    assert shown[:-1] == ["Let me look at the clock first."]  # whole, as the model said it
    assert_friendly(shown[-1])
