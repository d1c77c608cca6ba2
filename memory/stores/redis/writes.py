"""How the Redis store writes: mutations, whole conversations, memories.

Appending is one Lua script: O(1), atomic, deduplicated by Discord message id; two processes
appending to one conversation interleave and lose nothing. Appends made at the same moment
(many conversations recording at once) share round trips (``batching.ScriptBatcher``).
Rarer mutations (edit, delete, summary, end, forget) read the conversation under WATCH,
apply the same ``Mutation.apply`` the JSON store replays, and write back in MULTI/EXEC,
retrying if another process changed it.

The thread -> guild lookup is written before a conversation is: a crash in between leaves a
pointer to nothing (read as "no conversation"), never a conversation that cannot be found.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from redis.exceptions import WatchError

from memory.errors import first_line
from memory.records.memories import MemoryRecord
from memory.records.models import Conversation
from memory.records.mutations import Append, Create, ForgetPerson, Mutation, Purge
from memory.stores.base import StoreError
from memory.stores.redis.changes import SCRUB
from memory.stores.redis.connection import UNREACHABLE, reads
from memory.stores.redis.encoding import (
    PIPELINE_CHUNK,
    build,
    header_fields,
    micros,
    score,
    write_back,
)

if TYPE_CHECKING:
    from memory.stores.redis.store import RedisStore

__all__ = ["Missing", "RedisWrites"]


class Missing(StoreError):
    """The conversation a mutation applies to is not in Redis."""


class RedisWrites:
    """``RedisStore``'s writes (methods only: the state is the store's)."""

    async def _guild(self: RedisStore, thread_id: str) -> str | None:
        guild = self._guild_of.get(thread_id)
        if guild is None:
            raw = await self.redis.hget(self.keys.threads, thread_id)
            if raw is None:
                return None
            guild = raw.decode()
            self._guild_of[thread_id] = guild
        return guild

    async def _apply(self: RedisStore, mutation: Mutation, marker: str, seq: str) -> None:
        if isinstance(mutation, Create):
            await self._apply_create(mutation.conversation, marker, seq)
            return
        guild = await self._guild(mutation.thread_id)
        if guild is None:
            raise Missing(f"no conversation for thread {mutation.thread_id} in Redis")
        if isinstance(mutation, Append):
            await self._apply_append(guild, mutation, marker, seq)
        elif isinstance(mutation, Purge):
            await self._purge(guild, mutation.thread_id)
        else:
            await self._rewrite(guild, mutation, marker, seq)

    async def _apply_create(
        self: RedisStore, conversation: Conversation, marker: str, seq: str
    ) -> None:
        guild, thread = conversation.guild_id, conversation.thread_id
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.keys.threads, thread, guild)
        pipe.sadd(self.keys.guilds, guild)
        await pipe.execute()
        args: list[Any] = [
            marker,
            seq,
            thread,
            score(conversation.created_at),
            json.dumps(list(conversation.participants)),
        ]
        for field, value in header_fields(conversation).items():
            args.extend((field, value))
        keys = [*self.keys.conversation(guild, thread), self.keys.conversations(guild)]
        await self._create_script(keys=keys, args=args)

    async def _apply_append(
        self: RedisStore, guild: str, mutation: Append, marker: str, seq: str
    ) -> None:
        message = mutation.message
        created = message.created_at
        assert self._appends is not None
        result = await self._appends.call(
            self._append_script,
            self.keys.conversation(guild, mutation.thread_id),
            [
                marker,
                seq,
                message.to_json(),
                message.message_id or "",
                micros(created),
                json.dumps(created.isoformat()),
                message.requester or "",
            ],
        )
        if result == -1:
            raise Missing(f"no conversation for thread {mutation.thread_id} in Redis")

    async def _rewrite(
        self: RedisStore, guild: str, mutation: Mutation, marker: str, seq: str
    ) -> None:
        """Read under WATCH, apply, write back in MULTI/EXEC; again if someone else wrote."""
        keys = self.keys.conversation(guild, mutation.thread_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(*keys)
                    if marker:
                        last = await pipe.hget(keys[0], marker)
                        if last is not None and last.decode() >= seq:
                            await pipe.reset()
                            return
                    header = await pipe.hgetall(keys[0])
                    if not header:
                        raise Missing(f"no conversation for thread {mutation.thread_id} in Redis")
                    items = await pipe.lrange(keys[1], 0, -1)
                    people = await pipe.lrange(keys[3], 0, -1)
                    conversation = await build(header, items, people)
                    before = list(conversation.history)
                    mutation.apply(conversation)
                    pipe.multi()
                    write_back(pipe, keys, conversation, before, items)
                    if isinstance(mutation, ForgetPerson):
                        await self._changed(pipe, guild, mutation.thread_id)
                        await self._changed(pipe, guild, SCRUB)
                    if marker:
                        pipe.hset(keys[0], marker, seq)
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    async def _purge(self: RedisStore, guild: str, thread_id: str) -> bool:
        keys = self.keys.conversation(guild, thread_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(*keys)
        pipe.zrem(self.keys.conversations(guild), thread_id)
        await self._changed(pipe, guild, thread_id)
        await self._changed(pipe, guild, SCRUB)
        results = await pipe.execute()
        await self.redis.hdel(self.keys.threads, thread_id)
        return bool(results[0])

    @reads
    async def _put(self: RedisStore, conversation: Conversation) -> None:
        guild, thread = conversation.guild_id, conversation.thread_id
        keys = self.keys.conversation(guild, thread)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hset(self.keys.threads, thread, guild)
            pipe.sadd(self.keys.guilds, guild)
            await pipe.execute()
            pipe = self.redis.pipeline(transaction=True)
            pipe.delete(*keys)
            pipe.hset(keys[0], mapping=header_fields(conversation))
            history = [m.to_json() for m in conversation.history]
            for start in range(0, len(history), PIPELINE_CHUNK):
                pipe.rpush(keys[1], *history[start : start + PIPELINE_CHUNK])
            ids = [m.message_id for m in conversation.history if m.message_id]
            if ids:
                pipe.sadd(keys[2], *ids)
            pipe.rpush(keys[3], *conversation.participants)
            pipe.zadd(self.keys.conversations(guild), {thread: score(conversation.created_at)})
            await self._changed(pipe, guild, thread)
            await pipe.execute()
        except UNREACHABLE as exc:
            raise StoreError(f"could not write conversation {thread}: {first_line(exc)}") from exc
        self._guild_of[thread] = guild

    @reads
    async def _save_memory(self: RedisStore, record: MemoryRecord) -> None:
        guild = record.guild_id
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.sadd(self.keys.guilds, guild)
            await pipe.execute()
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(self.keys.memory(guild, record.thread_id), record.to_json())
            pipe.sadd(self.keys.memories(guild), record.thread_id)
            await self._changed(pipe, guild, record.thread_id)
            await pipe.execute()
        except UNREACHABLE as exc:
            raise StoreError(
                f"could not save the memory of {record.thread_id}: Redis is unreachable"
            ) from exc

    @reads
    async def _delete_memory(self: RedisStore, guild_id: str, thread_id: str) -> bool:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys.memory(guild_id, thread_id))
        pipe.srem(self.keys.memories(guild_id), thread_id)
        await self._changed(pipe, guild_id, thread_id)
        await self._changed(pipe, guild_id, SCRUB)
        deleted = (await pipe.execute())[0]
        return bool(deleted)
