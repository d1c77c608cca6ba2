"""The reply agent: the tool loop, the context it builds for the model, rolling summaries, recalled
notes and per-thread state.
"""

from bot.agent.events import (
    AgentEvent,
    Failure,
    Final,
    RoundStart,
    TextDelta,
    TextRetracted,
    ThinkingDelta,
    ToolUse,
)
from bot.agent.loop import Agent

__all__ = [
    "Agent",
    "AgentEvent",
    "Failure",
    "Final",
    "RoundStart",
    "TextDelta",
    "TextRetracted",
    "ThinkingDelta",
    "ToolUse",
]
