"""Scenario 2, Redis: the recording workload on ``RedisStore``, against LangChain's Redis chat
histories and a plain ``RPUSH`` pipeline (the ceiling), on the same server in the same run.

* Echo: ``InMemoryConversationManager(store=RedisStore(url, prefix=...))``, one message at a
  time in turn across the conversations (as scenario 1), each in Redis when the call
  returns; and the same with all conversations recording at once (one task each).
* ``langchain-redis`` ``RedisChatMessageHistory``: RedisVL documents with a search index. It
  needs the RediSearch and RedisJSON modules (Redis Stack or Redis 8); on a server without
  them it cannot run, and the scenario says so.
* ``langchain-community`` ``RedisChatMessageHistory``: one ``LPUSH`` per message; measured
  always, and the peer the target is checked against when langchain-redis cannot run.
* Ceiling: the same message JSON that Echo stores, ``RPUSH``ed to one list per conversation
  in pipelines of one round (a message of every conversation), no script, no dedupe.

Keys live under a prefix of this run only and are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.framework import Row, Scenario, Target, package_version, redis_url
from bench.scenarios import _workload as w
from memory import InMemoryConversationManager, Message

NAME = "redis"
TITLE = "Redis recording (messages/s)"

SEQUENTIAL = "in turn"
CONCURRENT = "200 at once"
# Threads the synchronous peer records with in the "at once" group (a worker pool's size).
PEER_THREADS = 8


class _ConcurrentFailure(Exception):
    def __init__(self, count: int, first: BaseException) -> None:
        root: BaseException = first
        while root.__cause__ is not None:
            root = root.__cause__
        super().__init__(
            f"{count} of the tasks failed; the first: {first} (from {type(root).__name__}: {root})"
        )


def _client() -> Any:
    import redis

    return redis.Redis.from_url(redis_url(), socket_connect_timeout=2, socket_timeout=30)


def _delete_prefix(client: Any, prefix: str) -> int:
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += client.unlink(*batch)
            batch = []
    if batch:
        deleted += client.unlink(*batch)
    return deleted


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Silence a logger below CRITICAL for the duration (a failing run logs every save)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _store_class() -> tuple[type | None, str]:
    try:
        from memory.stores.redis.store import RedisStore
    except ImportError as exc:
        return None, f"RedisStore not available ({exc})"
    return RedisStore, ""


async def _echo(
    store_cls: type, prefix: str, convs: list[list[Message]], *, concurrent: bool
) -> float:
    store = store_cls(redis_url(), prefix=prefix)
    async with InMemoryConversationManager(store=store) as manager:
        await w.create_conversations(manager, [w.thread_id(i) for i in range(len(convs))])
        add = manager.add_message_to_conversation
        if concurrent:

            async def one(i: int) -> None:
                thread = w.thread_id(i)
                for message in convs[i]:
                    await add(thread, message)

            start = time.perf_counter()
            results = await asyncio.gather(
                *(one(i) for i in range(len(convs))), return_exceptions=True
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                raise _ConcurrentFailure(len(failures), failures[0])
        else:
            order = [(w.thread_id(i), m) for i, m in w.round_robin(convs)]
            start = time.perf_counter()
            for thread, message in order:
                await add(thread, message)
        elapsed = time.perf_counter() - start
    check = store_cls(redis_url(), prefix=prefix)
    async with check:
        for i in (0, len(convs) - 1):
            got = await check.load(w.thread_id(i))
            if got is None or len(got.history) != len(convs[i]):
                raise AssertionError(f"RedisStore lost messages of conversation {i}")
    return sum(map(len, convs)) / elapsed


def _ceiling(client: Any, prefix: str, convs: list[list[Message]]) -> float:
    rounds: list[list[tuple[str, bytes]]] = []
    for k in range(max(map(len, convs))):
        rounds.append(
            [
                (f"{prefix}{w.thread_id(i)}:log", conv[k].to_json().encode())
                for i, conv in enumerate(convs)
                if k < len(conv)
            ]
        )
    start = time.perf_counter()
    for batch in rounds:
        pipe = client.pipeline(transaction=False)
        for key, value in batch:
            pipe.rpush(key, value)
        pipe.execute()
    elapsed = time.perf_counter() - start
    if client.llen(f"{prefix}{w.thread_id(0)}:log") != len(convs[0]):
        raise AssertionError("the RPUSH ceiling lost messages")
    return sum(map(len, convs)) / elapsed


def _lc_messages(convs: list[list[Message]]) -> list[list[Any]]:
    from langchain_core.messages import AIMessage, HumanMessage

    return [
        [
            HumanMessage(m.message_content, name=m.author_name, id=m.message_id)
            if m.requester
            else AIMessage(m.message_content)
            for m in conv
        ]
        for conv in convs
    ]


def _sequential(histories: list[Any], convs: list[list[Any]]) -> float:
    order = [(histories[i], m) for i, m in w.round_robin(convs)]  # type: ignore[arg-type]
    start = time.perf_counter()
    for history, message in order:
        history.add_message(message)
    return len(order) / (time.perf_counter() - start)


def _threaded(histories: list[Any], convs: list[list[Any]], threads: int) -> float:
    """The conversations shared out among ``threads`` threads, each recording its own in turn:
    how a synchronous library records many conversations at once."""
    shares = [list(range(t, len(convs), threads)) for t in range(threads)]

    def record(share: list[int]) -> None:
        for i, message in w.round_robin([convs[i] for i in share]):
            histories[share[i]].add_message(message)

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(record, shares))
    return sum(map(len, convs)) / (time.perf_counter() - start)


def _community(prefix: str, convs: list[list[Any]], threads: int = 0) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langchain_community.chat_message_histories import RedisChatMessageHistory

    histories = [
        RedisChatMessageHistory(w.thread_id(i), url=redis_url(), key_prefix=prefix)
        for i in range(len(convs))
    ]
    rate = _threaded(histories, convs, threads) if threads else _sequential(histories, convs)
    if len(histories[0].messages) != len(convs[0]):
        raise AssertionError("langchain-community's RedisChatMessageHistory lost messages")
    return rate


def _langchain_redis_histories(prefix: str, count: int) -> tuple[list[Any], str]:
    """Histories of langchain-redis, or none and why it cannot run on this server."""
    try:
        from langchain_redis import RedisChatMessageHistory
    except ImportError:
        return [], "langchain-redis is not installed (pip install -e '.[bench]')"
    index = f"{prefix}idx"
    try:
        histories = [
            RedisChatMessageHistory(
                w.thread_id(i), redis_url=redis_url(), key_prefix=prefix, index_name=index
            )
            for i in range(count)
        ]
    except Exception as exc:
        return [], (
            f"langchain-redis {package_version('langchain-redis')} cannot run on this server "
            f"(it needs RediSearch + RedisJSON: Redis Stack or Redis 8): {type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:120]}"
        )
    return histories, ""


def run(quick: bool) -> Scenario:
    client = _client()
    try:
        server = client.info("server")
    except Exception as exc:
        raise RuntimeError(f"no Redis answers at {redis_url()}: {exc}") from exc
    runs = 3 if quick else 5
    count, per = 200, (25 if quick else 100)
    convs = w.conversations(count, per)
    total = count * per
    store_cls, why_no_store = _store_class()
    lc = _lc_messages(convs)
    rid = uuid.uuid4().hex[:10]
    notes = [
        f"Redis {server.get('redis_version')} at the same URL for every subject; "
        f"{count} conversations x {per} messages ({total:,}), {runs} runs interleaved; "
        "messages/s over the messages only.",
    ]
    samples: dict[str, list[float]] = {}
    lr_problem = ""
    concurrent_problem = ""
    prefixes: list[str] = []

    def prefix(kind: str) -> str:
        p = f"echobench{rid}{kind}{len(prefixes)}"
        prefixes.append(p)
        return p

    try:
        for _ in range(runs):
            if store_cls is not None:
                samples.setdefault("echo", []).append(
                    asyncio.run(_echo(store_cls, prefix("e"), convs, concurrent=False))
                )
                if not concurrent_problem:
                    try:
                        with _quiet("memory"):
                            samples.setdefault("echo concurrent", []).append(
                                asyncio.run(_echo(store_cls, prefix("c"), convs, concurrent=True))
                            )
                    except Exception as exc:
                        concurrent_problem = f"{type(exc).__name__}: {exc}"
                        samples.pop("echo concurrent", None)
            samples.setdefault("ceiling", []).append(_ceiling(client, prefix("r") + ":", convs))
            samples.setdefault("community", []).append(_community(prefix("l") + ":", lc))
            samples.setdefault("community threads", []).append(
                _community(prefix("t") + ":", lc, PEER_THREADS)
            )
            if not lr_problem:
                p = prefix("v") + ":"
                histories, lr_problem = _langchain_redis_histories(p, count)
                if histories:
                    try:
                        samples.setdefault("langchain-redis", []).append(_sequential(histories, lc))
                    finally:
                        with contextlib.suppress(Exception):
                            histories[0].index.delete(drop=True)
    finally:
        for p in prefixes:
            _delete_prefix(client, p)
        client.close()

    rate = "messages/s"
    rows: list[Row] = []
    targets: list[Target] = []
    if store_cls is not None:
        rows.append(Row("Echo, RedisStore", rate, samples["echo"], group=SEQUENTIAL))
    else:
        notes.append(why_no_store + "; the peers are measured alone.")
    peer_key = "langchain-redis" if "langchain-redis" in samples else "community"
    if "langchain-redis" in samples:
        rows.append(
            Row(
                f"langchain-redis {package_version('langchain-redis')} RedisChatMessageHistory",
                rate,
                samples["langchain-redis"],
                role="peer",
                group=SEQUENTIAL,
            )
        )
    else:
        notes.append(lr_problem + ". The target is checked against langchain-community's.")
    rows += [
        Row(
            f"langchain-community {package_version('langchain-community')} "
            "RedisChatMessageHistory (LPUSH)",
            rate,
            samples["community"],
            role="peer",
            group=SEQUENTIAL,
        ),
        Row("RPUSH pipeline", rate, samples["ceiling"], role="ceiling", group=SEQUENTIAL),
    ]
    if store_cls is not None:
        if concurrent_problem:
            notes.append(
                f"Echo with all {count} conversations recording at once FAILED: "
                f"{concurrent_problem}"
            )
        else:
            rows += [
                Row(
                    f"Echo, RedisStore ({count} tasks)",
                    rate,
                    samples["echo concurrent"],
                    group=CONCURRENT,
                ),
                Row(
                    f"langchain-community {package_version('langchain-community')} "
                    f"RedisChatMessageHistory ({PEER_THREADS} threads)",
                    rate,
                    samples["community threads"],
                    role="peer",
                    group=CONCURRENT,
                ),
                Row("RPUSH pipeline", rate, samples["ceiling"], role="ceiling", group=CONCURRENT),
            ]
        echo = Row("", rate, samples["echo"]).median
        peer = Row("", rate, samples[peer_key]).median
        # The RPUSH pipeline stays a context row (each Echo row shows its share of it), not a
        # goal: what it measures is far beyond anything a Discord bot asks of Redis.
        label = "langchain-redis" if peer_key == "langchain-redis" else "langchain-community"
        targets = [
            Target(
                f"in turn: RedisStore vs {label} RedisChatMessageHistory",
                echo / peer,
                5.0,
                True,
                "x",
            ),
        ]
        if not concurrent_problem:
            at_once = Row("", rate, samples["echo concurrent"]).median
            threaded = Row("", rate, samples["community threads"]).median
            targets += [
                Target(
                    f"{count} at once: RedisStore vs langchain-community ({PEER_THREADS} threads)",
                    at_once / threaded,
                    5.0,
                    True,
                    "x",
                ),
            ]
    notes.append(
        "Echo's append is one Lua script per message (dedupe by Discord id, history, "
        "participants, updated_at, atomically), answered before the call returns: in turn, "
        "one round trip each; at once, appends made together share round trips "
        "(auto-pipelining). The RPUSH pipeline sends a round of "
        f"{count} bare RPUSHes per round trip."
    )
    return Scenario(NAME, TITLE, rows, targets, notes)
