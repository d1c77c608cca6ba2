"""The conversation commands (``list``, ``show``, ``export``) on ``ECHO_STORE=redis``.

Conversations and memories are written into a private key prefix of the shared Redis with
the memory library (``RedisStore`` under an ``InMemoryConversationManager``, as the bot
writes them); the real ``python -m bot`` reads them with ``ECHO_STORE=redis``. The same
conversations are also written as JSON files, so that what the commands print on Redis can
be compared with what they print on files.
"""

from __future__ import annotations

import asyncio
import json

from memory.records import parse, render
from tests.cli.helpers import (
    ALICE,
    BOB,
    GUILD,
    NEWEST,
    OLDEST,
    TOOLS,
    cli_env,
    run_cli,
)

from .seeding import ONE, ONES, TWELVE, TWELVES, Seeded

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
