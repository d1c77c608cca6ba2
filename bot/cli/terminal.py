"""The terminal side of ``python -m bot chat``: reading lines, the prompt, and rendering answers.

Input is read by a helper thread, one line when asked for, so the event loop (and with it
the manager's idle sweeper and the streaming answer) never waits on the keyboard. A daemon
thread, because a thread blocked on a terminal read cannot be woken: Ctrl-C must not wait
for Enter.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from typing import Any, TextIO

from bot.agent import (
    AgentEvent,
    Failure,
    Final,
    RoundStart,
    TextDelta,
    TextRetracted,
    ThinkingDelta,
    ToolUse,
)
from bot.cli.common import Style
from bot.cli.safe_text import terminal_safe

__all__ = ["AnswerView", "ChatTerminal", "LineReader", "TerminalState", "isatty"]

_ANSI = re.compile(r"(\x1b\[[0-9;]*m)")


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


class ChatTerminal:
    """Where the chat reads its lines and writes the conversation, the prompt and its notes."""

    def __init__(self, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> None:
        self.stdin = stdin
        self.out = stdout
        self.err = stderr
        # Prompts only for a person at a keyboard: piped input gets clean output.
        self.interactive = isatty(self.stdin)
        # Where the prompt (and the newline after Ctrl-C/Ctrl-D) goes: with stdout a pipe,
        # the terminal's stderr, so the pipe gets only the conversation.
        self.prompt_out = self.out if isatty(self.out) else self.err
        self.style = Style.for_stream(self.out)
        self.line_open = False  # an answer line is being written

    def modes(self) -> TerminalState | None:
        """The terminal's modes now, to put back at the end (None when not interactive)."""
        return TerminalState(self.stdin) if self.interactive else None

    def reader(self, user_name: str) -> LineReader:
        if not self.interactive:
            return LineReader(self.stdin)
        if self.prompt_out is not self.out:
            return LineReader(self.stdin, f"{user_name}> ", prompt_to=self.prompt_out)
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing and history for input())
        # readline must be told which bytes of the prompt take no room on the screen.
        prompt = _ANSI.sub("\001\\1\002", self.style.person(f"{user_name}> "))
        return LineReader(self.stdin, prompt)

    async def next_line(self, reader: LineReader, stop: asyncio.Event) -> str | None:
        """The next line typed, or None at the end of input or once ``stop`` is set."""
        reading = asyncio.ensure_future(reader.readline())
        stopping = asyncio.ensure_future(stop.wait())
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

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
        if text:
            self.line_open = not text.endswith("\n")

    def end_line(self) -> None:
        if self.line_open:
            self.write("\n")

    def note(self, line: str) -> None:
        """A line about the chat (banner, farewell), on stderr: stdout is the conversation."""
        print(line, file=self.err, flush=True)


class AnswerView:
    """Writes one answer's events as they stream: its thinking, its words, the tools it uses."""

    def __init__(self, terminal: ChatTerminal, *, show_thinking: bool) -> None:
        self.terminal = terminal
        self.show_thinking = show_thinking
        self.started = False  # the "Echo: " label of this round is out
        self.thinking = False  # a thinking line is open

    def show(self, event: AgentEvent) -> None:
        term = self.terminal
        style = term.style
        if isinstance(event, ThinkingDelta):
            if not self.show_thinking:
                return
            if not self.thinking:
                term.end_line()
                term.write(style.italic_dim("(thinking) "))
                self.thinking = True
                term.line_open = True
            term.write(style.italic_dim(terminal_safe(event.text)))
        elif isinstance(event, TextDelta):
            # The model's words can quote what anyone in a server wrote (recalled memories):
            # no control character of theirs reaches the operator's terminal.
            piece = terminal_safe(event.text)
            if not self.started:
                piece = piece.lstrip()
                if not piece:
                    return
                if self.thinking:
                    term.end_line()
                    self.thinking = False
                term.write(style.echo("Echo") + ": ")
                self.started = True
                term.line_open = True
            term.write(piece)
        elif isinstance(event, ToolUse):
            term.end_line()
            self.started = self.thinking = False
            names = terminal_safe(", ".join(event.names), one_line=True)
            term.write(style.tool(f"  → using {names}") + "\n")
        elif isinstance(event, RoundStart):
            term.end_line()
            self.started = self.thinking = False
        elif isinstance(event, TextRetracted):
            # A terminal cannot take text back: say what it was, and answer anew.
            if self.started:
                term.end_line()
                term.write(style.italic_dim("(that was the model's thinking)") + "\n")
            self.started = self.thinking = False
        elif isinstance(event, Final):
            if not self.started and event.text:
                term.write(style.echo("Echo") + ": " + terminal_safe(event.text))
                term.line_open = True
            term.end_line()
        elif isinstance(event, Failure):
            term.end_line()
            term.write(style.echo("Echo") + ": " + style.warn(event.user_message))
            term.write("\n")


class TerminalState:
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


def isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
