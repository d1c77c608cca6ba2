"""ScriptBatcher: concurrent script calls share round trips, each caller gets its own answer."""
# ruff: noqa: E402 - the redis check runs before the imports that need the extra

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.redis_support import PrivateRedis, require_redis_package

require_redis_package()

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from memory.stores.redis.batching import ScriptBatcher

# Appends ARGV[1] to the list and returns its new length; refuses the value "bad".
PUSH = """
if ARGV[1] == 'bad' then return redis.error_reply('refused: ' .. ARGV[1]) end
return redis.call('RPUSH', KEYS[1], ARGV[1])
"""


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


async def test_concurrent_calls_share_round_trips_and_keep_their_order(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    script = client.register_script(PUSH)
    batcher = ScriptBatcher(client)
    key = f"{redis_prefix}:list"
    replies = await asyncio.gather(*(batcher.call(script, [key], [f"v{i}"]) for i in range(300)))
    # Each caller got the reply of its own call: the list's length right after its push.
    assert sorted(replies) == list(range(1, 301))
    assert replies == list(range(1, 301))  # sent, and so applied, in the order made
    values = [v.decode() for v in await client.lrange(key, 0, -1)]
    assert values == [f"v{i}" for i in range(300)]
    # One lone call went out at once; the rest left in a handful of batches.
    assert batcher.round_trips <= 10
    await batcher.aclose()


async def test_a_lone_call_goes_out_at_once(client: aioredis.Redis, redis_prefix: str) -> None:
    script = client.register_script(PUSH)
    batcher = ScriptBatcher(client)
    for i in range(5):
        assert await batcher.call(script, [f"{redis_prefix}:one"], ["x"]) == i + 1
    assert batcher.round_trips == 5


async def test_an_error_reply_fails_only_its_own_call(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    script = client.register_script(PUSH)
    batcher = ScriptBatcher(client)
    key = f"{redis_prefix}:mixed"
    values = ["a", "b", "bad", "c", "d", "bad", "e"]
    results = await asyncio.gather(
        *(batcher.call(script, [key], [v]) for v in values), return_exceptions=True
    )
    errors = [i for i, r in enumerate(results) if isinstance(r, ResponseError)]
    assert errors == [2, 5]
    assert "refused: bad" in str(results[2])
    assert [v.decode() for v in await client.lrange(key, 0, -1)] == ["a", "b", "c", "d", "e"]


async def test_scripts_the_server_forgot_are_loaded_and_sent_again_once(
    private_redis: PrivateRedis,
) -> None:
    client = aioredis.Redis.from_url(private_redis.url)
    try:
        script = client.register_script(PUSH)
        batcher = ScriptBatcher(client)
        await batcher.call(script, ["warm"], ["0"])
        await client.script_flush()
        # The first call goes out alone, and reloads its own script: make it another script,
        # so the pipeline behind it meets NOSCRIPT for sure.
        other = client.register_script("return 0")
        results = await asyncio.gather(
            batcher.call(other, ["k"], []),
            *(batcher.call(script, ["k"], [str(i)]) for i in range(50)),
        )
        assert sorted(results[1:]) == list(range(1, 51))
        assert await client.llen("k") == 50  # every call ran exactly once
    finally:
        await client.aclose()


async def test_a_closed_connection_is_replaced_and_a_dead_server_fails_every_caller(
    private_redis: PrivateRedis,
) -> None:
    # One retry on a new connection, as RedisStore's pool has (for the lone call's path).
    client = aioredis.Redis.from_url(private_redis.url, retry=Retry(NoBackoff(), 1))
    try:
        script = client.register_script(PUSH)
        batcher = ScriptBatcher(client)
        await asyncio.gather(*(batcher.call(script, ["k"], ["warm"]) for i in range(20)))
        # The server drops every connection (a restart, a proxy's idle timeout): the pooled
        # connections are stale, and the next batches reconnect instead of failing.
        admin = aioredis.Redis.from_url(private_redis.url, single_connection_client=True)
        await admin.client_kill_filter(_type="normal", skipme=True)
        await admin.aclose()
        results = await asyncio.gather(*(batcher.call(script, ["k"], ["x"]) for i in range(20)))
        assert max(results) == 40
        private_redis.stop()
        outcome = await asyncio.gather(
            *(batcher.call(script, ["k"], ["y"]) for i in range(20)), return_exceptions=True
        )
        assert all(isinstance(r, RedisConnectionError | OSError) for r in outcome), outcome
        await batcher.aclose()
    finally:
        await client.aclose()


async def test_a_cancelled_caller_leaves_the_others_their_answers(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    script = client.register_script(PUSH)
    batcher = ScriptBatcher(client)
    key = f"{redis_prefix}:cancel"
    tasks = [asyncio.ensure_future(batcher.call(script, [key], [str(i)])) for i in range(50)]
    await asyncio.sleep(0)
    tasks[30].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[30], asyncio.CancelledError)
    assert all(isinstance(r, int) for i, r in enumerate(results) if i != 30)
    await batcher.aclose()
    # A queued call whose caller gave up may still have been sent: the list holds 49 or 50.
    assert await client.llen(key) in (49, 50)
