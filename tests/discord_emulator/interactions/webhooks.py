"""Interaction webhooks: the ``@original`` message and follow-ups, reached by the token.

A token answers only after the first response and until it expires; the first follow-up
after a defer fills the still-loading deferred response, as on Discord. A mixin of
``service.InteractionService``.
"""

from __future__ import annotations

import time
from typing import Any

from tests.discord_emulator.errors import (
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    DiscordAPIError,
    not_found,
)
from tests.discord_emulator.interactions.model import InteractionHandle
from tests.discord_emulator.state import Message, UploadedFile
from tests.discord_emulator.validation import FLAG_LOADING, INTERACTION_FLAGS, validate_message_body


class WebhookOps:
    """Webhook messages of an interaction: a mixin of ``service.InteractionService``."""

    def by_webhook(self, webhook_id: int, token: str) -> InteractionHandle:
        """The interaction behind an interaction webhook (app id + interaction token)."""
        handle = None
        if int(webhook_id) == self.world.application_id:
            handle = next((h for h in self.handles.values() if h.token == token), None)
        if handle is None or not handle.responded:
            raise not_found(UNKNOWN_WEBHOOK, "Webhook")
        if time.monotonic() > handle.token_expires:
            raise DiscordAPIError(401, 50027, "Invalid Webhook Token")
        return handle

    def webhook_message(self, handle: InteractionHandle, message_id: str) -> Message:
        if message_id == "@original":
            mid = handle.original_message_id
        else:
            mid = int(message_id) if message_id.isdigit() else None
            if mid != handle.original_message_id and mid not in handle.followup_ids:
                mid = None
        message = self.world.store.messages.get(mid) if mid is not None else None
        if message is None or message.deleted:
            raise DiscordAPIError(404, UNKNOWN_MESSAGE, "Unknown Message")
        return message

    async def followup(
        self, handle: InteractionHandle, body: dict[str, Any], files: list[UploadedFile]
    ) -> Message:
        validate_message_body(body, file_count=len(files), allow_flags=INTERACTION_FLAGS)
        if handle.deferred and handle.original_message_id is not None:
            original = self.world.store.messages.get(handle.original_message_id)
            if original is not None and original.flags & FLAG_LOADING:
                # Discord fills a still-loading deferred response with the first follow-up.
                await self.world.edit_message_body(
                    original, body, files, allow_flags=INTERACTION_FLAGS
                )
                handle.followup_ids.append(original.id)
                self.world.notify()
                return original
        message = self._message(handle, body, files, flags=body.get("flags") or 0, followup=True)
        handle.followup_ids.append(message.id)
        await self.world.dispatch_message("MESSAGE_CREATE", message)
        return message
