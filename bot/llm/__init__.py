"""Chat model providers behind one interface (``ChatProvider``), chosen by configuration.

``make_provider("echo", ...)`` works with nothing configured; ``"openai"`` reaches any
OpenAI-compatible endpoint. Nothing here imports discord.
"""

from __future__ import annotations

import logging

from bot.llm.base import (
    USER_MESSAGES,
    ChatProvider,
    ContentDelta,
    ContentRetracted,
    Finish,
    LLMError,
    LLMErrorKind,
    ProviderEvent,
    ReasoningDelta,
    ToolCallRequest,
)
from bot.llm.echo import EchoProvider
from bot.llm.openai_provider import OpenAIProvider
from bot.llm.think import ThinkParser, split_think

log = logging.getLogger(__name__)

__all__ = [
    "PROVIDERS",
    "USER_MESSAGES",
    "ChatProvider",
    "ContentDelta",
    "ContentRetracted",
    "EchoProvider",
    "Finish",
    "LLMError",
    "LLMErrorKind",
    "OpenAIProvider",
    "ProviderEvent",
    "ReasoningDelta",
    "ThinkParser",
    "ToolCallRequest",
    "make_provider",
    "split_think",
]

PROVIDERS = ("echo", "openai")


def make_provider(
    provider: str,
    *,
    base_url: str | None,
    api_key: str | None,
    model: str | None,
    timeout: float,
    max_retries: int = 2,
    reasoning_open: bool = False,
) -> ChatProvider:
    """The provider named by ``LLM_PROVIDER``; errors name the setting to fix."""
    name = (provider or "").strip().lower()
    if name == "echo":
        return EchoProvider()
    if name == "openai":
        if not model:
            raise ValueError(
                "LLM_PROVIDER=openai needs LLM_MODEL (e.g. gpt-4o-mini, or llama3.2 for Ollama)"
            )
        log.info("LLM: model %s at %s", model, base_url or "the OpenAI API")
        return OpenAIProvider(
            base_url=base_url,
            api_key=api_key,
            model=model,
            timeout=timeout,
            max_retries=max_retries,
            reasoning_open=reasoning_open,
        )
    raise ValueError(f"unknown LLM_PROVIDER {provider!r}: use one of {', '.join(PROVIDERS)}")
