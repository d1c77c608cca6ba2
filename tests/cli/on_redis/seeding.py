"""The Redis the CLI tests read: conversations and memories of three guilds written into a
private key prefix of the shared Redis, as the bot writes them, and the same conversations as
JSON files to compare with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from memory import InMemoryConversationManager, Message, MessageType
from memory.records.memories import Fact, MemoryData, MemoryRecord
from memory.stores.redis.store import RedisStore
from tests.cli.helpers import (
    ALICE,
    T0,
    Result,
    cli_env,
    run_cli,
)

# Guilds 1 and 12: the keys of guild 1 are a prefix of guild 12's but for the hash tag.
ONE, TWELVE = "1", "12"
ONES = "1310000000000000601"
TWELVES = "1310000000000000602"


@dataclass
class Seeded:
    tmp: Path
    url: str
    prefix: str
    json_data: Path  # the same conversations as JSON files

    @property
    def env(self) -> dict[str, str]:
        return cli_env(
            self.tmp, ECHO_STORE="redis", REDIS_URL=self.url, ECHO_REDIS_PREFIX=self.prefix
        )

    @property
    def where(self) -> str:
        return f"Redis at {self.url} (prefix '{self.prefix}')"

    def key(self, guild: str, thread: str) -> str:
        return f"{self.prefix}:{{{guild}}}:conv:{thread}"

    def store(self) -> RedisStore:
        return RedisStore(self.url, prefix=self.prefix, wait_for_redis=5)

    async def cli(self, *args: str, stdin: bytes | None = None) -> Result:
        return await run_cli(*args, cwd=self.tmp, env=self.env, stdin=stdin)


def memory_of(thread: str, guild: str, text: str, *, fact: str) -> MemoryRecord:
    return MemoryRecord(
        thread_id=thread,
        guild_id=guild,
        requester=ALICE,
        participants=[ALICE],
        memory_data=MemoryData(
            summary=text,
            topics=["plans"],
            facts=[Fact(text=fact, about=ALICE, source_message_ids=[])],
            decisions=["Friday"],
        ),
        generator="test",
        created_at=T0 + timedelta(hours=3),
        updated_at=T0 + timedelta(hours=3),
        source_updated_at=T0 + timedelta(minutes=5),
        conversation_created_at=T0,
    )


async def chat_in(manager: InMemoryConversationManager, thread: str, guild: str, text: str) -> None:
    await manager.create_conversation(
        thread_id=thread,
        guild_id=guild,
        guild_name=f"Guild {guild}",
        requester=ALICE,
        channel_id="1310000000000000044",
        created_at=T0 + timedelta(hours=int(guild)),
    )
    await manager.add_message_to_conversation(
        thread,
        Message(
            created_at=T0 + timedelta(hours=int(guild), seconds=1),
            message_type=MessageType.CHAT,
            message_content=text,
            requester=ALICE,
            message_id=f"{thread}1",
            meta={"author_name": "alice"},
        ),
    )
