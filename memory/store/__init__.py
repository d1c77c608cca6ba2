"""Storage backends behind one interface: JSON files (the default) and Redis."""

from __future__ import annotations

from .base import (
    ConversationInfo,
    ConversationRef,
    ConversationStore,
    RecoveryError,
    StoreError,
)
from .jsonfile import JsonFileStore

__all__ = [
    "ConversationInfo",
    "ConversationRef",
    "ConversationStore",
    "JsonFileStore",
    "RecoveryError",
    "StoreError",
]
