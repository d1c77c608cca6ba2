"""``python -m bot chat``: talk with Echo in a terminal, with no Discord and no token.

The same agent, model, tools and memory as the bot, and the conversation is recorded as a
normal one (in the store the settings ask for: a file and journal, or Redis) in a local
server, guild ``0`` by default: what a newcomer tries first, and what an operator uses to
check a model before going live. The terminal side (reading lines, the prompt, rendering the
streamed answer) is ``bot.cli.terminal``; this is the session: commands, recording, answering.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import hashlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from bot.agent import Agent
from bot.app import echo_core
from bot.cli.common import (
    EXIT_CONFIG,
    EXIT_OK,
    CliError,
    quiet_logging,
    settings_or_fail,
    shown_dir,
    snowflake_arg,
)
from bot.cli.safe_text import terminal_safe
from bot.cli.terminal import AnswerView, ChatTerminal
from bot.config import Settings
from bot.llm import ChatProvider
from bot.stores import describe_store
from memory import InMemoryConversationManager, Message, MessageType, StoreError
from memory.stores import FileBacked

log = logging.getLogger(__name__)

__all__ = ["ChatSession", "chat_command", "local_user_id", "snowflakes"]

LOCAL_GUILD_NAME = "local"
# Discord's epoch (2015-01-01T00:00:00Z), so a chat's ids read as times like real snowflakes.
DISCORD_EPOCH_MS = 1_420_070_400_000

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
        self.term = ChatTerminal(stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr)
        self.style = self.term.style
        self.names = {user_id: user_name}
        self.next_id = snowflakes()
        self.thread_id: str | None = None
        self._stop = asyncio.Event()
        self._answering: asyncio.Task[None] | None = None

    # --- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        handled: list[int] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self._interrupt)
                handled.append(signum)
        terminal = self.term.modes()
        try:
            self._banner()
            reader = self.term.reader(self.user_name)
            while not self._stop.is_set():
                line = await self.term.next_line(reader, self._stop)
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

    def _interrupt(self) -> None:
        self._stop.set()
        if self._answering is not None and not self._answering.done():
            self._answering.cancel()

    async def _command(self, text: str) -> bool:
        """Run a /command; False ends the chat."""
        name = text.split()[0].lower()
        if name in ("/quit", "/exit", "/bye"):
            return False
        if name == "/help":
            self.term.write(HELP + "\n")
        elif name == "/save":
            await self._save()
        elif name in ("/summarize", "/summarise", "/summary"):
            await self._summarize()
        else:
            self.term.write(f"Unknown command {name}: /help lists the commands.\n")
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
            self.term.write("Your message could not be recorded, so Echo did not answer it.\n")
            return
        if self._stop.is_set():  # Ctrl-C while recording: recorded, not answered
            return
        self._answering = asyncio.ensure_future(self._answer(thread_id))
        try:
            await self._answering
        except asyncio.CancelledError:
            if not self._stop.is_set():
                raise
            self.term.end_line()
            self.term.write(self.style.dim("(answer interrupted)") + "\n")
        finally:
            self._answering = None

    async def _answer(self, thread_id: str) -> None:
        view = AnswerView(self.term, show_thinking=self.show_thinking)
        async for event in self.agent.respond(thread_id, self.names):
            view.show(event)

    async def _save(self) -> None:
        if self.thread_id is None:
            self.term.write("Nothing to save yet: say something first.\n")
            return
        try:
            await self.manager.save_conversation(self.thread_id)
        except (StoreError, OSError) as exc:
            self.term.write(f"Could not save it: {terminal_safe(str(exc), one_line=True)}\n")
            return
        conversation = await self.manager.get_or_resume(self.thread_id)
        count = len(conversation.history) if conversation is not None else 0
        self.term.write(f"Saved {self._where(into='')} ({count} messages).\n")

    async def _summarize(self) -> None:
        conversation = await self.manager.get_or_resume(self.thread_id) if self.thread_id else None
        if conversation is None or not conversation.history:
            self.term.write("Nothing to summarize yet.\n")
            return
        summary = (await self.agent.summarize(conversation, self.names)).strip()
        if not summary:
            self.term.write("Nothing to summarize yet.\n")
            return
        await self.manager.set_summary(conversation.thread_id, summary)
        self.term.write(self.style.bold("Summary so far:") + "\n" + terminal_safe(summary) + "\n")

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
            self.term.note(line)

    def farewell(self) -> None:
        if self.thread_id is None:
            self.term.note("Nothing was said, so nothing was recorded.")
            return
        self.term.note(
            f"Conversation {self.thread_id} saved {self._where(into='to ')}\n"
            f"Read it with: python -m bot conversations show {self.thread_id}"
        )

    def _where(self, into: str) -> str:
        """Where the conversation is saved: ``<into><its file>``, or ``in <the store>``."""
        if self.store_description is not None:
            return f"in {self.store_description}"
        return f"{into}{shown_dir(self._path())}"

    def _path(self) -> Path:
        store = self.manager.store
        found = None
        if isinstance(store, FileBacked) and self.thread_id is not None:
            found = store.file_of(self.guild_id, self.thread_id)
        return found or self.data_dir
