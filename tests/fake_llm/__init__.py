"""A loopback fake OpenAI-compatible server for tests; see ``server/core.py`` for how to use it."""

from __future__ import annotations

from tests.fake_llm.replies import ToolCall
from tests.fake_llm.server.core import DEFAULT_REPLY, FakeLLM
from tests.fake_llm.server.recording import RecordedRequest

__all__ = ["DEFAULT_REPLY", "FakeLLM", "RecordedRequest", "ToolCall"]
