"""``python -m bot memories generate|list|show``, as an operator runs them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from memory import InMemoryConversationManager, JsonFileStore, Message

from .helpers import cli_env, run_cli

T0 = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)


async def old_conversations(data: Path) -> None:
    async with InMemoryConversationManager(store=JsonFileStore(data)) as manager:
        for thread, guild, text in (
            ("101", "7", "The ferry to the island leaves at noon on Saturday."),
            ("102", "7", "We agreed to repaint the boathouse green next spring."),
            ("201", "8", "Budget review is due at the end of the quarter."),
        ):
            await manager.create_conversation(
                thread_id=thread, guild_id=guild, requester="33", channel_id="44", created_at=T0
            )
            for n, line in enumerate([text, text.replace("The", "Our")]):
                await manager.add_message_to_conversation(
                    thread,
                    Message(
                        message_type="chat",
                        message_content=line,
                        requester="33",
                        message_id=f"{thread}{n}",
                        created_at=T0,
                        meta={"author_name": "Mia"},
                    ),
                )


async def test_generate_then_list_and_show(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await old_conversations(data)
    env = cli_env(tmp_path, ECHO_DATA_DIR=str(data))
    first = await run_cli("memories", "generate", "--guild", "7", cwd=tmp_path, env=env)
    assert first.code == 0, first
    assert first.stdout.strip() == "2 eligible, 2 generated, 0 failed"
    assert "memories 2/2 [" in first.stderr and "/s, " in first.stderr  # the rate
    assert " left" in first.stderr  # and the time left
    everything = await run_cli("memories", "generate", cwd=tmp_path, env=env)
    assert everything.stdout.strip() == "1 eligible, 1 generated, 0 failed"

    listing = await run_cli("memories", "list", "--guild", "7", "--json", cwd=tmp_path, env=env)
    records = json.loads(listing.stdout)
    assert {r["thread_id"] for r in records} == {"101", "102"}
    assert all(r["guild_id"] == "7" and r["generator"] == "extractive" for r in records)

    shown = await run_cli("memories", "show", "102", cwd=tmp_path, env=env)
    assert shown.code == 0
    assert "boathouse" in shown.stdout and "facts:" in shown.stdout
    # A memory names people by id; the conversation tells the names they wrote under.
    assert "people:     Mia (33)" in shown.stdout, shown.stdout
    assert "(about Mia)" in shown.stdout and "(about 33)" not in shown.stdout


async def test_bad_input_is_one_line(tmp_path: Path) -> None:
    env = cli_env(tmp_path, ECHO_DATA_DIR=str(tmp_path / "data"))
    bad = await run_cli("memories", "show", "12a", cwd=tmp_path, env=env)
    assert bad.code == 2 and bad.error_line.startswith("echo: THREAD_ID must be a string of digits")
    missing = await run_cli("memories", "show", "999", cwd=tmp_path, env=env)
    assert missing.code == 1 and missing.error_line.startswith(
        "echo: no memory of conversation 999"
    )
    guild = await run_cli("memories", "list", "--guild", "x", cwd=tmp_path, env=env)
    assert guild.code == 2
    empty = await run_cli("memories", "list", cwd=tmp_path, env=env)
    assert empty.code == 0 and empty.stdout.startswith("No memories in")
    negative = await run_cli("memories", "generate", "--idle-seconds", "-1", cwd=tmp_path, env=env)
    assert negative.code == 2


async def test_search_ranks_within_one_guild_and_reads_queries_from_stdin(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await old_conversations(data)
    env = cli_env(tmp_path, ECHO_DATA_DIR=str(data))
    await run_cli("memories", "generate", cwd=tmp_path, env=env)
    one = await run_cli(
        "memories", "search", "--guild", "7", "--json", "boathouse paint", cwd=tmp_path, env=env
    )
    assert one.code == 0, one
    [line] = one.stdout.splitlines()
    answer = json.loads(line)
    assert answer["query"] == "boathouse paint"
    assert answer["results"][0]["thread_id"] == "102"
    assert all(r["guild_id"] == "7" for r in answer["results"])
    many = await run_cli(
        "memories",
        "search",
        "--guild",
        "7",
        "--json",
        "-",
        cwd=tmp_path,
        env=env,
        stdin=b"ferry island\r\nbudget quarter review\n",
    )
    first, second = (json.loads(x) for x in many.stdout.splitlines())
    # Each answer names its query as asked, without the line's end ("\r\n" or "\n").
    assert (first["query"], second["query"]) == ("ferry island", "budget quarter review")
    assert first["results"][0]["thread_id"] == "101"
    assert second["results"] == []  # guild 8's conversation is never returned in guild 7
    readable = await run_cli("memories", "search", "--guild", "8", "budget", cwd=tmp_path, env=env)
    assert "201" in readable.stdout
    assert readable.stderr == ""
    # A server with nothing recorded (a mistyped id?) is named on stderr; stdout is as ever.
    elsewhere = await run_cli("memories", "search", "--guild", "9", "budget", cwd=tmp_path, env=env)
    assert elsewhere.code == 0 and "no match" in elsewhere.stdout
    assert f"no conversations of server 9 in {data}" in elsewhere.stderr, elsewhere
    bad = await run_cli("memories", "search", "--guild", "x", "q", cwd=tmp_path, env=env)
    assert bad.code == 2


async def test_an_empty_run_says_why_and_how_to_include_recent_conversations(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    env = cli_env(tmp_path, ECHO_DATA_DIR=str(data))
    nothing = await run_cli("memories", "generate", cwd=tmp_path, env=env)
    assert nothing.code == 0 and nothing.stdout.strip() == "0 eligible, 0 generated, 0 failed"
    assert "no conversations to remember yet" in nothing.stderr

    await old_conversations(data)  # their last message is old, but the files were just saved
    recent = await run_cli(
        "memories", "generate", cwd=tmp_path, env=env | {"ECHO_MEMORY_INACTIVITY_SECONDS": "1e9"}
    )
    assert recent.stdout.strip() == "0 eligible, 0 generated, 0 failed"
    why = recent.stderr.strip()
    assert why.startswith("3 conversation(s) will be eligible once idle for 1e+09 s"), why
    assert "ECHO_MEMORY_INACTIVITY_SECONDS" in why and "--idle-seconds 0" in why

    done = await run_cli("memories", "generate", "--idle-seconds", "0", cwd=tmp_path, env=env)
    assert done.stdout.strip() == "3 eligible, 3 generated, 0 failed"
    again = await run_cli("memories", "generate", "--idle-seconds", "0", cwd=tmp_path, env=env)
    assert "every conversation already has an up-to-date memory" in again.stderr


async def test_a_search_for_stopwords_only_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await old_conversations(data)
    env = cli_env(tmp_path, ECHO_DATA_DIR=str(data))
    shown = await run_cli("memories", "search", "--guild", "7", "the and", cwd=tmp_path, env=env)
    assert shown.code == 0
    assert "stopwords" in shown.stdout and "no match" not in shown.stdout
    as_json = await run_cli(
        "memories", "search", "--guild", "7", "--json", "what", cwd=tmp_path, env=env
    )
    [line] = [json.loads(text) for text in as_json.stdout.splitlines()]
    assert line["results"] == [] and "stopwords" in line["note"]
    words = await run_cli("memories", "search", "--guild", "7", "ferry", cwd=tmp_path, env=env)
    assert "101" in words.stdout and "stopwords" not in words.stdout


async def test_a_when_question_finds_the_conversation_that_told_it_as_it_happened(
    tmp_path: Path,
) -> None:
    # The README's promise: a later conversation names the support group more often (BM25's
    # favourite), the earlier one is where Caroline said she went, "yesterday".
    data = tmp_path / "data"
    talks = {
        "301": (
            datetime(2023, 7, 20, 12, tzinfo=UTC),
            [
                ("Caroline", "The support group has been great; our support group helps me."),
                ("Melanie", "I went hiking last week."),
                ("Caroline", "That group is like family, the support is amazing."),
                ("Melanie", "Lovely."),
            ],
        ),
        "302": (
            datetime(2023, 5, 8, 12, tzinfo=UTC),
            [
                ("Caroline", "I went to a support group yesterday."),
                ("Melanie", "How was it?"),
                ("Caroline", "Powerful, honestly."),
            ],
        ),
    }
    people = {"Caroline": "51", "Melanie": "52"}
    async with InMemoryConversationManager(store=JsonFileStore(data)) as manager:
        for thread, (started, turns) in talks.items():
            await manager.create_conversation(
                thread_id=thread, guild_id="9", requester="51", channel_id="44", created_at=started
            )
            for n, (who, text) in enumerate(turns):
                await manager.add_message_to_conversation(
                    thread,
                    Message(
                        message_type="chat",
                        message_content=text,
                        requester=people[who],
                        message_id=f"{thread}{n}",
                        created_at=started,
                        meta={"author_name": who},
                    ),
                )
    env = cli_env(tmp_path, ECHO_DATA_DIR=str(data))
    await run_cli("memories", "generate", cwd=tmp_path, env=env)
    asked = await run_cli(
        "memories",
        "search",
        "--guild",
        "9",
        "--json",
        "-",
        cwd=tmp_path,
        env=env,
        stdin=b"When did Caroline go to the support group?\n"
        b"What did Caroline say about the support group?\n",
    )
    assert asked.code == 0, asked
    when, what = (json.loads(x) for x in asked.stdout.splitlines())
    assert [r["thread_id"] for r in when["results"]] == ["302", "301"]
    assert [r["thread_id"] for r in what["results"]] == ["301", "302"]
