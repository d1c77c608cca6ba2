"""Scenario 1, durable recording: conversations of 100 messages through the manager with the
journal, against LangChain's ``FileChatMessageHistory`` and the raw ``os.write`` ceiling.

Every subject records the same messages in the same order (one turn of each conversation in
turn, as messages arrive in a busy server), one at a time, each durable per its promise when
the call returns; the clock runs over the messages only (creating the conversations and the
final save are not timed). Messages are built beforehand for every subject: ``Message`` for
Echo, ``HumanMessage``/``AIMessage`` (with the person's name and message id) for LangChain.

* ``fsync everysec``: Echo's journal with the background flush once a second;
  ``FileChatMessageHistory`` (one JSON file per conversation, which it reads and rewrites
  whole on every message, never fsynced); the ceiling: the journal's own Append record bytes
  (``memory.records.mutations.encode``), pre-built, appended with one ``os.write`` each to one file.
* ``fsync always``: each message fsynced before the call returns; the ceiling adds an
  ``fsync`` after each ``os.write``. Echo and the ceiling are timed in alternating rounds
  (one message of each conversation), in the same seconds: fsync time on a shared disk
  swings tenfold from one second to the next.
* ``fsync always, 200 at once``: the same with every conversation of a round recording at
  the same time (one task each), where the journal's group commit shares an fsync among the
  messages waiting for it; the ceiling writes the round's 200 records, then one fsync.
"""

from __future__ import annotations

import asyncio
import os
import time
import warnings
from pathlib import Path

from bench.framework import Row, Scenario, Target, package_version, scratch_dir
from bench.scenarios import _workload as w
from bot.startup import freeze_start_up_objects
from memory import InMemoryConversationManager, JsonFileStore, Message
from memory.records.mutations import Append, encode

NAME = "recording"
TITLE = "Durable recording (messages/s)"

EVERYSEC = "fsync everysec"
ALWAYS = "fsync always"
ALWAYS_CONCURRENT = "fsync always, 200 at once"


async def _echo(folder: Path, convs: list[list[Message]]) -> float:
    """Messages/s through the manager (journal everysec), one at a time, in turn."""
    store = JsonFileStore(folder, fsync="everysec")
    async with InMemoryConversationManager(store=store) as manager:
        await w.create_conversations(manager, [w.thread_id(i) for i in range(len(convs))])
        add = manager.add_message_to_conversation
        order = [(w.thread_id(i), m) for i, m in w.round_robin(convs)]
        start = time.perf_counter()
        for thread, message in order:
            await add(thread, message)
        elapsed = time.perf_counter() - start
        for i, conv in enumerate(convs):
            got = manager.get_conversation(w.thread_id(i))
            if got is None or len(got.history) != len(conv):
                raise AssertionError(f"conversation {i} lost messages")
    return len(order) / elapsed


async def _always_interleaved(
    folder: Path, convs: list[list[Message]], *, concurrent: bool
) -> tuple[float, float]:
    """(Echo, ceiling) messages/s with fsync always, measured in alternating rounds.

    A shared disk's fsync time swings tenfold from one second to the next, so the two are
    timed round by round (a message of every conversation each), turn about, in the same
    seconds. In turn: one message at a time, an fsync each; the ceiling writes and fsyncs
    each record. At once: the round's messages recorded together (one task per
    conversation), so the journal's group commit can share fsyncs; the ceiling writes the
    round's records, then one fsync.
    """
    store = JsonFileStore(folder / "echo", fsync="always")
    fd = os.open(folder / "ceiling.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    echo_time = ceiling_time = 0.0
    count = 0
    try:
        async with InMemoryConversationManager(store=store) as manager:
            threads = [w.thread_id(i) for i in range(len(convs))]
            await w.create_conversations(manager, threads)
            add = manager.add_message_to_conversation
            for k in range(max(map(len, convs))):
                batch = [(threads[i], c[k]) for i, c in enumerate(convs) if k < len(c)]
                lines = [encode(Append(t, m)) for t, m in batch]
                start = time.perf_counter()
                if concurrent:
                    await asyncio.gather(*(add(t, m) for t, m in batch))
                else:
                    for t, m in batch:
                        await add(t, m)
                echo_time += time.perf_counter() - start
                start = time.perf_counter()
                for line in lines:
                    os.write(fd, line)
                    if not concurrent:
                        os.fsync(fd)
                if concurrent:
                    os.fsync(fd)
                ceiling_time += time.perf_counter() - start
                count += len(batch)
            for thread, conv in zip(threads, convs, strict=True):
                got = manager.get_conversation(thread)
                if got is None or len(got.history) != len(conv):
                    raise AssertionError(f"conversation {thread} lost messages")
    finally:
        os.close(fd)
    return count / echo_time, count / ceiling_time


def _ceiling(folder: Path, lines: list[bytes]) -> float:
    """The same record bytes, pre-built, one os.write each to one append-only file."""
    fd = os.open(folder / "ceiling.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        start = time.perf_counter()
        for line in lines:
            os.write(fd, line)
        elapsed = time.perf_counter() - start
    finally:
        os.close(fd)
    return len(lines) / elapsed


def _langchain_messages(convs: list[list[Message]]) -> list[list[object]] | None:
    try:
        from langchain_core.messages import AIMessage, HumanMessage
    except ImportError:
        return None
    out: list[list[object]] = []
    for conv in convs:
        out.append(
            [
                HumanMessage(m.message_content, name=m.author_name, id=m.message_id)
                if m.requester
                else AIMessage(m.message_content)
                for m in conv
            ]
        )
    return out


def _file_history_class() -> type | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # langchain-community announces its sunset on import
            from langchain_community.chat_message_histories import FileChatMessageHistory
    except ImportError:
        return None
    return FileChatMessageHistory


def _langchain(folder: Path, cls: type, convs: list[list[object]]) -> float:
    histories = [cls(str(folder / f"{w.thread_id(i)}.json")) for i in range(len(convs))]
    order = [(histories[i], m) for i, m in w.round_robin(convs)]  # type: ignore[arg-type]
    start = time.perf_counter()
    for history, message in order:
        history.add_message(message)
    elapsed = time.perf_counter() - start
    if len(histories[-1].messages) != len(convs[-1]):
        raise AssertionError("FileChatMessageHistory lost messages")
    return len(order) / elapsed


def run(quick: bool) -> Scenario:
    runs = 3 if quick else 5
    conversations, per = 200, 100
    peer_conversations = 5 if quick else 40
    always_per = 2 if quick else 10
    concurrent_per = 5 if quick else 25

    cls = _file_history_class()
    # As the bot does once it is up (python -m bot): later full collections skip the objects
    # of the imports. The messages are made afterwards, as they arrive in the bot after it.
    freeze_start_up_objects()
    convs = w.conversations(conversations, per)
    lines = w.journal_lines(convs)
    always = [c[:always_per] for c in convs]
    always_count = sum(map(len, always))
    concurrent = [c[:concurrent_per] for c in convs]
    concurrent_count = sum(map(len, concurrent))
    lc = _langchain_messages(convs[:peer_conversations]) if cls is not None else None

    samples: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        samples.setdefault(key, []).append(value)

    for _ in range(runs):
        # Interleaved, so that a noisy neighbour slows every subject alike.
        with scratch_dir(NAME) as d:
            add("echo everysec", asyncio.run(_echo(d, convs)))
        with scratch_dir(NAME) as d:
            add("ceiling everysec", _ceiling(d, lines))
        if cls is not None and lc is not None:
            with scratch_dir(NAME) as d:
                add("langchain", _langchain(d, cls, lc))
        with scratch_dir(NAME) as d:
            echo, ceiling = asyncio.run(_always_interleaved(d, always, concurrent=False))
            add("echo always", echo)
            add("ceiling always", ceiling)
        with scratch_dir(NAME) as d:
            echo, ceiling = asyncio.run(_always_interleaved(d, concurrent, concurrent=True))
            add("echo concurrent", echo)
            add("ceiling concurrent", ceiling)

    rate = "messages/s"
    rows = [
        Row("Echo, journal everysec", rate, samples["echo everysec"], group=EVERYSEC),
        Row(
            "os.write of the journal records",
            rate,
            samples["ceiling everysec"],
            role="ceiling",
            group=EVERYSEC,
        ),
    ]
    notes = [
        f"{conversations} conversations x {per} messages in turn ({len(lines):,} messages, "
        f"{sum(map(len, lines)) / len(lines):.0f} bytes per journal record), {runs} runs "
        "interleaved; messages/s over the messages only.",
        f"fsync always: the first {always_per} messages of each conversation "
        f"({always_count:,}); 200 at once: the first {concurrent_per} ({concurrent_count:,}); "
        "a rate per message (an fsync costs the same whatever the conversation's length). "
        "Echo and its ceiling are timed in alternating rounds of one message per "
        "conversation: this shared disk's fsync time swings tenfold within seconds.",
    ]
    targets: list[Target] = []
    if cls is not None:
        rows.append(
            Row(
                "LangChain FileChatMessageHistory (no fsync)",
                rate,
                samples["langchain"],
                role="peer",
                group=EVERYSEC,
            )
        )
        notes.append(
            f"FileChatMessageHistory (langchain-community {package_version('langchain-community')}"
            f"): {peer_conversations} of the conversations, all 100 messages each (its cost per "
            "message grows with the conversation, not with how many there are); it never "
            "fsyncs, so it is compared with everysec only."
        )
        echo = Row("", rate, samples["echo everysec"]).median
        peer = Row("", rate, samples["langchain"]).median
        targets.append(Target("everysec vs FileChatMessageHistory", echo / peer, 50.0, True, "x"))
    else:
        notes.append(
            "LangChain FileChatMessageHistory not measured: langchain-community is not "
            "installed (pip install -e '.[bench]')."
        )
    rows += [
        Row("Echo, journal always", rate, samples["echo always"], group=ALWAYS),
        Row(
            "os.write + fsync per record",
            rate,
            samples["ceiling always"],
            role="ceiling",
            group=ALWAYS,
        ),
        Row(
            "Echo, journal always (group commit)",
            rate,
            samples["echo concurrent"],
            group=ALWAYS_CONCURRENT,
        ),
        Row(
            f"os.write x {conversations} + one fsync",
            rate,
            samples["ceiling concurrent"],
            role="ceiling",
            group=ALWAYS_CONCURRENT,
        ),
    ]
    # The ceilings (bare writes of the same bytes) stay as context rows, each Echo row showing
    # its share of them; they are no goals: a Discord bot meets Discord's rate limits long
    # before either.
    return Scenario(NAME, TITLE, rows, targets, notes)
