"""``python -m bot chat``: a terminal conversation recorded like a Discord one."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot.llm import USER_MESSAGES
from memory import Conversation, JsonFileStore
from tests.cli.helpers import cli_env, run_cli
from tests.fake_llm.server.core import FakeLLM


def recorded(tmp_path: Path, guild: str = "0") -> Conversation:
    [path] = (tmp_path / "data" / "guilds" / guild).glob("*.json")
    return Conversation.from_json(path.read_text())


def llm_env(tmp_path: Path, fake_llm: FakeLLM, **values: str) -> dict[str, str]:
    return cli_env(
        tmp_path, LLM_PROVIDER="openai", LLM_BASE_URL=fake_llm.base_url, LLM_MODEL="m", **values
    )


async def test_a_new_user_chats_with_no_env_and_reads_it_back(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    del env["ECHO_DATA_DIR"]  # a fresh clone: no .env, the default ./data
    script = "hello there\n/save\n/summarize\n/bogus\nsecond\n/quit\nnever read\n"
    result = await run_cli("chat", "--name", "Ann", cwd=tmp_path, env=env, stdin=script.encode())
    assert result.code == 0, result
    out = result.stdout.splitlines()
    # The offline echo model answers; the banner on stderr says what it is.
    assert out[0] == "Echo: You said: hello there"
    assert out[1].startswith("Saved ") and out[1].endswith("(2 messages).")
    assert out[2] == "Summary so far:"
    assert out[-2] == "Unknown command /bogus: /help lists the commands."
    assert out[-1].endswith("You said: second")
    assert "never read" not in result.stdout
    assert "Ann> " not in result.stdout  # no prompts when stdin is not a terminal
    assert "offline echo model" in result.stderr and "Type /help" in result.stderr

    conversation = recorded(tmp_path)
    assert f"saved to ./data/guilds/0/{conversation.filename}" in result.stderr
    assert (conversation.guild_id, conversation.guild_name, conversation.channel_id) == (
        "0",
        "local",
        "0",
    )
    assert conversation.summary  # /summarize stored it
    first, answer, second, answer2 = conversation.history
    assert answer2.requester is None and "second" in answer2.message_content
    assert first.message_content == "hello there" and first.requester == conversation.requester
    assert first.message_id is not None and second.message_id is not None
    assert int(second.message_id) > int(first.message_id) > 0
    assert first.meta["author_name"] == "Ann"
    assert answer.requester is None and "hello there" in answer.message_content
    assert int(conversation.thread_id) > 1 << 22

    # ...and reads it back with the conversations commands.
    listed = await run_cli("conversations", "list", "--json", cwd=tmp_path, env=env)
    [row] = json.loads(listed.stdout)
    assert (row["thread_id"], row["messages"], row["requester_name"]) == (
        conversation.thread_id,
        4,
        "Ann",
    )
    shown = await run_cli("conversations", "show", row["thread_id"], cwd=tmp_path, env=env)
    assert f"Ann ({conversation.requester}): hello there" in shown.stdout


async def test_the_same_login_is_the_same_requester_in_the_chosen_guild(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    for args, line in [((), b"one\n"), ((), b"two\n"), (("--user", "4242"), b"three\n")]:
        result = await run_cli("chat", "--guild", "77", *args, cwd=tmp_path, env=env, stdin=line)
        assert result.code == 0, result
    by_first_line = {
        c.history[0].message_content: c
        for c in (
            Conversation.from_json(p.read_text())
            for p in (tmp_path / "data" / "guilds" / "77").glob("*.json")
        )
    }
    one, two, three = (by_first_line[text] for text in ("one", "two", "three"))
    assert len({one.thread_id, two.thread_id, three.thread_id}) == 3
    assert one.requester == two.requester  # derived from the login name, stable across runs
    assert three.requester == "4242"
    assert one.guild_id == three.channel_id == "77"


async def test_nothing_said_records_nothing(tmp_path: Path) -> None:
    result = await run_cli("chat", cwd=tmp_path, env=cli_env(tmp_path), stdin=b"\n/quit\n")
    assert result.code == 0 and result.stdout == ""
    assert "nothing was recorded" in result.stderr
    assert not list((tmp_path / "data").glob("guilds/*/*.json"))


async def test_chat_input_errors_are_one_line(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / ".env").write_text("LLM_PROVIDER=openai\n")
    bad_guild, bad_user, no_model = await asyncio.gather(
        run_cli("chat", "--guild", "x1", cwd=tmp_path, env=env, stdin=b""),
        run_cli("chat", "--user", "me", cwd=tmp_path, env=env, stdin=b""),
        run_cli("chat", cwd=tmp_path / "bad", env=env, stdin=b""),
    )
    assert bad_guild.code == 2 and bad_guild.error_line.startswith(
        "echo: --guild must be a string of digits"
    )
    assert bad_user.code == 2 and "--user must be a string of digits" in bad_user.error_line
    assert no_model.code == 2 and no_model.error_line.startswith("echo: LLM_MODEL is not set")


async def test_a_data_folder_in_use_is_one_line(tmp_path: Path) -> None:
    async with JsonFileStore(tmp_path / "data"):  # a running bot holds the folder
        result = await run_cli("chat", cwd=tmp_path, env=cli_env(tmp_path), stdin=b"hi\n")
    assert result.code == 2
    assert "in use by another Echo process" in result.error_line
    assert result.stdout == ""


class ChatProcess:
    """``python -m bot chat`` with stdin kept open and stdout read as it arrives."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.out = ""
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def start(cls, *args: str, cwd: Path, env: dict[str, str]) -> ChatProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "chat",
            *args,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while chunk := await self.process.stdout.read(1):
            self.out += chunk.decode("utf-8", errors="replace")

    def say(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")

    async def wait_for(self, text: str, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while text not in self.out:
                if self._reader.done():
                    raise AssertionError(f"chat ended before {text!r}:\n{self.out}")
                await asyncio.sleep(0.01)

    async def finish(self, timeout: float = 15) -> tuple[int, str]:
        assert self.process.stdin is not None and self.process.stderr is not None
        if not self.process.stdin.is_closing():
            self.process.stdin.close()
        err = await asyncio.wait_for(self.process.stderr.read(), timeout)
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await self._reader
        return code, err.decode()

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def test_chat_streams_the_models_answer(tmp_path: Path, fake_llm: FakeLLM) -> None:
    answer = "First words arrive early, and the rest follows later."
    fake_llm.queue_text(answer, reasoning="They say hi.", chunk_size=8, chunk_delay=0.1)
    chat = await ChatProcess.start("--name", "Ann", cwd=tmp_path, env=llm_env(tmp_path, fake_llm))
    try:
        chat.say("hi")
        await chat.wait_for("Echo: First ")
        assert "later." not in chat.out  # shown while the model still writes
        await chat.wait_for("later.\n")
        code, err = await chat.finish()
    finally:
        await chat.kill()
    assert code == 0, err
    assert chat.out == f"Echo: {answer}\n"  # the reasoning is recorded, not shown
    assert "model m" in err
    [request] = fake_llm.chat_requests
    assert request.stream and request.messages[-1] == {"role": "user", "content": "[Ann] hi"}
    assert request.messages[0]["role"] == "system" and request.tools  # the bot's tools
    history = recorded(tmp_path).history
    assert [m.message_type.value for m in history] == ["chat", "thinking", "chat"]
    assert history[1].message_content == "They say hi."
    assert history[2].message_content == answer


async def test_chat_shows_thinking_and_tools_when_asked(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.queue_tool_call("current_time", {})
    fake_llm.queue_text("It is later than you think.", reasoning="A time question.")
    env = llm_env(tmp_path, fake_llm)
    result = await run_cli("chat", "--thinking", cwd=tmp_path, env=env, stdin=b"what time?\n")
    assert result.code == 0, result
    assert result.stdout.splitlines() == [
        "  → using current_time",
        "(thinking) A time question.",
        "Echo: It is later than you think.",
    ]
    history = recorded(tmp_path).history
    kinds = [m.message_type.value for m in history]
    assert kinds == ["chat", "tool_call", "tool_call_response", "thinking", "chat"]
    assert history[2].name == "current_time"


async def test_a_failing_model_gets_the_friendly_line_and_the_chat_goes_on(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.queue_error(401, "bad key")
    fake_llm.queue_text("Back again.")
    env = llm_env(tmp_path, fake_llm)
    result = await run_cli("chat", cwd=tmp_path, env=env, stdin=b"one\ntwo\n")
    assert result.code == 0, result
    assert result.stdout.splitlines() == [f"Echo: {USER_MESSAGES['auth']}", "Echo: Back again."]
    assert "Traceback" not in result.stderr
    assert [m.message_content for m in recorded(tmp_path).history] == ["one", "two", "Back again."]


async def test_ctrl_c_ends_the_chat_and_saves_it(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.queue_text("Answered.")
    fake_llm.queue_slow("never finished", delay=30)
    chat = await ChatProcess.start(cwd=tmp_path, env=llm_env(tmp_path, fake_llm))
    try:
        chat.say("first")
        await chat.wait_for("Echo: Answered.\n")
        chat.say("second")
        await fake_llm.wait_for_requests(2)
        chat.process.send_signal(signal.SIGINT)  # while the model is still silent
        code, err = await chat.finish()
    finally:
        await chat.kill()
    assert code == 0, err
    assert chat.out.endswith("(answer interrupted)\n")
    assert "Traceback" not in err
    history = recorded(tmp_path).history
    assert [m.message_content for m in history] == ["first", "Answered.", "second"]


def _chat_on_a_terminal(tmp_path: Path) -> tuple[int, str]:
    """``chat`` with a pseudo-terminal as stdin, stdout and stderr: one line, then Ctrl-D."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "chat", "--name", "Ann"],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    seen = b""

    def read_until(text: bytes, count: int = 1, timeout: float = 15) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while seen.count(text) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} in {seen!r}"
            ready, _, _ = select.select([leader], [], [], left)
            if ready:
                seen += os.read(leader, 4096)

    try:
        read_until(b"Ann> ")
        os.write(leader, b"hi there\r")
        read_until(b"You said: hi there")
        read_until(b"Ann> ", count=2)  # asked again after the answer
        os.write(leader, b"\x04")  # Ctrl-D
        read_until(b"conversations show")
        code = process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    return code, seen.decode(errors="replace")


async def test_at_a_terminal_there_are_prompts_and_colours(tmp_path: Path) -> None:
    code, screen = await asyncio.to_thread(_chat_on_a_terminal, tmp_path)
    assert code == 0, screen
    assert screen.count("Ann> ") >= 2  # asked again after the answer
    assert "\x1b[1;36mEcho\x1b[0m: You said: hi there" in screen
    assert f"saved to {tmp_path / 'data' / 'guilds' / '0'}" in screen
    assert recorded(tmp_path).history[0].message_content == "hi there"
