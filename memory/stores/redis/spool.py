"""The Redis store's outage spool: recording while Redis is away, flushing when it is back.

With a ``spool_dir``, a mutation that cannot reach Redis goes to a local journal (the
write-ahead spool) and so does every one after it, in order, until Redis answers again; then
the spool is flushed in order. Each spooled mutation carries a sequence number that the write
itself records in the conversation's hash, so a flush cut short (or a write whose answer was
lost) is never applied twice. One warning is logged when Redis goes away, one line when it is
back. A spool an earlier run left (a bot killed during an outage) is flushed at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from memory.errors import first_line
from memory.recording.journal import Journal, JournalError
from memory.records.models import Conversation
from memory.records.mutations import Mutation, MutationError, decode, encode
from memory.stores.base import StoreError
from memory.stores.data_folder import lock_folder
from memory.stores.redis.connection import UNREACHABLE
from memory.stores.redis.encoding import SEQ_WIDTH
from memory.stores.redis.urls import shown_url

if TYPE_CHECKING:
    from memory.stores.redis.store import RedisStore

log = logging.getLogger(__name__)

__all__ = ["OutageSpool"]


class OutageSpool:
    """``RedisStore``'s spool (methods only: the state is the store's, see its ``__init__``)."""

    def _open_spool(self: RedisStore) -> None:
        assert self.spool_dir is not None
        try:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = lock_folder(self.spool_dir)
            id_file = self.spool_dir / "spool-id"
            if id_file.is_file():
                self._spool_id = id_file.read_text().strip()
            if not self._spool_id.isalnum():
                self._spool_id = uuid.uuid4().hex[:16]
                id_file.write_text(self._spool_id + "\n")
            self._spool = Journal(self.spool_dir / "journal", self.fsync)
            self._spool.open()
        except OSError as exc:
            raise StoreError(f"cannot use spool folder {self.spool_dir}: {exc}") from exc
        self._marker = f"_s:{self._spool_id}"

    async def _close_spool(self: RedisStore) -> None:
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect
            self._reconnect = None
        if self._spool is not None:
            if self._backlog:
                log.warning(
                    "%d mutation(s) wait in the spool %s for Redis; they are flushed at the "
                    "next start",
                    len(self._backlog),
                    self.spool_dir,
                )
            with contextlib.suppress(JournalError):
                await self._spool.close()
            self._spool = None
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    async def _recover(self: RedisStore) -> list[Conversation]:
        """Flush what a spool of an earlier run holds (a bot killed during an outage)."""
        spool = self._spool
        if spool is None or not spool.has_leftovers:
            return []
        records = [r.data for r in spool.read_leftovers()]
        flushed = kept = 0
        for data in records:
            try:
                await self._apply_spooled(data)
            except (MutationError, StoreError) as exc:
                self._set_aside(data, exc)
                kept += 1
                continue
            except UNREACHABLE as exc:
                raise StoreError(
                    f"Redis went away while flushing the spool {self.spool_dir}: "
                    f"{first_line(exc)}; it is kept and flushed at the next start"
                ) from exc
            flushed += 1
        spool.discard_leftovers()
        log.info(
            "flushed %d mutation(s) an earlier run left in the spool %s", flushed, self.spool_dir
        )
        if kept:
            log.warning("%d spooled mutation(s) could not be applied and are kept (above)", kept)
        return []

    def _next_seq(self: RedisStore) -> str:
        """Increasing across this spool's runs: wall-clock microseconds, forced up by one."""
        seq = max(self._last_seq + 1, time.time_ns() // 1000)
        self._last_seq = seq
        return str(seq).zfill(SEQ_WIDTH)

    async def _to_spool(self: RedisStore, mutation: Mutation, seq: str) -> None:
        assert self._spool is not None
        record = {
            "seq": seq,
            "spool": self._spool_id,
            "guild": self._guild_of.get(mutation.thread_id),
            "mutation": json.loads(encode(mutation)),
        }
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        async with self._spool_lock:
            try:
                position = await self._spool.append(mutation.thread_id, line)
            except JournalError as exc:
                raise StoreError(
                    f"Redis is unreachable and the spool {self.spool_dir} cannot be written: {exc}"
                ) from exc
            self._backlog.append((position, mutation.thread_id, record))
        if self._online:
            # A flush was in progress (it drains the backlog) or just finished: make sure
            # someone drains this record.
            self._start_reconnect()

    def _went_away(self: RedisStore, exc: BaseException) -> None:
        if self._online:
            self._online = False
            log.warning(
                "Redis at %s is unreachable (%s); recording to the spool %s until it is back",
                shown_url(self.url),
                first_line(exc),
                self.spool_dir,
            )
        self._start_reconnect()

    def _start_reconnect(self: RedisStore) -> None:
        self._wake = True
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.get_running_loop().create_task(
                self._reconnect_and_flush(), name="echo-redis-reconnect"
            )

    async def _reconnect_and_flush(self: RedisStore) -> None:
        """Wait for Redis, flush the spool, go back online; again if asked while finishing."""
        delay = 0.2
        flushed = 0
        while True:
            self._wake = False
            try:
                await self.redis.ping()
                await self._restore_if_lost(drop_backlog=True)
                flushed += await self._flush()
            except (*UNREACHABLE, ResponseError) as exc:  # away, or refusing writes for now
                self._went_away(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            async with self._spool_lock:
                if self._backlog:
                    continue
                was_offline = not self._online
                self._online = True
                held, self._held = self._held, {}
            if was_offline:
                log.info(
                    "Redis at %s is back: %d spooled mutation(s) flushed",
                    shown_url(self.url),
                    flushed,
                )
                flushed = 0
            for conversation in held.values():  # saved while away: other processes' caches
                with contextlib.suppress(*UNREACHABLE):
                    await self._changed(None, conversation.guild_id, conversation.thread_id)
            # Nothing awaits between this check and the return, so a record spooled after it
            # finds this task done and starts another.
            if not self._wake and self._online and not self._backlog:
                return

    async def _flush(self: RedisStore) -> int:
        """Apply the backlog in order; each record is dropped only once Redis has it."""
        assert self._spool is not None
        flushed = 0
        while self._backlog:
            position, thread_id, record = self._backlog[0]
            try:
                await self._apply_spooled(record)
            except (MutationError, StoreError) as exc:
                self._set_aside(record, exc)
            self._backlog.popleft()
            self._spool.mark_saved(thread_id, position)
            flushed += 1
        return flushed

    def _set_aside(self: RedisStore, record: dict[str, Any], exc: Exception) -> None:
        """A spooled mutation Redis cannot take (its conversation is gone from Redis): kept in
        a file for the operator, never silently dropped."""
        assert self.spool_dir is not None
        target = self.spool_dir / f"orphaned-{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}.jsonl"
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        data = record.get("mutation")
        data = data if isinstance(data, dict) else {}
        log.error(
            "a spooled %s of thread %s cannot be applied (%s); kept in %s",
            data.get("op"),
            data.get("thread_id"),
            exc,
            target,
        )

    async def _apply_spooled(self: RedisStore, record: dict[str, Any]) -> None:
        data, seq = record.get("mutation"), record.get("seq")
        if not isinstance(data, dict) or not isinstance(seq, str) or not seq.isdigit():
            # JSON, but not a spool record (damaged, or hand-edited): kept, never applied.
            raise MutationError("not a spooled mutation (no mutation and sequence number)")
        mutation = decode(data)
        guild = record.get("guild")
        if isinstance(guild, str) and guild.isdigit():
            self._guild_of.setdefault(mutation.thread_id, guild)
        spool = record.get("spool")
        marker = f"_s:{spool if isinstance(spool, str) and spool.isalnum() else self._spool_id}"
        await self._apply(mutation, marker, seq)
