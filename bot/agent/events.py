"""What the reply agent yields while it answers, for a presenter to show (the conversation
cog streams it into Discord messages, the chat CLI into a terminal)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AgentEvent",
    "Failure",
    "Final",
    "RoundStart",
    "TextDelta",
    "TextRetracted",
    "ThinkingDelta",
    "ToolUse",
]


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    text: str


@dataclass(frozen=True, slots=True)
class TextRetracted:
    """The text shown so far this round was the model's reasoning (it follows as
    ``ThinkingDelta``): stop showing it as the answer."""


@dataclass(frozen=True, slots=True)
class RoundStart:
    """A new model round begins (after tool calls): text shown so far was commentary."""

    number: int


@dataclass(frozen=True, slots=True)
class ToolUse:
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Final:
    text: str
    thinking: str


@dataclass(frozen=True, slots=True)
class Failure:
    """One short, friendly line for the people in the thread; the cause went to the log."""

    user_message: str


AgentEvent = TextDelta | TextRetracted | ThinkingDelta | RoundStart | ToolUse | Final | Failure
