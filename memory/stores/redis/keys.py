"""The names of the Redis store's keys (``prefix`` defaults to ``echo``)::

    <prefix>:{<guild>}:conv:<thread>          hash   the header; one field per key, as JSON
    <prefix>:{<guild>}:conv:<thread>:log      list   the history, one message (JSON) per item
    <prefix>:{<guild>}:conv:<thread>:ids      set    Discord message ids recorded (dedupe)
    <prefix>:{<guild>}:conv:<thread>:people   list   participants, in order of arrival
    <prefix>:{<guild>}:convs                  zset   thread ids by creation time
    <prefix>:{<guild>}:mem:<thread>           string a MemoryRecord (JSON)
    <prefix>:{<guild>}:mems                   set    thread ids that have a memory
    <prefix>:{<guild>}:gen                    int    bumped whenever indexable data changes
    <prefix>:{<guild>}:changes                zset   thread ids by the generation they changed at
    <prefix>:threads                          hash   thread id -> guild id
    <prefix>:guilds                           set    guild ids
    <prefix>:epoch                            string marks the data this process has seen

The ``{<guild>}`` hash tag puts everything of one guild on one Redis Cluster slot, so each
mutation is one atomic script or MULTI/EXEC, and a listing of guild 1 reads only keys that
start with ``<prefix>:{1}:`` (never guild 12's).
"""

from __future__ import annotations

__all__ = ["RedisKeys", "check_prefix"]


def check_prefix(prefix: str) -> str:
    """``ValueError`` unless ``prefix`` is a plain word (no hash tag, separator or pattern)."""
    if not prefix or any(c in prefix for c in "{}: *?[]"):
        raise ValueError(f"prefix must be a plain word, got {prefix!r}")
    return prefix


class RedisKeys:
    """The key names under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = check_prefix(prefix)

    def guild(self, guild_id: str, *parts: str) -> str:
        """``<prefix>:{<guild>}:<parts...>``: every key of one guild shares one hash tag."""
        return ":".join((f"{self.prefix}:{{{guild_id}}}", *parts))

    def conversation(self, guild_id: str, thread_id: str) -> list[str]:
        """A conversation's header, log, ids and people keys, in that order."""
        hdr = self.guild(guild_id, "conv", thread_id)
        return [hdr, f"{hdr}:log", f"{hdr}:ids", f"{hdr}:people"]

    def conversations(self, guild_id: str) -> str:
        return self.guild(guild_id, "convs")

    def memory(self, guild_id: str, thread_id: str) -> str:
        return self.guild(guild_id, "mem", thread_id)

    def memories(self, guild_id: str) -> str:
        return self.guild(guild_id, "mems")

    def generation(self, guild_id: str) -> str:
        return self.guild(guild_id, "gen")

    def changes(self, guild_id: str) -> str:
        return self.guild(guild_id, "changes")

    @property
    def threads(self) -> str:
        return f"{self.prefix}:threads"

    @property
    def guilds(self) -> str:
        return f"{self.prefix}:guilds"

    @property
    def epoch(self) -> str:
        return f"{self.prefix}:epoch"
