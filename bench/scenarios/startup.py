"""Scenario 6, start-up: how long until the bot's store is ready with 100,000 conversation
files on disk and a journal of 10,000 messages to replay.

* Data: 100,000 conversation files in 10 guilds (three short messages each: the open reads
  only their names), and the journal a killed bot left: 1,000 conversations with 10 messages
  each that were never saved (half of them new, half of them continuing a file on disk; 40-60
  words per message, ``_workload``), written by the real ``JsonFileStore``.
* Echo: a fresh process opens ``JsonFileStore`` (journal ``everysec``, the bot's default) and
  starts ``InMemoryConversationManager``: the scan of the file names, then the journal replay,
  which saves the 1,000 conversations (each save durable: fsync, checkpoint, rename) before the
  old journal goes. "Ready" is when ``start()`` returns. Timed in the process (from before the
  store is made) and from the process's spawn (interpreter and imports included).
* The same with no journal to replay: the scan alone.
* Floor: ``os.scandir`` over the same folders (the names, nothing else), in the same process.

Every run starts from the same bytes: the journal and the files it touches are put back.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.framework import Row, Scenario, Target, scratch_dir

NAME = "startup"
TITLE = "Start-up: store ready with 100,000 files and a 10,000-message journal"

ROOT = Path(__file__).resolve().parents[2]
GUILDS = 10
GOAL_S = 2.0
_THREAD = 1_300_000_000_000_000_000
_NEW_THREAD = 1_400_000_000_000_000_000
_GUILD = 910_000_000_000_000_000
_USER = 520_000_000_000_000_000
# Sentinels in the template file, replaced per file.
_T, _G, _R = "111111111111111111", "222222222222222222", "333333333333333333"


def _guild(i: int) -> str:
    return str(_GUILD + i % GUILDS)


# --- child processes ---------------------------------------------------------------------------


def _continued(conversations: int) -> set[int]:
    """The files the journal continues: every other journalled conversation."""
    return {j * 97 for j in range(0, conversations, 2)}


def _files(folder: Path, count: int, conversations: int) -> None:
    """``count`` small conversation files from one rendered template. Only the names are read
    by the open, so all but the files the journal continues are hard links to one file per
    guild (a link costs the disk half of what a new file does; the setup is not measured)."""
    from datetime import timedelta

    from bench.scenarios import _workload as w
    from memory import Conversation, Message, MessageType

    template = Conversation(
        thread_id=_T,
        channel_id=w.CHANNEL_ID,
        guild_id=_G,
        requester=_R,
        created_at=w.START,
        updated_at=w.START,
    )
    for k in range(3):
        template.add_message(
            Message(
                created_at=w.START + timedelta(seconds=k),
                message_type=MessageType.CHAT,
                message_content=f"an earlier message, number {k}",
                meta={"requester": _R, "message_id": f"{_T}{k}"},
            )
        )
    text = template.to_json()
    name = template.filename
    continued = _continued(conversations)
    shared = folder / "link-sources"
    shared.mkdir(parents=True)
    for g in range(GUILDS):
        (folder / "guilds" / _guild(g)).mkdir(parents=True, exist_ok=True)
        source = shared / f"{_guild(g)}.json"
        source.write_bytes(text.replace(_G, _guild(g)).encode())
    for i in range(count):
        thread, guild, user = str(_THREAD + i), _guild(i), str(_USER + i % 1000)
        path = folder / "guilds" / guild / name.replace(_T, thread).replace(_G, guild)
        path = path.with_name(path.name.replace(_R, user))
        if i in continued:
            body = text.replace(_T, thread).replace(_G, guild).replace(_R, user)
            path.write_bytes(body.encode())
        else:
            os.link(shared / f"{guild}.json", path)


async def _journal(folder: Path, count: int, conversations: int) -> list[str]:
    """What a killed bot left: ``count`` messages of ``conversations`` never saved. Returns the
    files the replay will write (to put them back between runs)."""
    from bench.scenarios import _workload as w
    from memory import Conversation, JsonFileStore
    from memory.records.mutations import Append, Create

    per = count // conversations
    touched: list[str] = []
    async with JsonFileStore(folder, fsync="no") as store:
        refs = {r.thread_id: r for r in await store.list_conversations()}
        continued = _continued(conversations)
        for j in range(conversations):
            if j * 97 in continued:  # continues a conversation on disk
                thread = str(_THREAD + j * 97)
                touched.append(refs[thread].location)
            else:  # started after the last save
                thread = str(_NEW_THREAD + j)
                conversation = Conversation(
                    thread_id=thread,
                    channel_id=w.CHANNEL_ID,
                    guild_id=_guild(j),
                    requester=w.requester(j),
                    created_at=w.START,
                    updated_at=w.START,
                )
                await store.record(Create(conversation))
                touched.append(str(folder / "guilds" / _guild(j) / conversation.filename))
            for message in w.conversation_messages(j, per, salt=3):
                await store.record(Append(thread, message))
        # Closing the store closes the journal; nothing is saved: that is the crash.
    return touched


async def _open(folder: Path, fsync: str) -> dict[str, Any]:
    from memory import InMemoryConversationManager, JsonFileStore

    started = time.perf_counter()
    store = JsonFileStore(folder, fsync=fsync)
    manager = InMemoryConversationManager(store=store)
    await manager.start()
    ready = time.perf_counter()
    ready_at = time.time()
    conversations = len(await store.list_conversations())
    await manager.shutdown()
    return {"ready_s": ready - started, "ready_at": ready_at, "conversations": conversations}


def _scandir(folder: Path) -> dict[str, Any]:
    started = time.perf_counter()
    names = 0
    for guild in os.scandir(folder / "guilds"):
        for entry in os.scandir(guild.path):
            names += entry.name.endswith(".json")
    return {"scan_s": time.perf_counter() - started, "names": names}


def _child(argv: list[str]) -> None:
    command, folder = argv[0], Path(argv[1])
    if command == "files":
        _files(folder, int(argv[2]), int(argv[3]))
        result: dict[str, Any] = {}
    elif command == "journal":
        result = {"touched": asyncio.run(_journal(folder, int(argv[2]), int(argv[3])))}
    elif command == "open":
        result = asyncio.run(_open(folder, argv[2]))
    else:
        result = _scandir(folder)
    print(json.dumps(result))


def _spawn(*args: object) -> tuple[dict[str, Any], float]:
    spawned_at = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "bench.scenarios.startup", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"startup child {args[0]} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), spawned_at


# --- the scenario ------------------------------------------------------------------------------


def run(quick: bool) -> Scenario:
    files, messages, conversations = 100_000, 10_000, 1_000
    runs = 2 if quick else 5
    more = 1 if quick else 3  # runs of the rows that explain the first
    ready: list[float] = []
    from_spawn: list[float] = []
    no_fsync: list[float] = []
    scan_only: list[float] = []
    floor: list[float] = []
    with scratch_dir("startup") as work:
        data = work / "data"
        _spawn("files", data, files, conversations)
        got, _ = _spawn("journal", data, messages, conversations)
        touched = [Path(p) for p in got["touched"]]
        # The bytes to put back before each run.
        journal = data / "journal"
        saved_journal = work / "journal.saved"
        shutil.copytree(journal, saved_journal)
        saved_files = {p: p.read_bytes() for p in touched if p.exists()}

        def crashed() -> None:
            shutil.rmtree(journal)
            shutil.copytree(saved_journal, journal)
            for path in touched:
                if path in saved_files:
                    path.write_bytes(saved_files[path])
                else:
                    path.unlink(missing_ok=True)

        # The quick run leaves out the run without fsync (it only explains the first row).
        for run_number in range(runs + (0 if quick else more)):
            crashed()
            fsync = "everysec" if run_number < runs else "no"
            got, spawned_at = _spawn("open", data, fsync)
            if got["conversations"] != files + conversations // 2:
                raise RuntimeError(f"{got['conversations']} conversations after the replay")
            if fsync == "everysec":
                ready.append(got["ready_s"])
                from_spawn.append(got["ready_at"] - spawned_at)
            else:
                no_fsync.append(got["ready_s"])
        # The journal is replayed now: the same open with nothing to replay, and the floor.
        for _ in range(more):
            got, _ = _spawn("open", data, "everysec")
            scan_only.append(got["ready_s"])
            got, _ = _spawn("scandir", data)
            floor.append(got["scan_s"])
    group = f"{files:,} files"
    spawned = f"{files:,} files, timed from the process spawn"
    journal_text = f"+ a journal of {messages:,} messages in {conversations:,} conversations"
    rows = [
        Row(f"Echo: store ready, {journal_text}", "s", ready, "echo", False, group),
        Row(f"Echo: store ready, {journal_text}", "s", from_spawn, "echo", False, spawned),
    ]
    if no_fsync:
        subject = f"Echo: store ready, {journal_text}, journal fsync no"
        rows.append(Row(subject, "s", no_fsync, "echo", False, group))
    rows += [
        Row("Echo: store ready, no journal to replay", "s", scan_only, "echo", False, group),
        Row("floor: os.scandir of the names", "s", floor, "ceiling", False, group),
    ]
    targets = [
        Target(
            f"store ready with {files:,} files and a {messages:,}-message journal",
            statistics.median(ready),
            GOAL_S,
            higher_is_better=False,
            unit=" s",
        )
    ]
    notes = [
        "the replay saves each recovered conversation durably (file written and fsynced, "
        "journal checkpoint, rename, fsync of the folder) before the old journal is deleted; "
        "in bulk: 16 threads write, one journal sync for all the checkpoints, one fsync per "
        "folder",
        "the spawn row includes starting Python and importing Echo's modules",
    ]
    return Scenario(NAME, TITLE, rows, targets, notes)


if __name__ == "__main__":
    _child(sys.argv[1:])
