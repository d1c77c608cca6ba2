"""Logging in to Discord and opening the gateway, with a bound on how long start-up waits.

``Client.start`` waits as long as aiohttp lets it (five minutes) for a Discord API that
accepts the connection and never answers, then fails with an empty message; a gateway it
cannot reach is logged as a reconnect traceback per attempt. At start-up neither is a
passing outage to ride out but a wrong address, proxy or network for the operator to fix,
so here each phase has a deadline and a failure becomes one ``DiscordUnreachable`` line.
Once Discord has answered (and the gateway sent READY), discord.py's own reconnecting
takes over as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

import aiohttp
import discord

if TYPE_CHECKING:
    from bot.discord.client import EchoBot

log = logging.getLogger(__name__)

__all__ = ["DiscordUnreachable", "connect_discord", "login_discord", "silence_voice_notices"]

T = TypeVar("T")

_VOICE_NOTICE = "voice will NOT be supported"
_VOICE_LOGGERS = ("discord.client", "discord.voice_state")
# Where discord.py logs a failed gateway connection: its client's reconnect loop, and the
# sharded client's per-shard launch (Echo's client is sharded).
_RECONNECT_LOGGERS = ("discord.client", "discord.shard")


class DiscordUnreachable(Exception):
    """Discord did not answer at start-up; the message is one line naming where and why."""


class _VoiceNoticeFilter(logging.Filter):
    """Drops discord.py's "PyNaCl / davey is not installed" lines: Echo never joins voice."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _VOICE_NOTICE not in record.getMessage()


_voice_filter = _VoiceNoticeFilter()


def silence_voice_notices() -> None:
    """Keep discord.py's voice-library warnings out of every start (idempotent)."""
    for name in _VOICE_LOGGERS:
        logger = logging.getLogger(name)
        if _voice_filter not in logger.filters:
            logger.addFilter(_voice_filter)


def _cause(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s (timed out)"
    return str(exc).strip() or type(exc).__name__


async def _until_answered(answered: asyncio.Event, within: float, work: Awaitable[T]) -> T:
    """Await ``work``; TimeoutError if ``answered`` is not set within ``within`` seconds.

    Once it is set the deadline is lifted, so what follows (a slash-command sync that waits
    out a rate limit, a session that runs for days) is not cut short.
    """
    inside = True

    async with asyncio.timeout(within) as deadline:

        def lift(_: object) -> None:
            if inside:  # a Timeout that was left cannot be rescheduled
                deadline.reschedule(None)

        watch = asyncio.ensure_future(answered.wait())
        watch.add_done_callback(lift)
        try:
            return await work
        finally:
            inside = False
            watch.cancel()


async def login_discord(bot: EchoBot, token: str, *, api_base: str, within: float) -> None:
    """``bot.login(token)``, or ``DiscordUnreachable`` if the API does not answer in time.

    The deadline covers Discord's first answers (who the bot is, its application), not
    ``setup_hook``, which ``login`` runs after them.
    """
    try:
        await _until_answered(bot.logged_in, within, bot.login(token))
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise DiscordUnreachable(
            f"cannot reach Discord at {api_base}: {_cause(exc, within)}"
        ) from None


_CONNECT_ERRORS = (
    OSError,
    aiohttp.ClientError,
    discord.ConnectionClosed,
    discord.GatewayNotFound,
    discord.HTTPException,
)
"""What discord.py's connect loop catches and logs before trying again (TimeoutError is an
OSError)."""


class _FirstConnectFailure(logging.Filter):
    """Catches the reconnect traceback discord.py logs when a gateway connection fails.

    Before the first READY that failure is the answer to "can Echo reach its gateway",
    so it is kept for the one-line error instead of being printed.
    """

    def __init__(self) -> None:
        super().__init__()
        self.error: BaseException | None = None
        self.seen = asyncio.Event()

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if record.levelno < logging.ERROR or not isinstance(error, _CONNECT_ERRORS):
            return True  # not a failed connection (an event handler's error, say): shown
        if self.error is None:
            self.error = error
        self.seen.set()
        return False


async def connect_discord(bot: EchoBot, *, gateway_url: str, within: float) -> None:
    """``bot.connect()`` for the life of the session.

    Until the gateway's first READY, a connection that fails or does not come within
    ``within`` seconds raises ``DiscordUnreachable``; after it, discord.py reconnects as usual.
    """
    connected = asyncio.Event()

    async def on_connect() -> None:
        connected.set()

    failure = _FirstConnectFailure()
    reconnects = [logging.getLogger(name) for name in _RECONNECT_LOGGERS]
    for logger in reconnects:
        logger.addFilter(failure)
    bot.add_listener(on_connect, "on_connect")
    session = asyncio.ensure_future(bot.connect(reconnect=True))
    try:
        waiters = {
            asyncio.ensure_future(connected.wait()),
            asyncio.ensure_future(failure.seen.wait()),
        }
        try:
            await asyncio.wait(
                {session, *waiters}, timeout=within, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
            for logger in reconnects:
                logger.removeFilter(failure)
            bot.remove_listener(on_connect, "on_connect")
        if not connected.is_set() and (failure.error is not None or not session.done()):
            cause = failure.error if failure.error is not None else TimeoutError()
            raise DiscordUnreachable(
                f"cannot reach the Discord gateway at {gateway_url}: {_cause(cause, within)}"
            )
        await session
    finally:
        if not session.done():
            session.cancel()
            await asyncio.gather(session, return_exceptions=True)
