"""Redis answering "not you", as opposed to Redis being away.

A missing or wrong password, an ACL refusal, or an address where something other than Redis
listens will not get better by waiting: opening the store turns them into a
``StoreConfigError`` of one line naming the address and the cause (never the password), and
the process stops instead of retrying forever.
"""

from __future__ import annotations

from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    InvalidResponse,
    MovedError,
    NoPermissionError,
    RedisClusterException,
    RedisError,
    ResponseError,
)

from memory.errors import first_line
from memory.stores.base import StoreConfigError
from memory.stores.redis.urls import redis_address

__all__ = ["cluster_refusal", "refusal"]

# Without a password, redis-py's HELLO is refused with NOAUTH ("Authentication required", or
# "HELLO must be called with the client already authenticated" from Redis 6+).
_NOAUTH_TEXTS = ("authentication required", "must be called with the client already authenticated")


def refusal(exc: BaseException, url: str) -> StoreConfigError | None:
    """The configuration error ``exc`` means, or None if it is an outage or something else."""
    where = f"Redis at {redis_address(url)}"
    cause = first_line(exc)
    if isinstance(exc, AuthenticationError):
        if _has_password(url) and not any(t in cause.lower() for t in _NOAUTH_TEXTS):
            return StoreConfigError(
                f"{where} refused the user name or password of REDIS_URL (WRONGPASS): {cause}"
            )
        return StoreConfigError(
            f"{where} wants a password and REDIS_URL gives none (NOAUTH): put it in the URL, "
            f"redis://[user]:PASSWORD@{redis_address(url)}/0"
        )
    if isinstance(exc, AuthorizationError | NoPermissionError):
        return StoreConfigError(
            f"{where} refused the user of REDIS_URL a command or key Echo needs (NOPERM): "
            f"{cause}; see README, 'Running on Redis'"
        )
    if isinstance(exc, ResponseError) and cause.upper().startswith(("NOAUTH", "WRONGPASS")):
        return StoreConfigError(f"{where} refused Echo's credentials: {cause}")
    if isinstance(exc, MovedError):  # the key is on another node of a cluster
        return StoreConfigError(
            f"{where} is a node of a Redis Cluster: set ECHO_REDIS_CLUSTER=true (MOVED {cause})"
        )
    if isinstance(exc, InvalidResponse) or (
        isinstance(exc, RedisError) and "protocol error" in cause.lower()
    ):
        return StoreConfigError(
            f"{redis_address(url)} does not answer as a Redis server (is REDIS_URL right?): "
            f"{cause[:120]}"
        )
    return None


def _has_password(url: str) -> bool:
    rest = url.partition("://")[2]
    credentials, at, _ = rest.rpartition("@")
    return bool(at and ":" in credentials) or "password=" in rest.lower()


def cluster_refusal(exc: RedisClusterException, url: str) -> StoreConfigError:
    """What the cluster client's failure to start means: its cause refused Echo, the server is
    no cluster node, or the cluster is not ready (not every slot has a node)."""
    cause = exc.__cause__
    if cause is not None and (refused := refusal(cause, url)) is not None:
        return refused
    where = f"Redis at {redis_address(url)}"
    text = first_line(cause if cause is not None else exc)
    lower = text.lower()
    if "cluster" in lower and ("not enabled" in lower or "disabled" in lower):
        return StoreConfigError(
            f"{where} is not a Redis Cluster node, but ECHO_REDIS_CLUSTER=true: unset it to use "
            f"one server ({text})"
        )
    return StoreConfigError(f"{where}: the Redis Cluster cannot be used: {text}")
