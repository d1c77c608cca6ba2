"""The conversations every write scenario records: deterministic, Discord-shaped.

A conversation alternates a person's chat message (their id as requester, a Discord message
id, their display name) and Echo's answer (``reply_to`` the message it answers), 40-60 words
each, from a fixed vocabulary with a fixed seed: every subject of a scenario records exactly
the same text.
"""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime, timedelta

from memory import InMemoryConversationManager, Message, MessageType
from memory.records.mutations import Append, encode

GUILD_ID = "900000000000000001"
CHANNEL_ID = "900000000000000002"
_THREAD_BASE = 1_100_000_000_000_000_000
_USER_BASE = 500_000_000_000_000_000
_MESSAGE_BASE = 1_200_000_000_000_000_000
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

_WORDS = (
    "the a to and of it is that you for on was with this be have are not but they at what so "
    "my can just do if your we about all like one out get there time think know would when "
    "people how make good more some really because see also then now go well back want need "
    "new first work still could much way thing right over even day after most very try any "
    "game server channel role bot message thread music playlist raid build patch update event "
    "weekend tonight tomorrow meeting schedule stream video clip screenshot bug crash fix "
    "deploy config token permission moderator admin member invite emoji sticker voice"
).split()
_NAMES = ("Ana", "Bram", "Chen", "Dita", "Eli", "Femi", "Goro", "Hana")


def thread_id(index: int) -> str:
    return str(_THREAD_BASE + index)


def requester(index: int) -> str:
    return str(_USER_BASE + index % 50)


def _text(rng: random.Random) -> str:
    words = rng.choices(_WORDS, k=rng.randint(40, 60))
    return " ".join(words).capitalize() + "."


def conversation_messages(index: int, count: int, *, salt: int = 0) -> list[Message]:
    """``count`` messages of conversation ``index`` (the same every time for the same args)."""
    rng = random.Random(index * 1_000_003 + salt)
    person = requester(index)
    name = _NAMES[index % len(_NAMES)]
    messages: list[Message] = []
    last_id = ""
    for k in range(count):
        at = START + timedelta(seconds=index * 3600 + k * 7)
        if k % 2 == 0:
            last_id = str(_MESSAGE_BASE + index * 1_000_000 + k + salt * 100_000)
            messages.append(
                Message(
                    created_at=at,
                    message_type=MessageType.CHAT,
                    message_content=_text(rng),
                    requester=person,
                    message_id=last_id,
                    meta={"author_name": name},
                )
            )
        else:
            messages.append(
                Message(
                    created_at=at,
                    message_type=MessageType.CHAT,
                    message_content=_text(rng),
                    meta={"reply_to": last_id},
                )
            )
    return messages


@functools.lru_cache(maxsize=8)
def _cached(count: int, per_conversation: int) -> tuple[tuple[Message, ...], ...]:
    return tuple(tuple(conversation_messages(i, per_conversation)) for i in range(count))


def conversations(count: int, per_conversation: int) -> list[list[Message]]:
    """``count`` conversations of ``per_conversation`` messages (built once, then cached)."""
    return [list(c) for c in _cached(count, per_conversation)]


def journal_lines(convs: list[list[Message]]) -> list[bytes]:
    """The journal's own Append records of these messages, in round-robin order."""
    lines: list[bytes] = []
    for k in range(max((len(c) for c in convs), default=0)):
        for i, conv in enumerate(convs):
            if k < len(conv):
                lines.append(encode(Append(thread_id(i), conv[k])))
    return lines


def round_robin(convs: list[list[Message]]) -> list[tuple[int, Message]]:
    """(conversation index, message) in the order messages arrive: one turn of each in turn."""
    order: list[tuple[int, Message]] = []
    for k in range(max((len(c) for c in convs), default=0)):
        for i, conv in enumerate(convs):
            if k < len(conv):
                order.append((i, conv[k]))
    return order


async def create_conversations(manager: InMemoryConversationManager, threads: list[str]) -> None:
    """The workload's conversation for each thread (requester by position in ``threads``)."""
    for i, thread in enumerate(threads):
        await manager.create_conversation(
            thread_id=thread,
            guild_id=GUILD_ID,
            requester=requester(i),
            channel_id=CHANNEL_ID,
            created_at=START,
        )
