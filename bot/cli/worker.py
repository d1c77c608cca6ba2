"""``python -m bot worker``: make memories from the batches bots queue on Redis.

Any number of workers may run, on any machines that reach the Redis of the bots. Each takes
whole batches from the queue; a batch whose worker died (SIGKILL, a lost machine) is taken
over by another once it has been silent for ``--claim-after`` seconds, and the conversations
the dead worker finished are not made again. SIGTERM or Ctrl-C stops a worker at once: the
conversation in hand is dropped unsaved and its batch goes back to the queue for the next
worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from bot.cli.common import settings_or_fail
from bot.cli.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, CliError
from bot.config import Settings

__all__ = ["worker_command"]

log = logging.getLogger("bot.worker")

NEEDS_REDIS = "the worker needs ECHO_STORE=redis; with JSON files the bot generates memories itself"


def worker_command(args: argparse.Namespace) -> int:
    if args.claim_after is not None and not args.claim_after > 0:
        raise CliError("--claim-after must be more than 0 seconds", EXIT_CONFIG)
    settings = settings_or_fail()
    if settings.store != "redis":
        raise CliError(NEEDS_REDIS, EXIT_CONFIG)
    _logging(settings.log_level)
    from memory import StoreConfigError, StoreError

    try:
        return asyncio.run(_work(settings, args.claim_after, args.once))
    except StoreConfigError as exc:  # a password, a permission: the settings, exit 2
        raise CliError(str(exc), EXIT_CONFIG) from None
    except StoreError as exc:
        raise CliError(str(exc)) from None


def _logging(level: str) -> None:
    """A worker's log is its output: one line per batch, as the bot logs."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )
    if level != "DEBUG":
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per model request


async def _work(settings: Settings, claim_after: float | None, once: bool) -> int:
    from bot.app import echo_core
    from memory.stores.redis.queue import RedisMemoryQueue

    # No spool: a worker records no conversation, so several can share one data folder.
    async with echo_core(settings, spool=False) as core:
        queue = core.memories.queue
        if not isinstance(queue, RedisMemoryQueue):
            raise CliError(NEEDS_REDIS, EXIT_CONFIG)
        if claim_after is not None:
            queue.claim_after = claim_after
        log.info(
            "memory worker %s: batches from %s, taken over after %g s of silence, with %s",
            queue.consumer,
            queue.stream,
            queue.claim_after,
            core.memories.distiller.name,
        )
        try:
            if once:
                done = await core.memories.work(once=True)
                log.info("memory worker %s: %d batch(es) done, none waiting", queue.consumer, done)
                return EXIT_OK
            return await _until_stopped(core.memories.work())
        finally:
            await queue.close()


async def _until_stopped(work: Any) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    working = loop.create_task(work, name="echo-memory-worker")
    stopping = loop.create_task(stop.wait(), name="echo-worker-signal")
    try:
        await asyncio.wait({working, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    stopping.cancel()
    if not working.done():
        log.info("signal received: stopping; a batch in hand goes back to the queue")
        working.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await working
        return EXIT_OK
    error = working.exception()
    if error is not None:
        raise error
    return EXIT_FAILED  # work() only returns in --once mode
