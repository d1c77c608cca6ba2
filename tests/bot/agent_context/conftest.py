"""The memory manager every ``Agent.context()`` test starts from: one thread, in a JSON-file
store under ``tmp_path``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from memory import (
    InMemoryConversationManager,
    JsonFileStore,
)

from .helpers import ALICE, T0, THREAD


@pytest_asyncio.fixture
async def manager(tmp_path: Path) -> AsyncIterator[InMemoryConversationManager]:
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path)) as manager:
        await manager.create_conversation(
            thread_id=THREAD, guild_id="900000000000000003", requester=ALICE,
            channel_id="900000000000000002", created_at=T0,
        )  # fmt: skip
        yield manager
