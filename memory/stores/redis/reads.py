"""How the Redis store reads: one conversation, the listings of a guild, memories.

A listing reads only the keys of the guilds it is asked about (their hash tag), in pipelines
of ``PIPELINE_CHUNK`` commands. Data that does not parse is logged and left as it is.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from memory.errors import first_line
from memory.records.memories import MemoryRecord
from memory.records.models import Conversation, validate_snowflake
from memory.stores.base import ConversationInfo, ConversationRef, StoreError
from memory.stores.redis.connection import UNREACHABLE, reads
from memory.stores.redis.encoding import PIPELINE_CHUNK, build, header, memory_record

if TYPE_CHECKING:
    from memory.stores.redis.store import RedisStore

log = logging.getLogger(__name__)

__all__ = ["RedisReads"]


class RedisReads:
    """``RedisStore``'s reads (methods only: the state is the store's)."""

    @reads
    async def _load(self: RedisStore, thread_id: str) -> Conversation | None:
        held = self._held.get(thread_id)
        if held is not None:
            return held
        try:
            guild = await self._guild(thread_id)
            if guild is None:
                return None
            keys = self.keys.conversation(guild, thread_id)
            pipe = self.redis.pipeline(transaction=True)
            pipe.hgetall(keys[0])
            pipe.lrange(keys[1], 0, -1)
            pipe.lrange(keys[3], 0, -1)
            raw, items, people = await pipe.execute()
        except UNREACHABLE as exc:
            raise StoreError(
                f"cannot read conversation {thread_id}: Redis is unreachable ({first_line(exc)})"
            ) from exc
        if not raw:
            return None
        try:
            return await build(raw, items, people)
        except ValueError as exc:
            log.error(
                "conversation %s in Redis (%s) does not parse, left as it is: %s",
                thread_id,
                keys[0],
                first_line(exc),
            )
            return None

    @reads
    async def _exists(self: RedisStore, thread_id: str) -> bool:
        if thread_id in self._held:
            return True
        guild = await self._guild(thread_id)
        if guild is None:
            return False
        return bool(await self.redis.exists(self.keys.conversation(guild, thread_id)[0]))

    async def _guild_ids(self: RedisStore, guild_id: str | None) -> list[str]:
        if guild_id is not None:
            return [guild_id]
        return sorted((g.decode() for g in await self.redis.smembers(self.keys.guilds)), key=int)

    @reads
    async def _list(self: RedisStore, guild_id: str | None) -> list[ConversationRef]:
        refs: list[ConversationRef] = []
        for guild in await self._guild_ids(guild_id):
            threads = await self.redis.zrange(self.keys.conversations(guild), 0, -1)
            ids = [t.decode() for t in threads]
            for start in range(0, len(ids), PIPELINE_CHUNK):
                chunk = ids[start : start + PIPELINE_CHUNK]
                pipe = self.redis.pipeline(transaction=False)
                for thread in chunk:
                    pipe.hmget(self.keys.conversation(guild, thread)[0], "requester", "created_at")
                for thread, (requester, created) in zip(chunk, await pipe.execute(), strict=True):
                    if requester is None or created is None:
                        continue
                    location = f"redis {self.keys.conversation(guild, thread)[0]}"
                    try:
                        day = datetime.fromisoformat(json.loads(created)).astimezone(UTC).date()
                        owner = validate_snowflake(json.loads(requester), "requester")
                    except (ValueError, TypeError) as exc:
                        log.error("%s does not parse, left as it is: %s", location, exc)
                        continue
                    refs.append(ConversationRef(thread, guild, owner, day, location))
        return refs

    @reads
    async def _list_guilds(self: RedisStore) -> list[str]:
        guilds = await self._guild_ids(None)
        pipe = self.redis.pipeline(transaction=False)
        for guild in guilds:
            pipe.zcard(self.keys.conversations(guild))
        counts = await pipe.execute()
        return [g for g, n in zip(guilds, counts, strict=True) if n]

    @reads
    async def _infos(self: RedisStore, guild_id: str | None) -> list[ConversationInfo]:
        infos: list[ConversationInfo] = []
        for guild in await self._guild_ids(guild_id):
            threads = [
                t.decode() for t in await self.redis.zrange(self.keys.conversations(guild), 0, -1)
            ]
            for start in range(0, len(threads), PIPELINE_CHUNK):
                chunk = threads[start : start + PIPELINE_CHUNK]
                pipe = self.redis.pipeline(transaction=False)
                for thread in chunk:
                    keys = self.keys.conversation(guild, thread)
                    pipe.hgetall(keys[0])
                    pipe.lrange(keys[3], 0, -1)
                results = await pipe.execute()
                for raw, people in zip(results[0::2], results[1::2], strict=True):
                    if not raw:
                        continue
                    try:
                        conversation = Conversation.model_validate(header(raw, people))
                    except ValueError as exc:
                        log.error(
                            "a conversation header of guild %s does not parse: %s", guild, exc
                        )
                        continue
                    infos.append(ConversationInfo.of(conversation))
        return infos

    @reads
    async def _load_memory(self: RedisStore, guild_id: str, thread_id: str) -> MemoryRecord | None:
        key = self.keys.memory(guild_id, thread_id)
        data = await self.redis.get(key)
        return None if data is None else memory_record(key, data)

    @reads
    async def _list_memories(self: RedisStore, guild_id: str) -> list[MemoryRecord]:
        members = await self.redis.smembers(self.keys.memories(guild_id))
        threads = sorted(t.decode() for t in members)
        records: list[MemoryRecord] = []
        for start in range(0, len(threads), PIPELINE_CHUNK):
            chunk = threads[start : start + PIPELINE_CHUNK]
            keys = [self.keys.memory(guild_id, t) for t in chunk]
            for key, data in zip(keys, await self.redis.mget(keys), strict=True):
                if data is not None and (record := memory_record(key, data)) is not None:
                    records.append(record)
        return records
