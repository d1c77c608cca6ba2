"""What is recorded: conversations and messages, the mutations that change them, memory records,
and the conversation file format. Pure data, no I/O.
"""

from memory.records.fileformat import parse, render, render_chunks
from memory.records.memories import Fact, MemoryData, MemoryRecord
from memory.records.models import Conversation, Message, MessageMeta, MessageType, ToolCall

__all__ = [
    "Conversation",
    "Fact",
    "MemoryData",
    "MemoryRecord",
    "Message",
    "MessageMeta",
    "MessageType",
    "ToolCall",
    "parse",
    "render",
    "render_chunks",
]
