"""The ``openai`` SDK client the fake LLM tests drive it through."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from tests.fake_llm import FakeLLM


@pytest.fixture
async def client(fake_llm: FakeLLM) -> AsyncIterator[openai.AsyncOpenAI]:
    async with fake_llm.client(timeout=5.0) as sdk_client:
        yield sdk_client
