"""Which messages a thread's replies have already taken into account.

A reply answers the newest message of its thread when its context is built, and every
record it leaves carries that message's id (``Message.reply_to``). A message that arrived
while its thread's reply was still waiting to start (for a model slot, a cooldown, room in
Discord's rate limits) is answered by that reply, not by one of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from memory import Message

__all__ = ["already_answered"]


def already_answered(history: Sequence[Message], message_id: str) -> bool:
    """Whether a reply whose context held ``message_id`` (or a later message) was recorded."""
    answered: set[str] = set()  # what the replies recorded after this point answered
    later: set[str] = {message_id}  # this message and the people's messages after it
    for message in reversed(history):
        if message.message_id == message_id:
            return bool(answered & later)
        if message.requester is not None and message.message_id is not None:
            later.add(message.message_id)
        elif message.reply_to is not None:
            answered.add(message.reply_to)
    return False
