"""Lua script calls made at the same moment share one round trip to Redis.

A bot records the messages of many conversations at once. Sent one by one, each append is a
round trip and a pooled connection of its own. Here a call goes out at once when nothing else
is on the wire, so a lone call waits for nothing; calls made while one is on the wire queue up
and leave together, as one redis-py pipeline (``transaction=False``) of ``EVALSHA`` commands,
as soon as it is answered. This is the auto-pipelining of ioredis and Lettuce: no timer, no
added latency, batches as big as the load makes them.

One batch at a time is on the wire, so calls reach Redis in the order they were made: two
messages of one conversation, recorded by two tasks, stay in the order they arrived (several
batches in flight on several connections could overtake each other). Every caller gets its own
result or error: the pipeline runs with ``raise_on_error=False``, so an error reply stands in
for its own call only. A batch that fails on the wire fails every call in it; each may or may
not have run, as with a lone call whose answer was lost. redis-py's retry policy (the pool's
``Retry``) sends a whole pipeline again on a new connection when its connection failed, as it
does a lone command, even if some replies had come back: those calls then run twice. Echo's
append script makes that harmless where it can: it skips a spool sequence number it has seen
(with a spool) and a Discord message id it holds.

Scripts are called by SHA and loaded when the server answers NOSCRIPT (a restart, SCRIPT
FLUSH), rather than through redis-py's ``Script`` objects on the pipeline, which ask the server
whether the scripts exist (one more round trip) before every batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError

from memory.stores.redis.connection import RedisClient

__all__ = ["ScriptBatcher"]

_Call = tuple[AsyncScript, Sequence[Any], Sequence[Any], "asyncio.Future[Any]"]


class ScriptBatcher:
    """Runs ``script(keys, args)`` calls, coalescing concurrent ones into pipelines."""

    def __init__(self, client: RedisClient, *, max_batch: int = 512) -> None:
        self._client = client
        self._max_batch = max_batch
        self._busy = False  # a batch (or a lone call) is on the wire
        self._queue: list[_Call] = []
        self._kick_pending = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.round_trips = 0  # batches sent (a lone call included): how well calls coalesce

    async def call(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """The script's reply; raises what Redis or the connection raised for this call."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        call = (script, keys, args, future)
        if not self._busy and not self._queue:
            # Nothing on the wire: go now, from this task (no hop through the loop).
            self._busy = True
            try:
                await self._run([call], reload=True)
            finally:
                self._busy = False
                self._kick_soon()
        else:
            self._queue.append(call)
            self._kick_soon()
        return await future

    async def aclose(self) -> None:
        """Wait for the pipelines on the wire (their callers are waiting for them too)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _kick_soon(self) -> None:
        # call_soon, not now: every task that is ready in this turn of the loop gets to queue
        # its call first, and they all leave in one pipeline.
        if self._queue and not self._kick_pending and not self._busy:
            self._kick_pending = True
            asyncio.get_running_loop().call_soon(self._kick)

    def _kick(self) -> None:
        self._kick_pending = False
        loop = asyncio.get_running_loop()
        if self._queue and not self._busy:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            self._busy = True
            task = loop.create_task(self._send(batch), name="echo-redis-pipeline")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Call]) -> None:
        try:
            await self._run(batch, reload=True)
        finally:
            self._busy = False
            self._kick_soon()

    async def _exchange(self, batch: list[_Call]) -> list[Any]:
        """Every call's reply, in order; an error reply is returned in its place, as an
        exception object."""
        self.round_trips += 1
        if len(batch) == 1:
            # A plain command costs the client less than a pipeline of one.
            script, keys, args, _ = batch[0]
            try:
                return [await self._client.evalsha(script.sha, len(keys), *keys, *args)]
            except ResponseError as exc:
                return [exc]
        async with self._client.pipeline(transaction=False) as pipe:
            for script, keys, args, _ in batch:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            return await pipe.execute(raise_on_error=False)

    async def _run(self, batch: list[_Call], *, reload: bool) -> None:
        try:
            results = await self._exchange(batch)
        except Exception as exc:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled (the lone caller, or the store closing)
            for *_, future in batch:
                future.cancel()
            raise
        unknown = []
        if reload:
            unknown = [c for c, result in zip(batch, results, strict=True) if _no_script(result)]
        if unknown:
            # The server forgot the scripts (a restart, SCRIPT FLUSH): nothing ran for these
            # calls; load the scripts and send them again, once, still in their order.
            try:
                for script in {id(call[0]): call[0] for call in unknown}.values():
                    await self._client.script_load(script.script)
            except Exception as exc:
                for *_, future in unknown:
                    if not future.done():
                        future.set_exception(exc)
                unknown = []
            else:
                await self._run(unknown, reload=False)
        retried = {id(call) for call in unknown}
        for call, result in zip(batch, results, strict=True):
            future = call[3]
            if id(call) in retried or future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


def _no_script(result: Any) -> bool:
    return isinstance(result, NoScriptError)
