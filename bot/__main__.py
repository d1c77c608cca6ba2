"""``python -m bot`` (and the ``echo-bot`` script): run Echo, or another operator command.

``run`` (the default) is here; the other commands (``sync``, ``conversations``, ``chat``)
are dispatched to ``bot.cli`` and ``bot.cli.chat``.

Resources (the store, the manager, the model provider) are built here in ``async with``
blocks and handed to the client, so that shutdown closes them in the right order: replies
finish, the gateway closes, every conversation is saved, then the model client closes.

What ``run`` needs (discord.py, the model SDKs) is imported when it runs, so that
``--help``, a mistyped command line and the other commands answer without that wait.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli import build_parser, dispatch, program_name

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.discord.client import EchoBot

log = logging.getLogger("bot")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


class FatalStartupError(Exception):
    """Start-up cannot go on; the message is one line for the operator."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser(program_name(sys.argv[0])).parse_args(argv)
    if args.command not in (None, "run"):
        return dispatch(args)
    from bot.config import ConfigError, load_settings

    try:
        settings = load_settings()
        token = settings.require_token()
    except ConfigError as exc:
        print(f"echo: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level)
    announce_settings(settings)
    try:
        return asyncio.run(run(settings, token))
    except FatalStartupError as exc:
        print(f"echo: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:  # a second Ctrl-C while shutting down
        return EXIT_FAILED


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
    if level != "DEBUG":
        # discord.py's INFO lines about each gateway (re)connect are worth keeping; its
        # per-request chatter is not.
        logging.getLogger("discord.http").setLevel(logging.WARNING)
    from bot.discord.start import silence_voice_notices

    silence_voice_notices()


def announce_settings(settings: Settings) -> None:
    """Variables that look like misspelled settings: said first, as they may explain the rest."""
    for line in settings.notices:
        log.warning("%s", line)


def announce_where(settings: Settings) -> None:
    """Where Echo keeps its data and which ``.env`` it read: run from another folder, a
    relative ECHO_DATA_DIR is another folder, and that must never pass for a fresh start.
    Said once the store is open, so that a start that fails there stays one line."""
    source = (
        f"settings from {settings.env_file} and the environment"
        if settings.env_file is not None
        else f"no .env in {Path.cwd()}: settings from the environment and the defaults"
    )
    log.info("data folder: %s (%s)", settings.data_dir.resolve(), source)


async def run(settings: Settings, token: str) -> int:
    from bot.app import echo_app
    from bot.config import ConfigError
    from bot.startup import freeze_start_up_objects
    from memory import StoreError

    # Start-up can wait a long time (for Redis, say): a signal then stops it cleanly.
    loop = asyncio.get_running_loop()
    starting = asyncio.current_task()
    interrupted = asyncio.Event()

    def stop_start_up() -> None:
        interrupted.set()
        if starting is not None:
            starting.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop_start_up)
    said_why = False
    try:
        async with echo_app(settings) as bot:
            announce_where(settings)
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            # Start-up is done: full garbage collections need not walk its objects any more.
            freeze_start_up_objects()
            return await _serve(bot, token, settings)
    except (StoreError, ConfigError) as exc:  # e.g. ECHO_STORE=redis without the redis extra
        said_why = True  # its one line is all the operator needs
        raise FatalStartupError(str(exc)) from None
    except asyncio.CancelledError:
        if not interrupted.is_set():
            raise
        log.info("signal received during start-up")
        return EXIT_OK
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if not said_why:
            log.info("stopped")


async def _serve(bot: EchoBot, token: str, settings: Settings) -> int:
    import aiohttp
    import discord

    from bot.discord.start import DiscordUnreachable

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    running = loop.create_task(_start(bot, token, settings), name="echo-discord")
    stopping = loop.create_task(stop.wait(), name="echo-signal")
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    if stopping.done():
        log.info("signal received: finishing replies, saving conversations")
        await bot.close()
        await asyncio.wait({running}, timeout=10)
        if not running.done():
            running.cancel()
        elif not running.cancelled():
            # Closing mid-login makes the login fail ("Connector is closed"): that is the
            # stop the operator asked for, not a fault.
            running.exception()
        return EXIT_OK
    stopping.cancel()
    error = running.exception() if not running.cancelled() else None
    if error is None:
        return EXIT_OK
    if isinstance(error, DiscordUnreachable):
        raise FatalStartupError(str(error))
    if isinstance(error, discord.LoginFailure):
        raise FatalStartupError(
            "Discord rejected DISCORD_TOKEN (401 Unauthorized): copy the token again from the "
            "Developer Portal (your application > Bot > Reset Token) into .env"
        )
    if isinstance(error, discord.PrivilegedIntentsRequired):
        raise FatalStartupError(
            "the Message Content intent is off: turn on 'Message Content Intent' in the "
            "Developer Portal (your application > Bot > Privileged Gateway Intents), then start "
            "Echo again"
        )
    if isinstance(error, aiohttp.ClientError | OSError):
        raise FatalStartupError(
            f"cannot reach Discord at {settings.discord_api_base}: {error or type(error).__name__}"
        )
    log.error("the Discord client stopped: %s", error, exc_info=error)
    return EXIT_FAILED


async def _start(bot: EchoBot, token: str, settings: Settings) -> None:
    """``bot.start``, with start-up's deadline on Discord's first answers."""
    from bot.discord.start import connect_discord, login_discord

    timeout = settings.discord_connect_timeout_seconds
    await login_discord(bot, token, api_base=settings.discord_api_base, within=timeout)
    await connect_discord(bot, gateway_url=settings.discord_gateway_url, within=timeout)


if __name__ == "__main__":
    sys.exit(main())
