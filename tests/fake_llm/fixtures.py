"""The ``fake_llm`` pytest fixture, imported into ``tests/conftest.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.fake_llm.server.core import FakeLLM


@pytest_asyncio.fixture
async def fake_llm() -> AsyncIterator[FakeLLM]:
    """A fresh server per test, so one test's leftover script can never answer another's."""
    async with FakeLLM() as server:
        yield server
