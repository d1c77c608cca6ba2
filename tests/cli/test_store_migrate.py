"""``python -m bot store migrate``, run as an operator runs it, against a real Redis.

The JSON side is seeded with the memory library as the bot writes it (including a journal a
"crashed" bot left behind); the Redis side is read back with ``RedisStore`` itself, and the
way back is compared file by file with the originals.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

from memory import Conversation, JsonFileStore, Message, MessageType
from memory.records.memories import Fact, MemoryData, MemoryRecord
from memory.records.mutations import Append, Create
from tests.redis_support import PrivateRedis, free_port

from .helpers import (
    ALICE,
    BOB,
    GUILD,
    NEWEST,
    OLDEST,
    OTHER_GUILD,
    T0,
    TOOLS,
    cli_env,
    run_cli,
    write_conversations,
)

# Recorded to the journal only, as by a bot killed before it saved the conversation.
JOURNALED = "1310000000000000400"
# Saved with a top-level key this Echo does not know (a newer Echo's file): it must survive.
FUTURE = "1310000000000000500"


def memory_of(thread: str, guild: str, requester: str, text: str) -> MemoryRecord:
    return MemoryRecord(
        thread_id=thread,
        guild_id=guild,
        requester=requester,
        participants=[requester],
        memory_data=MemoryData(
            summary=text,
            topics=["pizza"],
            facts=[Fact(text=text, about=requester, source_message_ids=["1310000000000000101"])],
            decisions=["Friday"],
        ),
        created_at=T0 + timedelta(hours=3),
        updated_at=T0 + timedelta(hours=3),
        source_updated_at=T0 + timedelta(minutes=5),
        conversation_created_at=T0,
    )


async def seed(data: Path) -> dict[str, str]:
    """Conversations of two guilds, memories, an unknown key and a crashed bot's journal.

    Returns what the migration must carry: each conversation's JSON by thread id.
    """
    await write_conversations(data)  # TOOLS (every message type, summary, ended), NEWEST, OLDEST
    journaled = Conversation(
        thread_id=JOURNALED,
        channel_id="1310000000000000044",
        guild_id=GUILD,
        guild_name="Test Guild",
        requester=BOB,
        created_at=T0 + timedelta(days=2),
        updated_at=T0 + timedelta(days=2),
    )
    unsaved = Message(
        created_at=T0 + timedelta(days=2, seconds=1),
        message_type=MessageType.CHAT,
        message_content="Recorded, never saved: the bot died.",
        requester=BOB,
        message_id="1310000000000000401",
    )
    async with JsonFileStore(data) as store:
        await store.save_memory(memory_of(TOOLS, GUILD, ALICE, "Alice likes pizza on Friday."))
        await store.save_memory(memory_of(OLDEST, OTHER_GUILD, ALICE, "Alice asked who is here."))
        future = Conversation.model_validate(
            {
                "thread_id": FUTURE,
                "channel_id": "1310000000000000055",
                "guild_id": OTHER_GUILD,
                "requester": BOB,
                "created_at": T0.isoformat(),
                "updated_at": T0.isoformat(),
                "future_key": {"kept": [1, 2, 3]},
            }
        )
        await store.put(future)
        await store.record(Create(journaled))
        await store.record(Append(JOURNALED, unsaved))
        # Closed without saving JOURNALED: its only record is the journal.

    async with JsonFileStore(data, read_only=True) as reader:  # no replay: the files alone
        expected = {
            ref.thread_id: (await reader.load(ref.thread_id))
            for ref in await reader.list_conversations()
        }
    assert JOURNALED not in expected
    rebuilt = Create(journaled).apply(None)
    rebuilt.add_message(unsaved)
    expected[JOURNALED] = rebuilt
    return {thread: conversation.to_json() for thread, conversation in expected.items()}


async def redis_contents(url: str, prefix: str) -> tuple[dict[str, str], dict[str, str]]:
    """Every conversation and memory under ``prefix``, read with the Redis store itself."""
    from memory.stores.redis.store import RedisStore

    conversations: dict[str, str] = {}
    memories: dict[str, str] = {}
    async with RedisStore(url, prefix=prefix, wait_for_redis=5) as store:
        for guild in await store.list_guilds():
            for ref in await store.list_conversations(guild):
                assert ref.guild_id == guild
                conversation = await store.load(ref.thread_id)
                assert conversation is not None, ref
                conversations[ref.thread_id] = conversation.to_json()
            for record in await store.list_memories(guild):
                memories[record.thread_id] = record.to_json()
    return conversations, memories


def files_under(folder: Path) -> dict[str, object]:
    """Every conversation and memory file below ``guilds/``, parsed, by relative path."""
    return {
        str(path.relative_to(folder)): json.loads(path.read_text())
        for path in sorted((folder / "guilds").rglob("*.json"))
    }


async def test_json_to_redis_and_back_moves_everything_once(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    data = tmp_path / "data"
    expected = await seed(data)
    env = cli_env(tmp_path, ECHO_DATA_DIR=str(data), REDIS_URL=redis_url)
    to_redis = ("store", "migrate", "--from", "json", "--to", "redis", "--prefix", redis_prefix)

    first = await run_cli(*to_redis, cwd=tmp_path, env=env)
    assert first.code == 0, first
    assert first.stdout.strip() == (
        "conversations: 5 copied, 0 already there, 0 unreadable; "
        "memories: 2 copied, 0 already there, 0 unreadable"
    )
    assert "conversations 5/5 [" in first.stderr and "memories 2/2 [" in first.stderr
    assert "Traceback" not in first.stderr

    conversations, memories = await redis_contents(redis_url, redis_prefix)
    assert conversations == expected  # every message, header field, summary, end, unknown key
    tools = Conversation.from_json(conversations[TOOLS])
    assert tools.ended and tools.summary.startswith("Alice asked")
    assert [m.message_type for m in tools.history] == [
        "chat",
        "thinking",
        "tool_call",
        "tool_call_response",
        "chat",
        "chat",
    ]
    assert json.loads(conversations[FUTURE])["future_key"] == {"kept": [1, 2, 3]}
    assert "the bot died" in conversations[JOURNALED]
    async with JsonFileStore(data, read_only=True) as reader:
        originals = {
            r.thread_id: r.to_json()
            for guild in (GUILD, OTHER_GUILD)
            for r in await reader.list_memories(guild)
        }
    assert memories == originals and set(memories) == {TOOLS, OLDEST}

    again = await run_cli(*to_redis, cwd=tmp_path, env=env)
    assert again.code == 0, again
    assert again.stdout.strip() == (
        "conversations: 0 copied, 5 already there, 0 unreadable; "
        "memories: 0 copied, 2 already there, 0 unreadable"
    )

    back = tmp_path / "back"
    returned = await run_cli(
        "store",
        "migrate",
        "--from",
        "redis",
        "--to",
        "json",
        "--prefix",
        redis_prefix,
        "--data-dir",
        str(back),
        "--json",
        cwd=tmp_path,
        env=env,
    )
    assert returned.code == 0, returned
    report = json.loads(returned.stdout)
    assert report["from"] == "redis" and report["to"] == "json" and report["complete"]
    assert report["conversations"]["copied"] == 5 and report["memories"]["copied"] == 2
    # The same files under the same names, with the same content.
    assert files_under(back) == files_under(data)
    assert len(files_under(back)) == 7


async def test_the_source_is_the_truth_on_a_second_run(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    from memory.stores.redis.store import RedisStore

    data = tmp_path / "data"
    expected = await seed(data)
    env = cli_env(tmp_path, ECHO_DATA_DIR=str(data), REDIS_URL=redis_url)
    to_redis = ("store", "migrate", "--from", "json", "--to", "redis", "--prefix", redis_prefix)
    assert (await run_cli(*to_redis, cwd=tmp_path, env=env)).code == 0

    # The JSON side moves on (a new message in NEWEST), the Redis side drifts (OLDEST edited
    # there, a memory changed there): a second run carries exactly those three back.
    async with JsonFileStore(data) as store:
        newest = await store.load(NEWEST)
        assert newest is not None
        newest.add_message(
            Message(
                created_at=T0 + timedelta(days=3),
                message_type=MessageType.CHAT,
                message_content="One more thing.",
                requester=BOB,
                message_id="1310000000000000202",
            )
        )
        await store.save(newest)
        expected[NEWEST] = newest.to_json()
    async with RedisStore(redis_url, prefix=redis_prefix, wait_for_redis=5) as redis_store:
        oldest = await redis_store.load(OLDEST)
        assert oldest is not None
        oldest.history.clear()
        oldest.summary = "not what the files say"
        await redis_store.put(oldest)
        drifted = memory_of(TOOLS, GUILD, ALICE, "Something else entirely.")
        await redis_store.save_memory(drifted)

    second = await run_cli(*to_redis, "--json", cwd=tmp_path, env=env)
    assert second.code == 0, second
    report = json.loads(second.stdout)
    assert report["conversations"] == {
        "total": 5,
        "copied": 2,
        "replaced": 2,
        "already_there": 3,
        "unreadable": [],
        "failed": [],
    }
    assert report["memories"]["replaced"] == 1 and report["memories"]["already_there"] == 1
    conversations, memories = await redis_contents(redis_url, redis_prefix)
    assert conversations == expected
    assert "Alice likes pizza" in memories[TOOLS]


async def test_unreadable_records_are_named_and_the_rest_still_moves(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    data = tmp_path / "data"
    expected = await seed(data)
    broken_thread = "1310000000000000900"
    broken = (
        data
        / "guilds"
        / GUILD
        / f"2026-11-20_conversation-with-{ALICE}-in-{GUILD}_{broken_thread}.json"
    )
    broken.write_text('{"thread_id": "1310000000000000900", "history": [')
    broken_memory = data / "guilds" / GUILD / "memories" / f"{NEWEST}.json"
    broken_memory.write_text("{not json")
    env = cli_env(tmp_path, ECHO_DATA_DIR=str(data), REDIS_URL=redis_url)

    result = await run_cli(
        "store",
        "migrate",
        "--from",
        "json",
        "--to",
        "redis",
        "--prefix",
        redis_prefix,
        cwd=tmp_path,
        env=env,
    )
    assert result.code == 1, result
    assert result.stdout.strip() == (
        "conversations: 5 copied, 0 already there, 1 unreadable; "
        "memories: 2 copied, 0 already there, 1 unreadable"
    )
    assert f"conversation {broken_thread} (guild {GUILD}): unreadable" in result.stderr
    assert f"memory {NEWEST} (guild {GUILD}): unreadable" in result.stderr
    assert "Traceback" not in result.stderr
    conversations, _ = await redis_contents(redis_url, redis_prefix)
    assert conversations == expected
    # The source store set the broken files aside, as the bot would; nothing was deleted.
    assert broken.with_name(broken.name + ".corrupt").exists()
    assert broken_memory.with_name(broken_memory.name + ".corrupt").exists()


async def test_bad_command_lines_exit_2_with_one_line(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    cases = {
        ("--from", "json", "--to", "json"): "--from and --to are both json",
        ("--from", "redis", "--to", "redis"): "--from and --to are both redis",
        ("--from", "json"): "the following arguments are required: --to",
        ("--from", "sql", "--to", "json"): "argument --from: invalid choice: 'sql'",
        ("--from", "json", "--to", "redis", "--prefix", "a:b"): "--prefix 'a:b'",
        ("--from", "json", "--to", "redis", "--redis-url", "http://x"): "--redis-url 'http://x'",
        ("--from", "json", "--to", "redis", "--guild", "x1"): "--guild must be a string of digits",
        ("--from", "json", "--to", "redis"): "no Echo data in",  # ECHO_DATA_DIR does not exist
    }
    for args, expected in cases.items():
        result = await run_cli("store", "migrate", *args, cwd=tmp_path, env=env)
        assert result.code == 2, (args, result)
        assert result.error_line.startswith("echo: ") and expected in result.error_line, args
        assert result.stdout == ""


async def test_unreachable_redis_is_one_line_naming_the_url(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await write_conversations(data)
    url = f"redis://127.0.0.1:{free_port()}/0"
    env = cli_env(tmp_path, ECHO_DATA_DIR=str(data), REDIS_URL=url)
    for direction in (("--from", "json", "--to", "redis"), ("--from", "redis", "--to", "json")):
        started = time.monotonic()
        result = await run_cli(
            "store", "migrate", *direction, "--redis-wait", "1", cwd=tmp_path, env=env
        )
        elapsed = time.monotonic() - started
        assert result.code == 1, result
        assert result.error_line.startswith("echo: ") and url in result.error_line
        assert elapsed < 15, elapsed
        assert result.stdout == ""


async def test_a_running_bot_holds_the_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await write_conversations(data)
    env = cli_env(tmp_path, ECHO_DATA_DIR=str(data))
    async with JsonFileStore(data):  # what a running bot holds
        result = await run_cli(
            "store", "migrate", "--from", "json", "--to", "redis", cwd=tmp_path, env=env
        )
    assert result.code == 1, result
    assert "stop the bot first" in result.error_line
    assert str(data / ".lock") in result.error_line


async def test_a_target_that_refuses_writes_stops_the_migration_in_one_line(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    import redis

    data = tmp_path / "data"
    await seed(data)
    client = redis.Redis.from_url(private_redis.url)
    try:
        # Writes need a replica this server does not have: reads and PING still work.
        client.config_set("min-replicas-to-write", 1)
    finally:
        client.close()
    env = cli_env(tmp_path, ECHO_DATA_DIR=str(data), REDIS_URL=private_redis.url)
    result = await run_cli(
        "store", "migrate", "--from", "json", "--to", "redis", cwd=tmp_path, env=env
    )
    assert result.code == 1, result
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("echo: could not write conversation "), result.stderr
    assert "NOREPLICAS" in line and "stopped with conversations: 0 copied" in line
    assert "run it again" in line and "Traceback" not in result.stderr
    assert result.stdout == ""
