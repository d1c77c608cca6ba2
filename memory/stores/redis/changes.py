"""The change feed of the Redis store: which conversations and memories changed, per guild.

Every write that changes indexable data bumps the guild's generation (``<prefix>:{g}:gen``)
and files the thread under it (``<prefix>:{g}:changes``). The recall index of each process
asks for what changed since the generation it last saw, to catch up with what other processes
wrote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memory.records.models import validate_snowflake
from memory.stores.redis.connection import reads

if TYPE_CHECKING:
    from memory.stores.redis.store import RedisStore

__all__ = ["SCRUB", "RedisChangeFeed"]

SCRUB = "scrub"
"""Listed among a guild's changes after a forget or a delete: caches of that guild must not
keep the deleted text in their bytes (see ``RecallIndex.scrub``)."""


class RedisChangeFeed:
    """``RedisStore``'s change feed (methods only: the state is the store's)."""

    async def _changed(self: RedisStore, pipe: Any, guild: str, thread: str) -> None:
        """Note that this conversation (or its memory) changed, for other processes' caches.

        With ``pipe``, queued in that transaction; otherwise sent at once.
        """
        keys = [self.keys.generation(guild), self.keys.changes(guild)]
        if pipe is None:
            await self._changed_script(keys=keys, args=[thread])
        else:
            await self._changed_script(keys=keys, args=[thread], client=pipe)

    @reads
    async def changes_since(
        self: RedisStore, guild_id: str, generation: int | None
    ) -> tuple[int, set[str]]:
        """The guild's generation now, and the threads whose conversation or memory changed
        after ``generation`` (all that ever changed, for None); ``SCRUB`` among them if text
        was deleted since (a forget, a deleted conversation or memory).

        The recall index of each process uses it to catch up with what other processes wrote.
        """
        guild = validate_snowflake(guild_id, "guild_id")
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(self.keys.generation(guild))
        low = "-inf" if generation is None else f"({generation}"
        pipe.zrangebyscore(self.keys.changes(guild), low, "+inf")
        now, threads = await pipe.execute()
        return int(now or 0), {t.decode() for t in threads}
