"""The memory commands (``list``, ``show``, ``search``, ``generate``), ``chat``, and an
unreachable Redis, on ``ECHO_STORE=redis``.

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
from pathlib import Path

from memory import Conversation, InMemoryConversationManager
from tests.cli.helpers import (
    GUILD,
    NEWEST,
    TOOLS,
    Result,
    cli_env,
    run_cli,
)
from tests.redis_support import free_port

from .seeding import ONE, ONES, TWELVE, TWELVES, Seeded, chat_in, memory_of

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
