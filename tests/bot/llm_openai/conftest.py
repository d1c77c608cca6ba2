"""The ``OpenAIProvider`` every test here drives, pointed at the loopback fake LLM."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.llm import (
    OpenAIProvider,
)
from tests.fake_llm import FakeLLM

from .helpers import MODEL


@pytest.fixture
async def provider(fake_llm: FakeLLM) -> AsyncIterator[OpenAIProvider]:
    llm = OpenAIProvider(fake_llm.base_url, fake_llm.api_key, MODEL, timeout=5.0)
    yield llm
    await llm.aclose()
