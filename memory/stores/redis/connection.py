"""The Redis store's connections: one client per process, and what counts as Redis being away.

Every ``RedisStore`` and the memory queue of a process share one client per event loop and URL,
instead of opening connections of their own: a client on a blocking pool for one server, or
redis-py's cluster client (``cluster=True``), which finds every node of a Redis Cluster from
the one the URL names and sends each command to the node that holds its key's slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ClusterDownError, RedisClusterUnreachableError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from memory.errors import first_line
from memory.stores.base import StoreError
from memory.stores.redis.urls import shown_url

__all__ = [
    "UNREACHABLE",
    "RedisClient",
    "RedisEndpoint",
    "SharedClient",
    "client_for",
    "reads",
    "release_client",
]

RedisClient = aioredis.Redis | RedisCluster
"""A client of one server or of a cluster: the commands Echo sends are the same."""

# Errors that mean "Redis is not there right now", as opposed to a bad command. On a cluster:
# no node answers, or the slot's node is down (CLUSTERDOWN) until a replica takes over.
UNREACHABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    RedisClusterUnreachableError,
    ClusterDownError,
)
_MAX_CONNECTIONS = 64
# The cluster client's pool does not wait for a free connection: past this many to one node a
# command fails (and would read as an outage), so allow well beyond what a process uses at once.
_MAX_CLUSTER_CONNECTIONS = 512


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


class SharedClient:
    """A client and how many open stores (or queues) use it."""

    def __init__(
        self, client: RedisClient, pool: aioredis.BlockingConnectionPool | None = None
    ) -> None:
        self.client = client
        self.pool = pool
        self.users = 0

    async def aclose(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()
        else:
            await self.client.aclose()


# One client per process (per event loop, and per URL and kind).
_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, bool], SharedClient]
] = weakref.WeakKeyDictionary()


def _connect(url: str, cluster: bool) -> SharedClient:
    options: dict[str, Any] = {
        "socket_connect_timeout": 2.0,
        "socket_timeout": 5.0,
        "health_check_interval": 30,
        # One quick retry covers a pooled connection the server closed (or, on a cluster, a
        # slot that moved); an outage must surface at once so mutations go to the spool
        # instead of waiting here.
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), 1),
    }
    if cluster:
        return SharedClient(
            RedisCluster.from_url(url, max_connections=_MAX_CLUSTER_CONNECTIONS, **options)
        )
    # Blocking: past max_connections a caller waits for a free connection. The default pool
    # raises "Too many connections" instead, which would read as an outage.
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=_MAX_CONNECTIONS, timeout=None, **options
    )
    return SharedClient(aioredis.Redis(connection_pool=pool), pool)


def client_for(url: str, *, cluster: bool = False) -> SharedClient:
    """The client of this event loop for ``url``, made on first use; release it when done."""
    loop = asyncio.get_running_loop()
    clients = _clients.setdefault(loop, {})
    shared = clients.get((url, cluster))
    if shared is None:
        shared = clients[(url, cluster)] = _connect(url, cluster)
    shared.users += 1
    return shared


async def release_client(url: str, shared: SharedClient, *, cluster: bool = False) -> None:
    """One user fewer; the last one closes the client."""
    shared.users -= 1
    if shared.users > 0:
        return
    with contextlib.suppress(RuntimeError):
        clients = _clients.get(asyncio.get_running_loop(), {})
        if clients.get((url, cluster)) is shared:
            del clients[(url, cluster)]
    await shared.aclose()
