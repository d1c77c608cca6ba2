"""What a Redis URL may show: with its password masked, and the address it names.

Kept apart from the store (and from redis-py) so that the settings can check and show a
``REDIS_URL`` without the redis extra installed.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["check_cluster_url", "check_redis_url", "redis_address", "shown_url"]

_SCHEMES = ("redis", "rediss", "unix")
_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")


def shown_url(url: str) -> str:
    """The URL as logs and messages show it: any password replaced by ***."""
    scheme, sep, rest = url.partition("://")
    rest = _QUERY_PASSWORD.sub(r"\1***", rest)
    if "@" not in rest:
        return f"{scheme}{sep}{rest}"
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user + ':***@' if user else '***@'}{host}"


def redis_address(url: str) -> str:
    """``host:port`` (or the socket path) that ``url`` names: what a one-line error shows."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return parts.path or "?"
        host = parts.hostname or "127.0.0.1"
        port = parts.port or 6379
    except ValueError:
        return "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_redis_url(url: str) -> None:
    """``ValueError`` (whose text never holds the password) unless redis-py can use ``url``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("the port is not a number from 0 to 65535") from None
    if parts.scheme not in _SCHEMES:
        raise ValueError("must start with redis://, rediss:// or unix://")
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("a unix:// URL needs the socket's path")
        return
    if not parts.hostname:
        raise ValueError("names no host (redis://[[user]:password@]host[:port][/db])")
    if port == 0:
        raise ValueError("port 0 is not a port Redis listens on")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ValueError(f"the database after the host must be a number, got {db!r}")


def check_cluster_url(url: str) -> None:
    """``ValueError`` unless ``url`` can name a node of a Redis Cluster (a cluster has only
    database 0, and its nodes are reached over TCP)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        raise ValueError("a Redis Cluster is reached over TCP (redis://, rediss://), not a socket")
    db = parts.path.strip("/")
    if db and db != "0":
        raise ValueError(f"a Redis Cluster has only database 0, not {db}")
