"""Scenario 4, saving: how long ``save_conversation`` takes for conversations of 1,000 and
10,000 messages, against the I/O floor of writing the same bytes atomically.

* Echo: ``manager.save_conversation`` on a ``JsonFileStore`` (journal ``everysec``; a save is
  always durable): serialise the conversation in slices (the loop runs between them), hash
  it, write a temp file, fsync, journal checkpoint (fsynced), rename, fsync the folder. One
  message is recorded between two saves, so each save writes a changed conversation.
* Ceiling: the very bytes of Echo's file, already rendered, written the same atomic way
  (temp file, fsync, rename, fsync of the folder): what any durable save must pay.
* LangChain ``FileChatMessageHistory`` has no save: it rewrites its whole file on every
  ``add_message`` (reads and parses it, serialises it all again, never fsyncs). Its row is
  one ``add_message`` to a history of that length: what it pays, per message, for the same
  size.
"""

from __future__ import annotations

import asyncio
import os
import time
import warnings
from pathlib import Path

from bench.framework import Row, Scenario, scratch_dir
from bench.scenarios import _workload as w
from memory import InMemoryConversationManager, JsonFileStore, Message

NAME = "save"
TITLE = "Saving a conversation (ms, lower is better)"

SIZES = (1000, 10_000)


async def _echo(folder: Path, messages: list[Message], runs: int) -> tuple[list[float], bytes]:
    history, extra = messages[:-runs], messages[-runs:]
    store = JsonFileStore(folder, fsync="everysec")
    thread = w.thread_id(0)
    times: list[float] = []
    async with InMemoryConversationManager(store=store) as manager:
        await w.create_conversations(manager, [thread])
        for message in history:
            await manager.add_message_to_conversation(thread, message)
        for message in extra:
            await manager.add_message_to_conversation(thread, message)
            start = time.perf_counter()
            await manager.save_conversation(thread)
            times.append((time.perf_counter() - start) * 1000)
        conversation = manager.get_conversation(thread)
        assert conversation is not None and len(conversation.history) == len(messages)
        path = folder / "guilds" / w.GUILD_ID / conversation.filename
        data = path.read_bytes()
    return times, data


def _ceiling(folder: Path, data: bytes, runs: int) -> list[float]:
    times: list[float] = []
    target = folder / "ceiling.json"
    for n in range(runs):
        temp = folder / f".ceiling.{n}.tmp"
        start = time.perf_counter()
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        times.append((time.perf_counter() - start) * 1000)
    return times


def _langchain(folder: Path, messages: list[Message], runs: int) -> list[float] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from langchain_community.chat_message_histories import FileChatMessageHistory
        from langchain_core.messages import AIMessage, HumanMessage, messages_to_dict
    except ImportError:
        return None
    import json

    lc = [
        HumanMessage(m.message_content, name=m.author_name, id=m.message_id)
        if m.requester
        else AIMessage(m.message_content)
        for m in messages
    ]
    path = folder / "history.json"
    # Its own file format, written once directly (adding 10,000 messages one by one would
    # take minutes: that is the point of this row).
    path.write_text(json.dumps(messages_to_dict(lc[:-runs])))
    history = FileChatMessageHistory(str(path))
    times: list[float] = []
    for message in lc[-runs:]:
        start = time.perf_counter()
        history.add_message(message)
        times.append((time.perf_counter() - start) * 1000)
    assert len(history.messages) == len(lc)
    return times


def run(quick: bool) -> Scenario:
    runs = 3 if quick else 7
    rows: list[Row] = []
    notes: list[str] = []
    for size in SIZES:
        messages = w.conversation_messages(1, size)
        group = f"{size:,} messages"
        with scratch_dir(NAME) as folder:
            echo, data = asyncio.run(_echo(folder, messages, runs))
        with scratch_dir(NAME) as folder:
            ceiling = _ceiling(folder, data, runs)
        with scratch_dir(NAME) as folder:
            peer = _langchain(folder, messages, runs)
        rows.append(
            Row(
                "Echo, save_conversation",
                "ms",
                echo,
                higher_is_better=False,
                group=group,
            )
        )
        rows.append(
            Row(
                "atomic write of the same bytes (fsync, rename)",
                "ms",
                ceiling,
                role="ceiling",
                higher_is_better=False,
                group=group,
            )
        )
        if peer is not None:
            rows.append(
                Row(
                    "LangChain FileChatMessageHistory, one add_message",
                    "ms",
                    peer,
                    role="peer",
                    higher_is_better=False,
                    group=group,
                )
            )
        notes.append(f"{size:,} messages: {len(data) / 1024 / 1024:.1f} MiB file.")
    notes.append(
        f"{runs} saves per size. FileChatMessageHistory rewrites the whole file on every "
        "message (no fsync), so its row is a cost per message, Echo's a cost per save (once "
        "a conversation goes idle, and at shut-down)."
    )
    return Scenario(NAME, TITLE, rows, [], notes)
