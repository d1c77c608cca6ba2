"""``InteractionService``: interactions end to end, keyed by id and by token.

It keeps every ``InteractionHandle`` and the helpers its mixins share (the live message a
component is on, who an ephemeral message is shown to); the work is in ``create``,
``callbacks`` and ``webhooks``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.discord_emulator import message_payloads
from tests.discord_emulator.interactions.callbacks import CallbackOps
from tests.discord_emulator.interactions.create import CreateOps
from tests.discord_emulator.interactions.model import InteractionHandle
from tests.discord_emulator.interactions.webhooks import WebhookOps
from tests.discord_emulator.state import Message
from tests.discord_emulator.validation import FLAG_EPHEMERAL

if TYPE_CHECKING:
    from tests.discord_emulator.world.core import DiscordWorld


class InteractionService(CreateOps, CallbackOps, WebhookOps):
    """Interactions end to end: INTERACTION_CREATE out, callbacks and webhooks back in.

    Keyed by interaction id (callbacks) and by token (webhooks), with Discord's rules:
    one first response within the deadline, follow-ups only after it, tokens that expire.
    """

    def __init__(self, world: DiscordWorld) -> None:
        self.world = world
        self.handles: dict[int, InteractionHandle] = {}

    def _live_message(self, message_id: int | None) -> Message | None:
        if message_id is None:
            return None
        message = self.world.store.messages.get(message_id)
        return None if message is None or message.deleted else message

    def _message_object(self, message: Message) -> dict[str, Any]:
        """The message a component is on, as an interaction's ``message`` field carries it."""
        return message_payloads.message(message, self.world.store, url_base=self.world.url_base)

    @staticmethod
    def shown_to(message: Message) -> int | None:
        """The one user an ephemeral message was shown to (None: everyone in the channel)."""
        if not message.flags & FLAG_EPHEMERAL or message.interaction_metadata is None:
            return None
        return int(message.interaction_metadata["user"]["id"])
