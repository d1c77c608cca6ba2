"""Echo's keys on a Redis Cluster, read node by node: each guild's keys share one slot.

The store and the memory queue write everything they write (conversations created, appended,
edited, forgotten and deleted; memories; the change feed; a memory batch handed out, its lock
and its report). Then each primary node is asked for the keys it holds (SCAN on that node
alone, as ``redis-cli -p <port> --scan`` would), and every key must sit on the node that serves
its slot, every key of a guild in that guild's one slot, and the keys that span guilds (the
thread index, the guild list, the epoch, the memory queue) outside every guild's hash tag.
"""
# ruff: noqa: E402 - the redis check runs before the imports that need the extra

from __future__ import annotations

from pathlib import Path

import pytest

from tests.redis_support import require_redis_package

require_redis_package()

import redis as redis_sync
from redis.crc import key_slot

from memory import InMemoryConversationManager, RedisStore
from memory.longterm import BatchReport, ExtractiveDistiller
from memory.longterm.service import MemoryService
from memory.records.memories import MemoryData, MemoryRecord
from memory.records.mutations import Append, Create, Delete, Edit, ForgetPerson
from memory.stores.base import StoreConfigError
from memory.stores.redis.queue import RedisMemoryQueue
from tests.redis_support import sync_client

from .test_store_contract import T0, chat, conversation

# Guild ids whose hash tags fall on each node of the three-node cluster .ci/run makes (slots
# 1584, 9842, 8373, 5970, 13798); "1", "12" and "123" share a node, not a slot.
GUILDS = ["3", "1", "12", "123", "22"]
# Keys that span guilds: their own slots, never in a guild's script.
SHARED = ("threads", "guilds", "epoch", "memq")


def keys_by_node(url: str, prefix: str) -> dict[str, list[str]]:
    """Every key under ``prefix``, by the primary node that holds it (asked one by one)."""
    found: dict[str, list[str]] = {}
    with sync_client(url, cluster=True) as cluster:
        nodes = [(node.host, node.port) for node in cluster.get_primaries()]
    for host, port in nodes:
        with redis_sync.Redis(host=host, port=port) as node:
            found[f"{host}:{port}"] = [
                key.decode() for key in node.scan_iter(match=f"{prefix}:*", count=1000)
            ]
            for key in found[f"{host}:{port}"]:
                # The node serves the key's slot (it would answer MOVED otherwise).
                assert node.exists(key), key
    return found


@pytest.mark.parametrize("redis_cluster", [True], ids=["redis-cluster"], indirect=True)
async def test_each_guilds_keys_share_one_slot_on_every_node(
    redis_url: str, redis_prefix: str, redis_cluster: bool, tmp_path: Path
) -> None:
    store = RedisStore(redis_url, prefix=redis_prefix, spool_dir=tmp_path / "spool", cluster=True)
    async with store:
        for n, guild in enumerate(GUILDS):
            thread, other = f"{n + 1}1", f"{n + 1}2"
            for thread_id in (thread, other):
                await store.record(Create(conversation(thread_id, guild_id=guild)))
                await store.record(Append(thread_id, chat(f"hello {guild}", f"9{thread_id}")))
            await store.record(Edit(thread, f"9{thread}", "edited"))
            await store.record(Append(thread, chat("from 34", f"8{thread}", requester="34")))
            await store.record(ForgetPerson(thread, "34"))
            await store.record(Delete(thread, f"9{thread}"))
            await store.delete(other)
            await store.save_memory(
                MemoryRecord(
                    thread_id=thread,
                    guild_id=guild,
                    requester="33",
                    memory_data=MemoryData(summary=f"memory of {thread}"),
                    source_updated_at=T0,
                )
            )
            assert (await store.changes_since(guild, None))[0] > 0
        assert await store.list_guilds() == sorted(GUILDS, key=int)

    # The memory queue: a batch handed out with a conversation locked, then acknowledged.
    async with InMemoryConversationManager(
        store=RedisStore(redis_url, prefix=redis_prefix, cluster=True)
    ) as manager:
        queue = RedisMemoryQueue.for_store(manager.store, consumer="worker")
        service = MemoryService(manager, ExtractiveDistiller(), inactivity=0, queue=queue)
        batch = await service.enqueue()
        assert batch.conversations
        taken = await queue.get()
        async with queue.lease(taken) as lease:
            assert await lease.hold(*taken.conversations[0])
            assert await queue.claim_trigger(60)
            found = keys_by_node(redis_url, redis_prefix)
        await queue.ack(taken, BatchReport(eligible=len(taken.conversations)))
        assert await queue.report(taken) is not None
        await queue.close()
    after = keys_by_node(redis_url, redis_prefix)

    slots_of: dict[str, set[int]] = {}
    nodes_of: dict[str, set[str]] = {}
    shared: list[str] = []
    for node, keys in [*found.items(), *after.items()]:
        for key in keys:
            rest = key.removeprefix(f"{redis_prefix}:")
            if rest.startswith("{"):
                guild = rest[1 : rest.index("}")]
                slots_of.setdefault(guild, set()).add(key_slot(key.encode()))
                nodes_of.setdefault(guild, set()).add(node)
            else:
                assert rest.split(":")[0] in SHARED, key
                assert "{" not in rest, key
                shared.append(rest)
    assert set(slots_of) == set(GUILDS)
    for guild in GUILDS:
        assert slots_of[guild] == {key_slot(f"{{{guild}}}".encode())}, guild
        assert len(nodes_of[guild]) == 1, guild
    # The guilds really are spread over the cluster (else this proves little).
    assert len({node for nodes in nodes_of.values() for node in nodes}) >= min(2, len(found))
    for name in ("threads", "guilds", "epoch", "memq", "memq:trigger"):
        assert name in shared, name
    assert any(k.startswith("memq:busy:") for k in shared)
    assert any(k.startswith("memq:done:") for k in shared)


async def test_a_server_that_is_no_cluster_is_a_config_error(redis_url: str) -> None:
    with pytest.raises(StoreConfigError, match=r"is not a Redis Cluster node.*ECHO_REDIS_CLUSTER"):
        async with RedisStore(redis_url, cluster=True, wait_for_redis=5):
            pass


@pytest.mark.parametrize("redis_cluster", [True], ids=["redis-cluster"], indirect=True)
async def test_a_cluster_node_without_the_cluster_client_is_a_config_error(
    redis_url: str, redis_cluster: bool
) -> None:
    # A prefix whose epoch key (the first key the store writes) another node serves.
    with sync_client(redis_url, cluster=True) as cluster:
        named = next(n for n in cluster.get_primaries() if f":{n.port}/" in redis_url)
        prefix = next(
            p
            for p in (f"echotest{n}" for n in range(100))
            if cluster.get_node_from_key(f"{p}:epoch").name != named.name
        )
    with pytest.raises(StoreConfigError, match=r"node of a Redis Cluster.*ECHO_REDIS_CLUSTER=true"):
        async with RedisStore(redis_url, prefix=prefix, wait_for_redis=5):
            pass
