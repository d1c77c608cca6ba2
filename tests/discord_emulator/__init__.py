"""A loopback Discord (REST API v10 + gateway) for end-to-end tests of the real discord.py.

See tests/README.md for how to write a test with it.
"""

from __future__ import annotations

from tests.discord_emulator.errors import DiscordAPIError
from tests.discord_emulator.faults import RouteFault
from tests.discord_emulator.gateway.wire import GatewayFrame
from tests.discord_emulator.interactions.model import ClickRefused, InteractionHandle
from tests.discord_emulator.server import DiscordEmulator
from tests.discord_emulator.state import Channel, DefaultWorld, Guild, Member, Message, Role, User
from tests.discord_emulator.world.core import RequestRecord

__all__ = [
    "Channel",
    "ClickRefused",
    "DefaultWorld",
    "DiscordAPIError",
    "DiscordEmulator",
    "GatewayFrame",
    "Guild",
    "InteractionHandle",
    "Member",
    "Message",
    "RequestRecord",
    "Role",
    "RouteFault",
    "User",
]
