"""The interaction model: Discord's interaction and callback numbers, ``ClickRefused`` and
``InteractionHandle``.

The bot answers an interaction through three different REST paths (the callback, the
``@original`` webhook message, follow-up webhook messages); ``InteractionHandle`` gathers
them so a test can simply await "the response", "the original message once it stopped
loading" or "the second follow-up". It also holds the interaction's token, its deadline for
a first answer and the token's expiry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.discord_emulator.errors import DiscordAPIError
from tests.discord_emulator.state import Command
from tests.discord_emulator.validation import FLAG_LOADING

if TYPE_CHECKING:
    from tests.discord_emulator.world.core import DiscordWorld

# Interaction callback types
PONG = 1
CHANNEL_MESSAGE_WITH_SOURCE = 4
DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
APPLICATION_COMMAND_AUTOCOMPLETE_RESULT = 8
MODAL = 9

# Interaction types
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
MODAL_SUBMIT = 5

# Interaction contexts
CONTEXT_GUILD = 0
CONTEXT_BOT_DM = 1

# What Discord grants an app in a DM with it (discord.py's Permissions._dm_permissions()).
DM_APP_PERMISSIONS = 4011158005075008


class ClickRefused(Exception):
    """A click no Discord client would send (disabled, unknown or link button, wrong user)."""


@dataclass(eq=False)
class InteractionHandle:
    """One INTERACTION_CREATE sent to the bot, and everything the bot did with it."""

    world: DiscordWorld
    id: int
    token: str
    type: int
    command: Command | None
    guild_id: int | None
    channel_id: int
    user_id: int
    payload: dict[str, Any]
    created_at: float
    deadline: float
    token_expires: float
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[DiscordAPIError] = field(default_factory=list)
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    modal: dict[str, Any] | None = None
    # clicks (and modals opened from them): the message the component is on
    message_id: int | None = None
    custom_id: str | None = None
    # a modal's submission: the command or click that opened the modal
    opened_by: InteractionHandle | None = None

    @property
    def responded(self) -> bool:
        return bool(self.callbacks)

    @property
    def deferred(self) -> bool:
        return bool(self.callbacks) and self.callbacks[0]["type"] in (
            DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
            DEFERRED_UPDATE_MESSAGE,
        )

    def expired(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return not self.responded and now > self.deadline

    def _message(self, message_id: int | None) -> dict[str, Any] | None:
        if message_id is None:
            return None
        message = self.world.store.messages.get(message_id)
        if message is None or message.deleted:
            return None
        return self.world.message_payload(message)

    @property
    def followups(self) -> list[dict[str, Any]]:
        return [m for m in (self._message(i) for i in self.followup_ids) if m is not None]

    async def response(
        self,
        *,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """The first callback the bot sent: ``{"type": ..., "data": ..., "time": ...}``."""
        return await self.world.wait_for(
            lambda: self.callbacks[0] if self.callbacks else None,
            timeout=timeout,
            what=f"a response to interaction {self.id}",
        )

    async def original(
        self,
        *,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """The original response message once it matches (default: no longer loading)."""

        def check() -> dict[str, Any] | None:
            message = self._message(self.original_message_id)
            if message is None:
                return None
            if predicate is None:
                return None if message["flags"] & FLAG_LOADING else message
            return message if predicate(message) else None

        return await self.world.wait_for(
            check, timeout=timeout, what=f"the original response of interaction {self.id}"
        )

    async def followup(
        self,
        index: int = 0,
        *,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """The ``index``-th follow-up message (0-based)."""

        def check() -> dict[str, Any] | None:
            if len(self.followup_ids) <= index:
                return None
            return self._message(self.followup_ids[index])

        return await self.world.wait_for(
            check, timeout=timeout, what=f"follow-up #{index} of interaction {self.id}"
        )

    async def submit_modal(self, values: dict[str, str]) -> InteractionHandle:
        """Answer the modal the bot opened, as the same user (a MODAL_SUBMIT interaction)."""
        if self.modal is None:
            raise RuntimeError(f"interaction {self.id} did not open a modal")
        return await self.world.interactions.submit_modal(self, values)
