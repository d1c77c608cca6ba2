"""Recall: passages and queries, the per-guild full-text index, ranking, and the service that keeps
the index in step with the store.

```python
from memory.recall import RecallIndex

with RecallIndex.in_data_dir("data") as index:
    index.upsert_conversation(conversation, memory)
    hits = index.search(guild_id, "when did Caroline go to the support group?")
```
"""

from __future__ import annotations

from memory.recall.files import RecallError
from memory.recall.index import RecallIndex
from memory.recall.passages import RecallSettings
from memory.recall.ranking import RecallHit
from memory.recall.service import RecallService
from memory.recall.sync import SyncReport, sync

__all__ = [
    "RecallError",
    "RecallHit",
    "RecallIndex",
    "RecallService",
    "RecallSettings",
    "SyncReport",
    "sync",
]
