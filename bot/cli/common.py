"""What the commands share: ids from the command line, settings, logging, colours.

An operator reads errors in a terminal or a cron mail: each is one line on stderr starting
with ``echo:``, never a traceback, so a bad id or setting becomes a ``CliError`` here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO, TypeVar

from bot.cli.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, CliError
from bot.config import ConfigError, Settings, load_settings
from bot.stores import describe_store, make_store
from memory import ConversationStore, StoreConfigError, StoreError
from memory.records.models import validate_snowflake

T = TypeVar("T")

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_OK",
    "READER_WAIT",
    "CliError",
    "Style",
    "quiet_logging",
    "reading_store",
    "settings_or_fail",
    "shown_dir",
    "snowflake_arg",
    "store_where",
]

READER_WAIT = 5.0
"""Seconds a command that only reads waits for an unreachable Redis before giving up."""


def snowflake_arg(value: str | None, name: str, what: str) -> str | None:
    """A Discord id given on the command line, or ``CliError`` (exit 2) naming the argument."""
    if value is None:
        return None
    try:
        return validate_snowflake(value, name)
    except ValueError:
        raise CliError(
            f"{name} must be a string of digits ({what}), got {value!r}", EXIT_CONFIG
        ) from None


def run_store(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; a store that cannot be read becomes a one-line error (exit
    2 if its settings are wrong)."""
    try:
        return asyncio.run(coro)
    except StoreConfigError as exc:  # a password, a permission: the settings, exit 2
        raise CliError(str(exc), EXIT_CONFIG) from None
    except StoreError as exc:
        raise CliError(str(exc)) from None


@asynccontextmanager
async def reading_store(settings: Settings) -> AsyncIterator[ConversationStore]:
    """The store the settings ask for, opened for a command that only reads.

    JSON: no folder lock and no journal replay, so it reads beside a running bot. Redis: no
    spool, and a server that does not answer within ``READER_WAIT`` seconds is a
    ``StoreError`` naming it (one line; the retries in between are not logged).
    """
    try:
        store = make_store(settings, read_only=True, wait_for_redis=READER_WAIT)
    except ConfigError as exc:  # ECHO_STORE=redis without the redis extra
        raise CliError(str(exc), EXIT_CONFIG) from None
    opening = logging.getLogger(type(store).__module__)
    level = opening.level
    if settings.store == "redis":
        opening.setLevel(logging.ERROR)
    try:
        await store.open()
    finally:
        opening.setLevel(level)
    try:
        yield store
    finally:
        await store.close()


def store_where(settings: Settings) -> str:
    """Where the commands read, for their messages: ``./data``, or ``Redis at <url> (prefix
    'echo')``."""
    if settings.store == "json":
        return shown_dir(settings.data_dir)
    return describe_store(settings)


def settings_or_fail() -> Settings:
    """The settings, or ``CliError``; a variable that looks like a misspelled setting is
    named on stderr (the command goes on: the setting it meant keeps its default)."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_CONFIG) from None
    for line in settings.notices:
        stderr_line(f"echo: warning: {line}")
    return settings


def quiet_logging(settings: Settings, floor: str = "WARNING") -> None:
    """For the commands other than ``run``: ``floor`` and up, unless ECHO_LOG_LEVEL is higher
    or DEBUG. Their output is the point; the bot's INFO lines would be noise between it."""
    levels = logging.getLevelNamesMapping()
    level = settings.log_level
    if level != "DEBUG" and levels[level] < levels[floor]:
        level = floor
    logging.basicConfig(level=level, format="echo: %(levelname)s %(name)s: %(message)s")


def shown_dir(path: Path) -> str:
    """A folder as the operator would type it: ``./data`` rather than ``data``."""
    text = str(path)
    if path.is_absolute() or text.startswith((".", "~")):
        return text
    return f".{os.sep}{text}"


class Style:
    """ANSI styles when writing to a terminal, nothing otherwise (and never with NO_COLOR)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stream(cls, stream: TextIO) -> Style:
        no_color = os.environ.get("NO_COLOR", "") != ""
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        return cls(tty and not no_color and os.environ.get("TERM") != "dumb")

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled and text else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def italic_dim(self, text: str) -> str:
        return self._wrap("2;3", text)

    def echo(self, text: str) -> str:
        return self._wrap("1;36", text)

    def person(self, text: str) -> str:
        return self._wrap("1;32", text)

    def tool(self, text: str) -> str:
        return self._wrap("35", text)

    def warn(self, text: str) -> str:
        return self._wrap("33", text)


def stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
