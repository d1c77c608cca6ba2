"""How the Redis store writes: mutations, whole conversations, memories.

Appending is one Lua script: O(1), atomic, deduplicated by Discord message id; two processes
appending to one conversation interleave and lose nothing. Appends made at the same moment
(many conversations recording at once) share round trips (``batching.ScriptBatcher``).
Rarer mutations (edit, delete, summary, end, forget) read the conversation, apply the same
``Mutation.apply`` the JSON store replays, and write back in one script that first checks the
conversation's version, reading again if another process changed it meanwhile (what WATCH and
MULTI/EXEC would do, in a form Redis Cluster runs as well: see ``scripts``).

The thread -> guild lookup is written before a conversation is: a crash in between leaves a
pointer to nothing (read as "no conversation"), never a conversation that cannot be found.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from memory.errors import first_line
from memory.records.memories import MemoryRecord
from memory.records.models import Conversation
from memory.records.mutations import Append, Create, ForgetPerson, Mutation, Purge
from memory.stores.base import StoreError
from memory.stores.redis.changes import SCRUB
from memory.stores.redis.connection import UNREACHABLE, reads
from memory.stores.redis.encoding import (
    build,
    header_fields,
    micros,
    put_args,
    rewrite_args,
    score,
    version,
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

    async def _index(self: RedisStore, thread_id: str, guild_id: str) -> None:
        """The thread -> guild lookup and the guild list: keys of their own slots (one per key
        on a cluster), so they are written beside a guild's script, never inside it."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.keys.threads, thread_id, guild_id)
        pipe.sadd(self.keys.guilds, guild_id)
        await pipe.execute()

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
        await self._index(thread, guild)
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
        await self.scripts.create(keys=keys, args=args)

    async def _apply_append(
        self: RedisStore, guild: str, mutation: Append, marker: str, seq: str
    ) -> None:
        message = mutation.message
        created = message.created_at
        assert self._appends is not None
        result = await self._appends.call(
            self.scripts.append,
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
        """Read, apply, write back if the version is unchanged; again if someone else wrote."""
        keys = self.keys.conversation(guild, mutation.thread_id)
        missing = f"no conversation for thread {mutation.thread_id} in Redis"
        scrub = SCRUB if isinstance(mutation, ForgetPerson) else ""
        while True:
            raw, items, people = await self._read_conversation(keys)
            if marker:
                last = raw.get(marker.encode())
                if last is not None and last.decode() >= seq:
                    return
            if not raw:
                raise Missing(missing)
            conversation = await build(raw, items, people)
            before = list(conversation.history)
            mutation.apply(conversation)
            result = await self.scripts.rewrite(
                keys=[*keys, self.keys.generation(guild), self.keys.changes(guild)],
                args=[
                    marker,
                    seq,
                    version(raw),
                    mutation.thread_id,
                    scrub,
                    *rewrite_args(conversation, before, items),
                ],
            )
            if result == -1:
                raise Missing(missing)
            if result != 0:
                return

    async def _purge(self: RedisStore, guild: str, thread_id: str) -> bool:
        deleted = await self.scripts.purge(
            keys=[
                *self.keys.conversation(guild, thread_id),
                self.keys.conversations(guild),
                self.keys.generation(guild),
                self.keys.changes(guild),
            ],
            args=[thread_id, SCRUB],
        )
        await self.redis.hdel(self.keys.threads, thread_id)
        return bool(deleted)

    @reads
    async def _put(self: RedisStore, conversation: Conversation) -> None:
        guild, thread = conversation.guild_id, conversation.thread_id
        try:
            await self._index(thread, guild)
            await self.scripts.put(
                keys=[
                    *self.keys.conversation(guild, thread),
                    self.keys.conversations(guild),
                    self.keys.generation(guild),
                    self.keys.changes(guild),
                ],
                args=put_args(conversation),
            )
        except UNREACHABLE as exc:
            raise StoreError(f"could not write conversation {thread}: {first_line(exc)}") from exc
        self._guild_of[thread] = guild

    @reads
    async def _save_memory(self: RedisStore, record: MemoryRecord) -> None:
        guild = record.guild_id
        try:
            await self.redis.sadd(self.keys.guilds, guild)
            await self.scripts.save_memory(
                keys=[
                    self.keys.memory(guild, record.thread_id),
                    self.keys.memories(guild),
                    self.keys.generation(guild),
                    self.keys.changes(guild),
                ],
                args=[record.thread_id, record.to_json()],
            )
        except UNREACHABLE as exc:
            raise StoreError(
                f"could not save the memory of {record.thread_id}: Redis is unreachable"
            ) from exc

    @reads
    async def _delete_memory(self: RedisStore, guild_id: str, thread_id: str) -> bool:
        deleted = await self.scripts.delete_memory(
            keys=[
                self.keys.memory(guild_id, thread_id),
                self.keys.memories(guild_id),
                self.keys.generation(guild_id),
                self.keys.changes(guild_id),
            ],
            args=[thread_id, SCRUB],
        )
        return bool(deleted)
