"""The seeded Redis every test here reads (``seeding.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory import InMemoryConversationManager
from tests.cli.helpers import (
    GUILD,
    TOOLS,
    write_conversations,
)

from .seeding import ONE, ONES, TWELVE, TWELVES, Seeded, chat_in, memory_of


@pytest.fixture
async def seeded(tmp_path: Path, redis_url: str, redis_prefix: str) -> Seeded:
    seeded = Seeded(tmp_path, redis_url, redis_prefix, tmp_path / "json-data")
    await write_conversations(seeded.json_data)
    await write_conversations(seeded.store())  # TOOLS, NEWEST in GUILD; OLDEST in OTHER_GUILD
    async with InMemoryConversationManager(store=seeded.store()) as manager:
        await chat_in(manager, ONES, ONE, "The lighthouse keeper wants the lamp cleaned.")
        await chat_in(manager, TWELVES, TWELVE, "The orchard needs pruning before the frost.")
        await manager.store.save_memory(
            memory_of(TOOLS, GUILD, "Alice likes pizza on Friday.", fact="Alice likes pizza.")
        )
        await manager.store.save_memory(
            memory_of(ONES, ONE, "The lamp of the lighthouse.", fact="Lamp cleaning is due.")
        )
        await manager.store.save_memory(
            memory_of(TWELVES, TWELVE, "Orchard pruning.", fact="Quince trees need pruning.")
        )
    return seeded
