"""The Redis store's connections: one pool per process, and what counts as Redis being away.

Every ``RedisStore`` and the memory queue of a process share one pool per event loop and URL,
instead of opening connections of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from memory.errors import first_line
from memory.stores.base import StoreError
from memory.stores.redis.urls import shown_url

__all__ = ["UNREACHABLE", "RedisEndpoint", "SharedPool", "pool_for", "reads", "release_pool"]

# Errors that mean "Redis is not there right now", as opposed to a bad command.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
_MAX_CONNECTIONS = 64


class RedisEndpoint(Protocol):
    """Whatever talks to Redis at ``url`` (its messages name the URL, password masked)."""

    @property
    def url(self) -> str: ...


S = TypeVar("S", bound=RedisEndpoint)
P = ParamSpec("P")
T = TypeVar("T")


def reads(
    method: Callable[Concatenate[S, P], Awaitable[T]],
) -> Callable[Concatenate[S, P], Awaitable[T]]:
    """Redis unreachable, or refusing (READONLY, NOREPLICAS, OOM...), becomes a ``StoreError``
    saying so, as the store API promises."""

    async def call(store: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        url = shown_url(store.url)
        try:
            return await method(store, *args, **kwargs)
        except UNREACHABLE as exc:
            raise StoreError(f"Redis at {url} is unreachable: {first_line(exc)}") from exc
        except ResponseError as exc:
            raise StoreError(f"Redis at {url} refused: {first_line(exc)}") from exc

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return call


class SharedPool:
    """A connection pool and how many open stores (or queues) use it."""

    def __init__(self, pool: aioredis.BlockingConnectionPool) -> None:
        self.pool = pool
        self.users = 0


# One pool per process (per event loop, and per URL).
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, SharedPool]] = (
    weakref.WeakKeyDictionary()
)


def pool_for(url: str) -> SharedPool:
    """The pool of this event loop for ``url``, made on first use; release it when done."""
    loop = asyncio.get_running_loop()
    pools = _pools.setdefault(loop, {})
    shared = pools.get(url)
    if shared is None:
        # Blocking: past max_connections a caller waits for a free connection. The default
        # pool raises "Too many connections" instead, which would read as an outage.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=_MAX_CONNECTIONS,
            timeout=None,
            socket_connect_timeout=2.0,
            socket_timeout=5.0,
            health_check_interval=30,
            # One quick retry covers a pooled connection the server closed; an outage must
            # surface at once so mutations go to the spool instead of waiting here.
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1),
        )
        shared = pools[url] = SharedPool(pool)
    shared.users += 1
    return shared


async def release_pool(url: str, shared: SharedPool) -> None:
    """One user fewer; the last one closes the pool."""
    shared.users -= 1
    if shared.users > 0:
        return
    with contextlib.suppress(RuntimeError):
        pools = _pools.get(asyncio.get_running_loop(), {})
        if pools.get(url) is shared:
            del pools[url]
    await shared.pool.aclose()
