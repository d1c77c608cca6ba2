"""Tools the model may call: the registry and the built-in tools."""

from bot.tools.builtin import default_tools
from bot.tools.registry import MAX_RESULT_CHARS, ToolContext, ToolError, ToolRegistry, ToolResult

__all__ = [
    "MAX_RESULT_CHARS",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "default_tools",
]
