"""A loopback fake OpenAI-compatible server for tests; see ``server.py`` for how to use it."""

from __future__ import annotations

from tests.fake_llm.replies import ToolCall
from tests.fake_llm.server import DEFAULT_REPLY, FakeLLM, RecordedRequest

__all__ = ["DEFAULT_REPLY", "FakeLLM", "RecordedRequest", "ToolCall"]
