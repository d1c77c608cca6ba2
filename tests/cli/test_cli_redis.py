"""The read commands (and ``chat``, ``memories generate``) on ``ECHO_STORE=redis``.

Conversations and memories are written into a private key prefix of the shared Redis with
the memory library (``RedisStore`` under an ``InMemoryConversationManager``, as the bot
writes them); the real ``python -m bot`` reads them with ``ECHO_STORE=redis``. The same
conversations are also written as JSON files, so that what the commands print on Redis can
be compared with what they print on files.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from memory import Conversation, InMemoryConversationManager, Message, MessageType
from memory.records import parse, render
from memory.records.memories import Fact, MemoryData, MemoryRecord
from memory.stores.redis.store import RedisStore
from tests.redis_support import free_port

from .helpers import (
    ALICE,
    BOB,
    GUILD,
    NEWEST,
    OLDEST,
    T0,
    TOOLS,
    Result,
    cli_env,
    run_cli,
    write_conversations,
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


@pytest.fixture
async def seeded(tmp_path: Path, redis_url: str, redis_prefix: str) -> Seeded:
    seeded = Seeded(tmp_path, redis_url, redis_prefix, tmp_path / "json-data")
    await write_conversations(seeded.json_data)
    await write_conversations(seeded.store())  # TOOLS, NEWEST in GUILD; OLDEST in OTHER_GUILD
    async with InMemoryConversationManager(store=seeded.store()) as manager:
        await chat_in(manager, ONES, ONE, "The lighthouse keeper wants the lamp cleaned.")
        await chat_in(manager, TWELVES, TWELVE, "The orchard needs pruning before the frost.")
        await manager.store.save_memory(
            memory_of(TOOLS, GUILD, "Alice likes pizza on Friday.", fact="Alice likes pizza.")
        )
        await manager.store.save_memory(
            memory_of(ONES, ONE, "The lamp of the lighthouse.", fact="Lamp cleaning is due.")
        )
        await manager.store.save_memory(
            memory_of(TWELVES, TWELVE, "Orchard pruning.", fact="Quince trees need pruning.")
        )
    return seeded


# --- conversations ----------------------------------------------------------------------------


async def test_list_reads_redis_with_the_fields_of_the_files(seeded: Seeded) -> None:
    on_redis, on_files, table = await asyncio.gather(
        seeded.cli("conversations", "list", "--json"),
        run_cli(
            "conversations",
            "list",
            "--json",
            cwd=seeded.tmp,
            env=cli_env(seeded.tmp, ECHO_DATA_DIR=str(seeded.json_data)),
        ),
        seeded.cli("conversations", "list"),
    )
    assert on_redis.code == 0 and on_redis.stderr == "", on_redis
    rows = json.loads(on_redis.stdout)
    assert [r["thread_id"] for r in rows] == [NEWEST, TWELVES, ONES, TOOLS, OLDEST]
    assert [r["messages"] for r in rows] == [1, 1, 1, 6, 2]
    by_thread = {r["thread_id"]: r for r in rows}
    assert by_thread[TOOLS]["location"] == f"redis {seeded.key(GUILD, TOOLS)}"
    assert by_thread[TWELVES]["location"] == f"redis {seeded.key(TWELVE, TWELVES)}"
    assert all("file" not in r for r in rows)  # "location" alone says where

    # Every other field is what the same conversations give as JSON files.
    files = {r["thread_id"]: r for r in json.loads(on_files.stdout)}
    assert set(files) == {NEWEST, TOOLS, OLDEST}
    for thread, row in files.items():
        assert row["location"] == str(next(seeded.json_data.rglob(f"*_{thread}.json")))
        mine = {k: v for k, v in by_thread[thread].items() if k != "location"}
        theirs = {k: v for k, v in row.items() if k != "location"}
        if thread == TOOLS:  # ended when each copy was written: the moment differs
            assert mine.pop("ended_at") and theirs.pop("ended_at")
            del mine["updated_at"], theirs["updated_at"]
        assert mine == theirs, thread
    assert by_thread[TOOLS]["requester_name"] == "alice"
    assert by_thread[TOOLS]["summary"].startswith("Alice asked what was said about pizza")

    assert table.code == 0, table
    assert [line.split()[0] for line in table.stdout.splitlines()[1:]] == [
        NEWEST, TWELVES, ONES, TOOLS, OLDEST
    ]  # fmt: skip
    assert "[ended] Alice asked" in table.stdout
    # A reader takes no spool: nothing is written into the data folder.
    assert not (seeded.tmp / "data").exists()


async def test_a_guild_never_sees_another_guilds_conversations(seeded: Seeded) -> None:
    one, twelve, guild, empty = await asyncio.gather(
        seeded.cli("conversations", "list", "--json", "--guild", ONE),
        seeded.cli("conversations", "list", "--json", "--guild", TWELVE),
        seeded.cli("conversations", "list", "--json", "--guild", GUILD),
        seeded.cli("conversations", "list", "--guild", "999"),
    )
    assert [(r["thread_id"], r["guild_id"]) for r in json.loads(one.stdout)] == [(ONES, ONE)]
    assert [(r["thread_id"], r["guild_id"]) for r in json.loads(twelve.stdout)] == [
        (TWELVES, TWELVE)
    ]
    assert [r["thread_id"] for r in json.loads(guild.stdout)] == [NEWEST, TOOLS]
    assert empty.code == 0
    assert empty.stdout == f"No conversations of guild 999 in {seeded.where}.\n"


async def test_show_is_the_transcript_with_the_redis_location(seeded: Seeded) -> None:
    shown, from_files = await asyncio.gather(
        seeded.cli("conversations", "show", TOOLS),
        run_cli(
            "conversations",
            "show",
            TOOLS,
            cwd=seeded.tmp,
            env=cli_env(seeded.tmp, ECHO_DATA_DIR=str(seeded.json_data)),
        ),
    )
    assert shown.code == 0 and shown.stderr == "", shown
    head, body = shown.stdout.split("\n\n", 1)
    assert head.splitlines()[0] == f"Conversation {TOOLS}"
    assert f"  location:     redis {seeded.key(GUILD, TOOLS)}" in head.splitlines()
    assert f"participants: alice ({ALICE}), bob ({BOB})" in head
    assert "file:" not in head
    # The messages read exactly as they do from the file.
    assert body == from_files.stdout.split("\n\n", 1)[1]
    assert body.splitlines()[0] == (
        f"[2026-11-20 10:00:01] alice ({ALICE}): Hello, Echo! What did we say about pizza?"
    )
    assert len(body.splitlines()) == 9


async def test_export_is_the_json_file_the_conversation_would_have(seeded: Seeded) -> None:
    target = seeded.tmp / "out.json"
    to_stdout, to_file, newest = await asyncio.gather(
        seeded.cli("conversations", "export", TOOLS),
        seeded.cli("conversations", "export", TOOLS, "-o", str(target)),
        seeded.cli("conversations", "export", NEWEST),
    )
    assert to_stdout.code == 0 and to_stdout.stderr == "", to_stdout
    async with seeded.store() as store:
        stored = await store.load(TOOLS)
    assert stored is not None
    assert to_stdout.stdout.encode() == await render(stored)
    exported = await parse(to_stdout.stdout.encode())
    assert exported.to_json() == stored.to_json()
    assert [m.message_type.value for m in exported.history] == [
        "chat", "thinking", "tool_call", "tool_call_response", "chat", "chat"
    ]  # fmt: skip

    assert to_file.code == 0, to_file
    assert to_file.stdout == f"Exported conversation {TOOLS} (6 messages) to {target}\n"
    assert target.read_bytes() == to_stdout.stdout.encode()

    # Byte for byte what the JSON store wrote for the same conversation.
    [json_file] = seeded.json_data.glob(f"guilds/*/*_{NEWEST}.json")
    assert newest.stdout.encode() == json_file.read_bytes()


async def test_an_unknown_conversation_names_the_store(seeded: Seeded) -> None:
    show, export = await asyncio.gather(
        seeded.cli("conversations", "show", "42"),
        seeded.cli("conversations", "export", "42"),
    )
    for result in (show, export):
        assert result.code == 1 and result.stdout == ""
        assert result.error_line == f"echo: no conversation 42 in {seeded.where}"


async def test_a_conversation_that_does_not_parse_is_reported(seeded: Seeded) -> None:
    async with seeded.store() as store:
        await store.redis.hset(seeded.key(GUILD, NEWEST), "updated_at", json.dumps("not a date"))
    listed, shown = await asyncio.gather(
        seeded.cli("conversations", "list", "--json"),
        seeded.cli("conversations", "show", NEWEST),
    )
    assert listed.code == 0, listed
    rows = {r["thread_id"]: r for r in json.loads(listed.stdout)}
    assert rows[NEWEST]["messages"] is None
    assert rows[NEWEST]["error"] == f"redis {seeded.key(GUILD, NEWEST)} does not parse"
    assert rows[TOOLS]["messages"] == 6  # the others are listed as ever
    assert f"conversation {NEWEST} in Redis" in listed.stderr  # the store's reason, logged
    assert shown.code == 1 and shown.stdout == ""
    assert shown.stderr.strip().splitlines()[-1] == (
        f"echo: conversation {NEWEST} in {seeded.where} does not parse"
    )


# --- memories ---------------------------------------------------------------------------------


async def test_memories_list_and_show_read_redis(seeded: Seeded) -> None:
    everything, one, shown, as_json, missing, none = await asyncio.gather(
        seeded.cli("memories", "list", "--json"),
        seeded.cli("memories", "list", "--json", "--guild", ONE),
        seeded.cli("memories", "show", TWELVES),
        seeded.cli("memories", "show", TOOLS, "--json"),
        seeded.cli("memories", "show", "999"),
        seeded.cli("memories", "list", "--guild", "999"),
    )
    assert everything.code == 0 and everything.stderr == "", everything
    assert {(r["thread_id"], r["guild_id"]) for r in json.loads(everything.stdout)} == {
        (TOOLS, GUILD),
        (ONES, ONE),
        (TWELVES, TWELVE),
    }
    assert [r["thread_id"] for r in json.loads(one.stdout)] == [ONES]  # never guild 12's
    assert shown.code == 0, shown
    assert f"Memory of conversation {TWELVES} (guild {TWELVE})" in shown.stdout
    assert "Quince trees need pruning." in shown.stdout
    assert json.loads(as_json.stdout)["memory_data"]["summary"] == "Alice likes pizza on Friday."
    assert missing.code == 1
    assert missing.error_line == f"echo: no memory of conversation 999 in {seeded.where}"
    assert none.code == 0 and none.stdout == f"No memories in {seeded.where} yet.\n"


async def search(seeded: Seeded, guild: str, *queries: str) -> list[list[str]]:
    """The thread ids each query finds in ``guild``, best first."""
    result = await seeded.cli(
        "memories", "search", "--guild", guild, "--json", "-", stdin="\n".join(queries).encode()
    )
    assert result.code == 0, result
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["query"] for a in answers] == list(queries)
    for answer in answers:
        assert all(hit["guild_id"] == guild for hit in answer["results"])
    return [[hit["thread_id"] for hit in answer["results"]] for answer in answers]


async def test_search_within_one_guild_and_sees_what_other_processes_wrote(
    seeded: Seeded,
) -> None:
    assert await search(seeded, ONE, "lighthouse lamp", "orchard pruning quince") == [[ONES], []]
    assert await search(seeded, TWELVE, "quince", "lighthouse") == [[TWELVES], []]
    # Memory passages are indexed too: "Friday" is a decision of TOOLS's memory.
    assert (await search(seeded, GUILD, "pizza"))[0][0] == TOOLS

    # Another process (a memory worker, a bot) writes while the index is a day old: a memory
    # of a conversation that itself did not change, a new conversation, a conversation
    # forgotten with its memory.
    async with InMemoryConversationManager(store=seeded.store()) as manager:
        await manager.store.save_memory(
            memory_of(ONES, ONE, "The keeper ordered a zeppelin.", fact="A zeppelin is coming.")
        )
        await chat_in(manager, "1310000000000000603", ONE, "Who repaints the foghorn?")
        assert await manager.store.delete(TWELVES)
        assert await manager.store.delete_memory(TWELVE, TWELVES)
    assert await search(seeded, ONE, "zeppelin", "foghorn") == [
        [ONES],
        ["1310000000000000603"],
    ]
    assert await search(seeded, TWELVE, "quince orchard") == [[]]


async def test_memories_generate_on_redis(seeded: Seeded) -> None:
    generated = await seeded.cli("memories", "generate", "--guild", GUILD, "--idle-seconds", "0")
    assert generated.code == 0, generated
    assert generated.stdout.strip().endswith("generated, 0 failed")
    assert "memories 1/1" in generated.stderr or "memories 2/2" in generated.stderr
    async with seeded.store() as store:
        made = {r.thread_id: r for r in await store.list_memories(GUILD)}
        assert set(made) == {TOOLS, NEWEST}
        assert made[NEWEST].generator == "extractive"
    assert not list((seeded.tmp / "data").glob("guilds/*/*.json"))  # nothing went to files
    shown = await seeded.cli("memories", "show", NEWEST)
    assert shown.code == 0 and "Morning!" in shown.stdout


# --- chat -------------------------------------------------------------------------------------


async def test_chat_records_in_redis_and_says_so(seeded: Seeded) -> None:
    result = await seeded.cli("chat", "--name", "Ann", stdin=b"hello there\n/save\n/quit\n")
    assert result.code == 0, result
    assert f"Recording in {seeded.where} under guild 0 (local) as Ann" in result.stderr
    out = result.stdout.splitlines()
    assert out[-1] == f"Saved in {seeded.where} (2 messages)."
    assert f"saved in {seeded.where}\n" in result.stderr
    assert not list((seeded.tmp / "data").glob("guilds/**/*.json"))

    async with seeded.store() as store:
        [ref] = await store.list_conversations("0")
        conversation = await store.load(ref.thread_id)
    assert isinstance(conversation, Conversation)
    assert len(conversation.history) == 2
    assert conversation.history[0].message_content == "hello there"
    assert f"Conversation {ref.thread_id} saved in" in result.stderr
    shown = await seeded.cli("conversations", "show", ref.thread_id)
    assert f"Ann ({conversation.requester}): hello there" in shown.stdout


# --- Redis away -------------------------------------------------------------------------------


async def test_an_unreachable_redis_is_one_line_naming_it(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    env = cli_env(tmp_path, ECHO_STORE="redis", REDIS_URL=url)
    commands = [
        ("conversations", "list"),
        ("conversations", "show", TOOLS),
        ("conversations", "export", TOOLS),
        ("memories", "list"),
        ("memories", "show", TOOLS),
        ("memories", "search", "--guild", GUILD, "pizza"),
    ]

    async def timed(command: tuple[str, ...]) -> tuple[Result, float]:
        started = time.monotonic()
        result = await run_cli(*command, cwd=tmp_path, env=env)
        return result, time.monotonic() - started

    results = await asyncio.gather(*(timed(c) for c in commands))
    for command, (result, elapsed) in zip(commands, results, strict=True):
        assert result.code == 1, (command, result)
        assert result.error_line.startswith(f"echo: Redis at {url} is unreachable"), command
        assert result.stdout == "", command
        # Gives up after about five seconds (the bot itself waits for Redis for ever).
        assert elapsed < 15, (command, elapsed)
