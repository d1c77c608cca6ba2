"""REST handlers for interactions: the callback and the interaction's webhook messages."""

from __future__ import annotations

from typing import Any

from tests.discord_emulator.rest.handlers import ApiRequest, Handlers
from tests.discord_emulator.validation import INTERACTION_FLAGS


class InteractionHandlers(Handlers):
    """/interactions/{id}/{token}/callback and /webhooks/{id}/{token}/..."""

    # -- interactions and their webhooks ------------------------------------------

    async def callback(self, request: ApiRequest) -> Any:
        result = await self.world.interactions.callback(
            int(request.params["interaction_id"]),
            request.params["token"],
            request.body(),
            request.files,
            with_response=request.flag("with_response"),
        )
        return result  # None -> 204, as Discord answers without ?with_response

    async def execute_webhook(self, request: ApiRequest) -> Any:
        handle = self.world.interactions.by_webhook(
            int(request.params["webhook_id"]), request.params["token"]
        )
        message = await self.world.interactions.followup(handle, request.body(), request.files)
        if request.flag("wait"):
            return self._message_payload(message)
        return None

    async def get_webhook_message(self, request: ApiRequest) -> Any:
        handle = self.world.interactions.by_webhook(
            int(request.params["webhook_id"]), request.params["token"]
        )
        return self._message_payload(
            self.world.interactions.webhook_message(handle, request.params["message_id"])
        )

    async def patch_webhook_message(self, request: ApiRequest) -> Any:
        handle = self.world.interactions.by_webhook(
            int(request.params["webhook_id"]), request.params["token"]
        )
        message = self.world.interactions.webhook_message(handle, request.params["message_id"])
        await self.world.edit_message_body(
            message, request.body(), request.files, allow_flags=INTERACTION_FLAGS
        )
        self.world.notify()
        return self._message_payload(message)

    async def delete_webhook_message(self, request: ApiRequest) -> Any:
        handle = self.world.interactions.by_webhook(
            int(request.params["webhook_id"]), request.params["token"]
        )
        message = self.world.interactions.webhook_message(handle, request.params["message_id"])
        await self.world.remove_message(message)
        return None
