"""What ``/export`` hands a Discord user: the record as the thread showed it.

The model's reasoning (``thinking`` records) is kept for the operator, but Discord only
shows it with ``ECHO_SHOW_THINKING=true``; a member must not get through ``/export`` what
the thread never showed them. The operator's CLI export keeps everything.
"""

from __future__ import annotations

from memory import Conversation, MessageType

__all__ = ["as_shown"]


def as_shown(conversation: Conversation, *, show_thinking: bool) -> Conversation:
    """The conversation without what Discord did not show (a copy; the record is untouched)."""
    if show_thinking:
        return conversation
    history = [m for m in conversation.history if m.message_type != MessageType.THINKING]
    if len(history) == len(conversation.history):
        return conversation
    return conversation.model_copy(update={"history": history})
