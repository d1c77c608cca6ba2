"""``python -m bot chat``: talk with Echo in a terminal, with no Discord and no token.

The same agent, model, tools and memory as the bot, and the conversation is recorded as a
normal one (in the store the settings ask for: a file and journal, or Redis) in a local
server, guild ``0`` by default: what a newcomer tries first, and what an operator uses to
check a model before going live.

Input is read by a helper thread, one line when asked for, so the event loop (and with it
the manager's idle sweeper and the streaming answer) never waits on the keyboard. A daemon
thread, because a thread blocked on a terminal read cannot be woken: Ctrl-C must not wait
for Enter.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import hashlib
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from bot.agent import (
    Agent,
    Failure,
    Final,
    RoundStart,
    TextDelta,
    TextRetracted,
    ThinkingDelta,
    ToolUse,
)
from bot.app import echo_core
from bot.cli.common import (
    EXIT_CONFIG,
    EXIT_OK,
    CliError,
    Style,
    quiet_logging,
    settings_or_fail,
    shown_dir,
    snowflake_arg,
)
from bot.cli.safe_text import terminal_safe
from bot.config import Settings
from bot.llm import ChatProvider
from bot.stores import describe_store
from memory import InMemoryConversationManager, Message, MessageType, StoreError

log = logging.getLogger(__name__)

__all__ = ["ChatSession", "chat_command", "local_user_id", "snowflakes"]

LOCAL_GUILD_NAME = "local"
# Discord's epoch (2015-01-01T00:00:00Z), so a chat's ids read as times like real snowflakes.
DISCORD_EPOCH_MS = 1_420_070_400_000

_ANSI = re.compile(r"(\x1b\[[0-9;]*m)")

HELP = """\
/help       this list
/save       save the conversation now (to its file, or to Redis)
/summarize  summarize the conversation so far (stored as its summary)
/quit       end the chat (also /exit, Ctrl-D or Ctrl-C); the conversation is saved"""


def chat_command(args: argparse.Namespace) -> int:
    guild_id = snowflake_arg(args.guild, "--guild", "a server id, e.g. 0")
    user_id = snowflake_arg(args.user, "--user", "a user id")
    assert guild_id is not None
    settings = settings_or_fail()
    quiet_logging(settings)
    login = _login_name()
    name = (args.name or login).strip() or "you"
    session_args = {
        "guild_id": guild_id,
        "user_id": user_id or local_user_id(login),
        "user_name": name,
        "show_thinking": args.thinking or settings.show_thinking,
    }
    try:
        return asyncio.run(_chat(settings, **session_args))
    except StoreError as exc:
        raise CliError(str(exc), EXIT_CONFIG) from None


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in a bare container
        return "you"


def local_user_id(name: str) -> str:
    """A stable id for a login name: one person's chats share a requester across runs."""
    digest = hashlib.sha256(f"echo-local-user:{name}".encode()).digest()
    return str(int.from_bytes(digest[:7], "big"))


def snowflakes() -> Callable[[], str]:
    """Snowflake-like ids: the time since Discord's epoch, this process, a counter."""
    last = 0
    process = (os.getpid() & 0x3FF) << 12

    def next_id() -> str:
        nonlocal last
        value = ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | process
        value = max(value, last + 1)
        last = value
        return str(value)

    return next_id


async def _chat(settings: Settings, **session_args: Any) -> int:
    session: ChatSession | None = None
    async with echo_core(settings) as core:
        session = ChatSession(
            core.manager,
            core.agent,
            core.provider,
            data_dir=settings.data_dir,
            store_description=None if settings.store == "json" else describe_store(settings),
            **session_args,
        )
        await session.run()
    assert session is not None
    session.farewell()  # after the manager closed: the file is complete now
    return EXIT_OK


class LineReader:
    """Reads one line of stdin in a helper thread each time ``readline`` is awaited.

    ``prompt`` goes through ``input()`` (line editing, history) when ``prompt_to`` is None,
    else it is written to ``prompt_to`` first (stdin a terminal, stdout a pipe).
    """

    def __init__(
        self, stdin: TextIO, prompt: str | None = None, prompt_to: TextIO | None = None
    ) -> None:
        self.stdin = stdin
        self.prompt = prompt
        self.prompt_to = prompt_to
        self._loop = asyncio.get_running_loop()
        self._wanted = threading.Event()
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._eof = False
        self._thread = threading.Thread(target=self._work, name="echo-chat-input", daemon=True)
        self._thread.start()

    async def readline(self) -> str | None:
        """The next line without its newline, or None at the end of input."""
        if self._eof:
            return None
        self._wanted.set()
        line = await self._lines.get()
        if line is None:
            self._eof = True
        return line

    def _read(self) -> str | None:
        if self.prompt is not None and self.prompt_to is None:
            return input(self.prompt)
        if self.prompt is not None and self.prompt_to is not None:
            self.prompt_to.write(self.prompt)
            self.prompt_to.flush()
        raw = self.stdin.readline()
        return raw.removesuffix("\n").removesuffix("\r") if raw else None

    def _work(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            line: str | None
            try:
                line = self._read()
            except (EOFError, OSError, ValueError):
                line = None
            try:
                self._loop.call_soon_threadsafe(self._lines.put_nowait, line)
            except RuntimeError:  # the loop is gone: the chat ended meanwhile
                return
            if line is None:
                return


class ChatSession:
    """One terminal conversation: record what is typed, stream what Echo answers."""

    def __init__(
        self,
        manager: InMemoryConversationManager,
        agent: Agent,
        provider: ChatProvider,
        *,
        data_dir: Path,
        guild_id: str,
        user_id: str,
        user_name: str,
        show_thinking: bool = False,
        store_description: str | None = None,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.manager = manager
        self.agent = agent
        self.provider = provider
        self.data_dir = data_dir
        # None: JSON files in data_dir, named by their path; else the store, as describe_store
        # names it (Redis keeps no file to point at).
        self.store_description = store_description
        self.guild_id = guild_id
        self.user_id = user_id
        self.user_name = user_name
        self.show_thinking = show_thinking
        self.stdin = stdin or sys.stdin
        self.out = stdout or sys.stdout
        self.err = stderr or sys.stderr
        # Prompts only for a person at a keyboard: piped input gets clean output.
        self.interactive = _isatty(self.stdin)
        # Where the prompt (and the newline after Ctrl-C/Ctrl-D) goes: with stdout a pipe,
        # the terminal's stderr, so the pipe gets only the conversation.
        self.prompt_out = self.out if _isatty(self.out) else self.err
        self.style = Style.for_stream(self.out)
        self.names = {user_id: user_name}
        self.next_id = snowflakes()
        self.thread_id: str | None = None
        self._stop = asyncio.Event()
        self._answering: asyncio.Task[None] | None = None
        self._line_open = False  # an answer line is being written

    # --- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        handled: list[int] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self._interrupt)
                handled.append(signum)
        terminal = _TerminalState(self.stdin) if self.interactive else None
        try:
            self._banner()
            reader = self._reader()
            while not self._stop.is_set():
                line = await self._next_line(reader)
                if line is None:
                    break
                text = line.strip()
                if not text:
                    continue
                if text.startswith("/"):
                    if not await self._command(text):
                        break
                    continue
                await self._say(text)
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)
            if terminal is not None:
                terminal.restore()

    def _reader(self) -> LineReader:
        if not self.interactive:
            return LineReader(self.stdin)
        if self.prompt_out is not self.out:
            return LineReader(self.stdin, f"{self.user_name}> ", prompt_to=self.prompt_out)
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing and history for input())
        # readline must be told which bytes of the prompt take no room on the screen.
        prompt = _ANSI.sub("\001\\1\002", self.style.person(f"{self.user_name}> "))
        return LineReader(self.stdin, prompt)

    def _interrupt(self) -> None:
        self._stop.set()
        if self._answering is not None and not self._answering.done():
            self._answering.cancel()

    async def _next_line(self, reader: LineReader) -> str | None:
        reading = asyncio.ensure_future(reader.readline())
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if reading.done():
            line = reading.result()
            if line is None and self.interactive:
                self._after_prompt()  # Ctrl-D leaves the cursor after the prompt
            return line
        reading.cancel()
        if self.interactive:
            self._after_prompt()
        return None

    def _after_prompt(self) -> None:
        self.prompt_out.write("\n")
        self.prompt_out.flush()

    async def _command(self, text: str) -> bool:
        """Run a /command; False ends the chat."""
        name = text.split()[0].lower()
        if name in ("/quit", "/exit", "/bye"):
            return False
        if name == "/help":
            self._write(HELP + "\n")
        elif name == "/save":
            await self._save()
        elif name in ("/summarize", "/summarise", "/summary"):
            await self._summarize()
        else:
            self._write(f"Unknown command {name}: /help lists the commands.\n")
        return True

    # --- recording and answering ----------------------------------------------------------

    async def _ensure_conversation(self) -> str:
        if self.thread_id is None:
            thread_id = self.next_id()
            while await self.manager.get_or_resume(thread_id) is not None:
                thread_id = self.next_id()
            await self.manager.create_conversation(
                thread_id=thread_id,
                guild_id=self.guild_id,
                guild_name=LOCAL_GUILD_NAME,
                requester=self.user_id,
                channel_id=self.guild_id,
            )
            self.thread_id = thread_id
        return self.thread_id

    async def _say(self, text: str) -> None:
        try:
            thread_id = await self._ensure_conversation()
            await self.manager.add_message_to_conversation(
                thread_id,
                Message(
                    message_type=MessageType.CHAT,
                    message_content=text,
                    requester=self.user_id,
                    message_id=self.next_id(),
                    meta={"author_name": self.user_name},
                ),
            )
        except (StoreError, OSError) as exc:  # the journal could not take it (disk full...)
            log.error("could not record your message: %s", exc)
            self._write("Your message could not be recorded, so Echo did not answer it.\n")
            return
        if self._stop.is_set():  # Ctrl-C while recording: recorded, not answered
            return
        self._answering = asyncio.ensure_future(self._answer(thread_id))
        try:
            await self._answering
        except asyncio.CancelledError:
            if not self._stop.is_set():
                raise
            self._end_line()
            self._write(self.style.dim("(answer interrupted)") + "\n")
        finally:
            self._answering = None

    async def _answer(self, thread_id: str) -> None:
        started = False  # the "Echo: " label of this round is out
        thinking = False  # a thinking line is open
        async for event in self.agent.respond(thread_id, self.names):
            if isinstance(event, ThinkingDelta):
                if not self.show_thinking:
                    continue
                if not thinking:
                    self._end_line()
                    self._write(self.style.italic_dim("(thinking) "))
                    thinking = True
                    self._line_open = True
                self._write(self.style.italic_dim(terminal_safe(event.text)))
            elif isinstance(event, TextDelta):
                # The model's words can quote what anyone in a server wrote (recalled memories):
                # no control character of theirs reaches the operator's terminal.
                piece = terminal_safe(event.text)
                if not started:
                    piece = piece.lstrip()
                    if not piece:
                        continue
                    if thinking:
                        self._end_line()
                        thinking = False
                    self._write(self.style.echo("Echo") + ": ")
                    started = True
                    self._line_open = True
                self._write(piece)
            elif isinstance(event, ToolUse):
                self._end_line()
                started = thinking = False
                names = terminal_safe(", ".join(event.names), one_line=True)
                self._write(self.style.tool(f"  → using {names}") + "\n")
            elif isinstance(event, RoundStart):
                self._end_line()
                started = thinking = False
            elif isinstance(event, TextRetracted):
                # A terminal cannot take text back: say what it was, and answer anew.
                if started:
                    self._end_line()
                    self._write(self.style.italic_dim("(that was the model's thinking)") + "\n")
                started = thinking = False
            elif isinstance(event, Final):
                if not started and event.text:
                    self._write(self.style.echo("Echo") + ": " + terminal_safe(event.text))
                    self._line_open = True
                self._end_line()
            elif isinstance(event, Failure):
                self._end_line()
                self._write(self.style.echo("Echo") + ": " + self.style.warn(event.user_message))
                self._write("\n")

    async def _save(self) -> None:
        if self.thread_id is None:
            self._write("Nothing to save yet: say something first.\n")
            return
        try:
            await self.manager.save_conversation(self.thread_id)
        except (StoreError, OSError) as exc:
            self._write(f"Could not save it: {terminal_safe(str(exc), one_line=True)}\n")
            return
        conversation = await self.manager.get_or_resume(self.thread_id)
        count = len(conversation.history) if conversation is not None else 0
        self._write(f"Saved {self._where(into='')} ({count} messages).\n")

    async def _summarize(self) -> None:
        conversation = await self.manager.get_or_resume(self.thread_id) if self.thread_id else None
        if conversation is None or not conversation.history:
            self._write("Nothing to summarize yet.\n")
            return
        summary = (await self.agent.summarize(conversation, self.names)).strip()
        if not summary:
            self._write("Nothing to summarize yet.\n")
            return
        await self.manager.set_summary(conversation.thread_id, summary)
        self._write(self.style.bold("Summary so far:") + "\n" + terminal_safe(summary) + "\n")

    # --- output -------------------------------------------------------------------------------

    def _banner(self) -> None:
        model = (
            "the offline echo model (it repeats you; set LLM_MODEL in .env, with LLM_BASE_URL "
            "for a local server, for real answers)"
            if self.provider.offline
            else f"model {self.provider.model}"
        )
        lines = [
            f"Echo chat with {model}.",
            f"Recording in {self.store_description or shown_dir(self.data_dir)} "
            f"under guild {self.guild_id} "
            f"({LOCAL_GUILD_NAME}) as {self.user_name} ({self.user_id}).",
            "Type /help for commands; /quit, Ctrl-D or Ctrl-C ends the chat.",
        ]
        for line in lines:
            print(line, file=self.err, flush=True)

    def farewell(self) -> None:
        if self.thread_id is None:
            print("Nothing was said, so nothing was recorded.", file=self.err, flush=True)
            return
        print(
            f"Conversation {self.thread_id} saved {self._where(into='to ')}\n"
            f"Read it with: python -m bot conversations show {self.thread_id}",
            file=self.err,
            flush=True,
        )

    def _where(self, into: str) -> str:
        """Where the conversation is saved: ``<into><its file>``, or ``in <the store>``."""
        if self.store_description is not None:
            return f"in {self.store_description}"
        return f"{into}{shown_dir(self._path())}"

    def _path(self) -> Path:
        conversation = self.manager.get_conversation(self.thread_id or "")
        if conversation is not None:
            return self.data_dir / "guilds" / self.guild_id / conversation.filename
        # Saved and evicted: find its file.
        folder = self.data_dir / "guilds" / self.guild_id
        found = sorted(folder.glob(f"*_{self.thread_id}.json"))
        return found[0] if found else folder

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
        if text:
            self._line_open = not text.endswith("\n")

    def _end_line(self) -> None:
        if self._line_open:
            self._write("\n")


class _TerminalState:
    """The terminal's modes at the start, put back at the end.

    Ctrl-C can end the chat while the input thread sits in ``input()``, whose line editor
    has the terminal in its own mode; without this, the shell would get it back that way.
    """

    def __init__(self, stream: TextIO) -> None:
        self._saved: Any = None
        self._fd = -1
        try:
            import termios

            self._fd = stream.fileno()
            self._saved = termios.tcgetattr(self._fd)
        except (ImportError, OSError, ValueError, AttributeError):
            self._saved = None

    def restore(self) -> None:
        if self._saved is None:
            return
        import termios

        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
