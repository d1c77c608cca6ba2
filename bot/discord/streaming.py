"""A reply that appears quickly and grows as the model writes.

The first words are posted as soon as they arrive; later text is applied by editing, at
most once per ``edit_interval`` so Discord's per-channel write limit (5 per 5 s) is never
hit; text past 2,000 characters flows into further messages (``bot.discord.text.split_message``).
Typing is shown until the first words are posted. With a ``WriteBudget`` (``bot.discord.pacing``)
shared by every reply, the edits and typing calls are optional writes that wait for room
to spare, and the first and final writes wait for room in Discord's global limit, so a
busy bot slows its edits down rather than collecting 429s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

import discord

from bot.discord.pacing import WriteBudget
from bot.discord.text import MESSAGE_LIMIT, split_message

log = logging.getLogger(__name__)

__all__ = ["Channel", "StreamingReply"]


class Channel(Protocol):
    """Where Echo writes: a thread, a text channel or a DM. discord.py's messageable channels
    all have an id (``discord.abc.Messageable`` alone does not declare one), and the write
    budget counts writes per channel id."""

    @property
    def id(self) -> int: ...

    async def send(self, content: str | None = None, **kwargs: Any) -> discord.Message: ...

    def typing(self) -> Any: ...


CURSOR = " ▌"
THINKING_PREVIEW = 900


class StreamingReply:
    """Renders one answer into one or more Discord messages."""

    def __init__(
        self,
        channel: Channel,
        *,
        allowed_mentions: discord.AllowedMentions,
        reference: discord.MessageReference | None = None,
        edit_interval: float = 1.2,
        show_thinking: bool = False,
        notice: str = "",
        budget: WriteBudget | None = None,
    ) -> None:
        self.channel = channel
        self.budget = budget
        self._channel_id = channel.id
        self.allowed_mentions = allowed_mentions
        # The first message quotes what it answers without pinging (mention_author=False);
        # an edit carrying replied_user=True would add that ping after all.
        self._edit_mentions = allowed_mentions.merge(discord.AllowedMentions(replied_user=False))
        self.reference = reference
        self.edit_interval = edit_interval
        self.show_thinking = show_thinking
        self.notice = notice
        self.messages: list[discord.Message] = []
        self._text = ""
        self._words = False  # _text holds more than whitespace (kept, not re-read per chunk)
        self._earlier = ""  # the last round's text, when a new round reset it
        self._rendered: list[str] = []
        self._dirty = asyncio.Event()
        self._last_write = 0.0
        self._flusher: asyncio.Task[None] | None = None
        self._typing: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> StreamingReply:
        self._typing = asyncio.get_running_loop().create_task(self._keep_typing())
        self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stop()

    # --- feeding ------------------------------------------------------------------------------

    def add(self, text: str) -> None:
        self._text += text
        if not self._words and text and not text.isspace():
            self._words = True
        if self._words:
            self._dirty.set()

    def retract(self) -> None:
        """What was shown this round was the model's reasoning: take it off the screen."""
        self._text = ""
        self._words = False
        if self.messages:
            self._dirty.set()

    def reset(self) -> None:
        """A new model round: what was shown so far is replaced by what comes next."""
        if self._words:
            self._earlier = self._text
        self._text = ""
        self._words = False

    async def finish(self, text: str, thinking: str = "") -> None:
        """Show the final answer exactly (no cursor), split as needed."""
        await self._stop()
        shown = text
        if self.show_thinking and thinking:
            shown = _spoiler(thinking) + "\n\n" + text
        await self._render(shown)

    async def fail(self, line: str) -> None:
        """Keep whatever was shown, then say what went wrong in one line."""
        await self._stop()
        # After a tool round, what is on screen is the round before's text (with the cursor,
        # and perhaps cut short): show it whole, so no message is left looking unfinished.
        shown = self._text if self._text.strip() else self._earlier if self.messages else ""
        if shown.strip():
            await self._render(shown)
        await self._send(f"⚠️ {line}", first=not self.messages)

    # --- rendering ----------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            while self.messages:
                wait = self._last_write + self.edit_interval - time.monotonic()
                if self.budget is not None:
                    wait = max(wait, self.budget.optional_delay(self._channel_id))
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            try:
                await self._render(self._text + CURSOR)
            except discord.HTTPException as exc:
                log.warning("could not update a streamed reply: %s", exc)

    async def _render(self, text: str) -> None:
        text = text.strip() or "…"
        if self.notice:  # above the answer in Discord; the record has the answer alone
            text = f"{self.notice}\n{text}"
        async with self._lock:
            chunks = split_message(text, MESSAGE_LIMIT)
            for index, chunk in enumerate(chunks):
                if index < len(self.messages):
                    if self._rendered[index] != chunk:
                        async with self._paced():
                            await self.messages[index].edit(
                                content=chunk, allowed_mentions=self._edit_mentions
                            )
                        self._rendered[index] = chunk
                        self._last_write = time.monotonic()
                else:
                    await self._send(chunk, first=index == 0)
            # A final answer shorter than the streamed text (cursor, a reset round).
            for extra in self.messages[len(chunks) :]:
                with contextlib.suppress(discord.HTTPException):
                    async with self._paced():
                        await extra.delete()
            del self.messages[len(chunks) :]
            del self._rendered[len(chunks) :]

    async def _send(self, content: str, *, first: bool) -> None:
        kwargs: dict[str, object] = {"allowed_mentions": self.allowed_mentions}
        if first and self.reference is not None:
            kwargs["reference"] = self.reference
            kwargs["mention_author"] = False
        async with self._paced():
            message = await self.channel.send(content, **kwargs)  # type: ignore[arg-type]
        self._last_write = time.monotonic()
        self.messages.append(message)
        self._rendered.append(content)
        self._cancel_typing()

    # --- typing and shutdown ------------------------------------------------------------------

    async def _keep_typing(self) -> None:
        # Discord shows "typing" for about 10 s per trigger, or until we post.
        while not self.messages:
            budget = self.budget
            if budget is not None and budget.optional_delay(self._channel_id) > 0:
                await asyncio.sleep(1)  # busy: the words themselves come first
                continue
            try:
                async with self._paced(message_write=False, wait=False):
                    await self.channel.typing()  # type: ignore[misc]
            except discord.HTTPException as exc:
                log.debug("typing indicator refused: %s", exc)
                return
            await asyncio.sleep(8)

    @contextlib.asynccontextmanager
    async def _paced(self, *, message_write: bool = True, wait: bool = True) -> AsyncIterator[None]:
        if self.budget is None:
            yield
            return
        async with self.budget.write(self._channel_id, message_write=message_write, wait=wait):
            yield

    def _cancel_typing(self) -> None:
        if self._typing is not None and not self._typing.done():
            self._typing.cancel()

    async def _stop(self) -> None:
        self._cancel_typing()
        flusher, self._flusher = self._flusher, None
        if flusher is not None and not flusher.done():
            # Under the lock the flusher is never mid-write: a send cancelled half-way could
            # still land on Discord and leave a message we no longer know about.
            async with self._lock:
                flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        typing, self._typing = self._typing, None
        if typing is not None and not typing.done():
            with contextlib.suppress(asyncio.CancelledError):
                await typing


def _spoiler(thinking: str) -> str:
    text = " ".join(thinking.split())
    if len(text) > THINKING_PREVIEW:
        text = text[: THINKING_PREVIEW - 1] + "…"
    return "💭 ||" + text.replace("||", "| |") + "||"
