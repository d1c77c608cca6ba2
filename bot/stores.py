"""The store the settings ask for: JSON files (the default) or Redis (``ECHO_STORE=redis``)."""

from __future__ import annotations

from typing import Literal

from bot.config import ConfigError, Settings
from memory import ConversationStore, JsonFileStore
from memory.stores.redis.urls import shown_url

__all__ = ["StoreKind", "describe_store", "make_store"]

StoreKind = Literal["json", "redis"]


def make_store(
    settings: Settings,
    kind: StoreKind | None = None,
    *,
    read_only: bool = False,
    spool: bool = True,
    wait_for_redis: float | None = None,
) -> ConversationStore:
    """A store of ``kind`` (default: ``ECHO_STORE``), not yet opened.

    ``read_only`` concerns the JSON folder (no lock, no journal) for tools that read beside a
    running bot; Redis needs no such mode, as any number of processes share it. ``spool``: a
    Redis store keeps mutations in ``<ECHO_DATA_DIR>/spool`` while Redis is unreachable (only
    one process may use a spool folder; tools that only read go without). ``wait_for_redis``:
    how long opening a Redis store keeps retrying an unreachable server (None: until it
    answers, as the bot does).
    """
    kind = kind or settings.store
    if kind == "json":
        return JsonFileStore(settings.data_dir, fsync=settings.journal_fsync, read_only=read_only)
    try:
        from memory.stores.redis.store import RedisStore
    except ImportError as exc:
        raise ConfigError(
            f"ECHO_STORE=redis needs the redis extra: pip install -e '.[redis]' ({exc})"
        ) from None
    return RedisStore(
        settings.redis_url,
        prefix=settings.redis_prefix,
        spool_dir=settings.data_dir / "spool" if spool and not read_only else None,
        fsync=settings.journal_fsync,
        wait_for_redis=wait_for_redis,
        cluster=settings.redis_cluster,
    )


def describe_store(settings: Settings, kind: StoreKind | None = None) -> str:
    """Where the store keeps its data, as an operator would name it in a log line."""
    kind = kind or settings.store
    if kind == "json":
        return f"JSON files in {settings.data_dir.resolve()}"
    what = "Redis Cluster" if settings.redis_cluster else "Redis"
    return f"{what} at {shown_url(settings.redis_url)} (prefix {settings.redis_prefix!r})"
