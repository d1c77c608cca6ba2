"""Storage backends behind one interface: JSON files (the default) and Redis."""

from __future__ import annotations

from memory.stores.base import (
    ChangeFeed,
    ConversationInfo,
    ConversationRef,
    ConversationStore,
    FileBacked,
    QueueHost,
    RecoveryError,
    Spooling,
    StoreConfigError,
    StoreError,
)
from memory.stores.json.store import JsonFileStore

__all__ = [  # noqa: RUF022 - RedisStore is imported on first use (it needs the redis extra)
    "ChangeFeed",
    "ConversationInfo",
    "ConversationRef",
    "ConversationStore",
    "FileBacked",
    "JsonFileStore",
    "QueueHost",
    "RedisStore",
    "RecoveryError",
    "Spooling",
    "StoreConfigError",
    "StoreError",
]


def __getattr__(name: str) -> object:
    if name == "RedisStore":
        from memory.stores.redis.store import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
