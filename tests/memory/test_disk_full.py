"""A write that fails (here: the file-size limit, as a full disk would) loses nothing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from memory import Conversation, JsonFileStore

# Runs in a child: RLIMIT_FSIZE makes the kernel refuse writes past 64 KiB with EFBIG, the
# same path through our code as ENOSPC, without filling the test machine's disk.
CHILD = textwrap.dedent(
    """
    import asyncio, json, os, resource, signal, sys
    from memory import InMemoryConversationManager, JournalError, JsonFileStore, Message

    async def main(data):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        async with InMemoryConversationManager(store=JsonFileStore(data), idle_time=300) as m:
            await m.create_conversation(thread_id="11", guild_id="22", requester="33",
                                        channel_id="44")
            resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
            accepted, error = 0, None
            for n in range(1000):
                try:
                    await m.add_message_to_conversation(
                        "11", Message(message_type="chat", message_content=f"{n}:" + "x" * 900))
                except JournalError as exc:
                    error = str(exc)
                    break
                accepted += 1
            in_memory = len(m.get_conversation("11").history)
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            await m.add_message_to_conversation(
                "11", Message(message_type="chat", message_content="after"))
            print(json.dumps({"accepted": accepted, "in_memory": in_memory, "error": error}))
            sys.stdout.flush()
            # Die without saving: the parent must rebuild everything from the journal.
            await m.store.journal.sync()
            os._exit(0)

    asyncio.run(main(sys.argv[1]))
    """
)


async def recover(data: Path) -> Conversation:
    async with JsonFileStore(data) as store:
        conversation = await store.load("11")
    assert conversation is not None
    return conversation


def test_a_failed_journal_write_is_reported_and_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["error"] and "journal write failed" in report["error"]
    assert 10 < report["accepted"] < 1000
    # The failed message never reached memory...
    assert report["in_memory"] == report["accepted"]
    # ...and once space is back, recording goes on without a glued or half record: the
    # journal alone (the child died without saving) replays to exactly what was accepted.
    assert list((data / "guilds").glob("*/*.json")) == []
    conversation = asyncio.run(recover(data))
    contents = [m.message_content for m in conversation.history]
    assert contents[-1] == "after"
    assert [c.split(":")[0] for c in contents[:-1]] == [str(n) for n in range(report["accepted"])]
