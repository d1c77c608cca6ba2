"""Echo's memory: a Discord-independent library that records conversations and never loses them.

```python
from memory import Message, MessageType, InMemoryConversationManager, JsonFileStore

async with InMemoryConversationManager(store=JsonFileStore("data"), idle_time=300) as manager:
    await manager.create_conversation(thread_id="11", guild_id="22", guild_name="G",
                                      requester="33", channel_id="44")
    await manager.add_message_to_conversation(
        "11", Message(message_type=MessageType.CHAT, message_content="hi", requester="33"))
```
"""

from __future__ import annotations

from memory.recording.journal import FsyncPolicy, JournalError
from memory.recording.manager import IDLE_TIME, ConversationEvent, InMemoryConversationManager
from memory.records.models import Conversation, Message, MessageMeta, MessageType, ToolCall
from memory.stores import (
    ConversationRef,
    ConversationStore,
    JsonFileStore,
    RecoveryError,
    StoreConfigError,
    StoreError,
)

__all__ = [
    "IDLE_TIME",
    "Conversation",
    "ConversationEvent",
    "ConversationRef",
    "ConversationStore",
    "FsyncPolicy",
    "InMemoryConversationManager",
    "JournalError",
    "JsonFileStore",
    "Message",
    "MessageMeta",
    "MessageType",
    "RecoveryError",
    "RedisStore",
    "StoreConfigError",
    "StoreError",
    "ToolCall",
]


def __getattr__(name: str) -> object:
    # RedisStore needs the redis extra: imported on first use, so JSON-only installs work.
    if name == "RedisStore":
        from memory.stores.redis.store import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
