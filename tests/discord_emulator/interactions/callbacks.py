"""The interaction callback: the bot's first answer, under Discord's rules.

One first response, within the deadline, of a type valid for the interaction; messages
it makes carry ``interaction_metadata``. For a component, ``UPDATE_MESSAGE`` /
``DEFERRED_UPDATE_MESSAGE`` answers act on the message the button is on. A mixin of
``service.InteractionService``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from tests.discord_emulator import payloads
from tests.discord_emulator.errors import (
    ALREADY_ACKNOWLEDGED,
    UNKNOWN_INTERACTION,
    UNKNOWN_MESSAGE,
    DiscordAPIError,
    form_error,
)
from tests.discord_emulator.interactions.model import (
    APPLICATION_COMMAND,
    CHANNEL_MESSAGE_WITH_SOURCE,
    DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
    DEFERRED_UPDATE_MESSAGE,
    MESSAGE_COMPONENT,
    MODAL,
    MODAL_SUBMIT,
    UPDATE_MESSAGE,
    InteractionHandle,
)
from tests.discord_emulator.state import CHAT_INPUT_COMMAND, DEFAULT_MESSAGE, Message, UploadedFile
from tests.discord_emulator.validation import (
    FLAG_EPHEMERAL,
    FLAG_IS_COMPONENTS_V2,
    FLAG_LOADING,
    INTERACTION_FLAGS,
    validate_components,
    validate_embeds,
    validate_message_body,
)

log = logging.getLogger(__name__)


class CallbackOps:
    """Callbacks and the messages they make: a mixin of ``service.InteractionService``."""

    def _metadata(self, handle: InteractionHandle, *, followup: bool) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "id": str(handle.id),
            "type": handle.type,
            "user": payloads.user(self.world.store.user(handle.user_id)),
            "authorizing_integration_owners": {"0": str(handle.guild_id or 0)},
        }
        if handle.command is not None:
            metadata["name"] = handle.command.name
            metadata["command_type"] = handle.command.type
        if handle.type == MESSAGE_COMPONENT and handle.message_id is not None:
            metadata["interacted_message_id"] = str(handle.message_id)
        if handle.opened_by is not None:
            metadata["triggering_interaction_metadata"] = self._metadata(
                handle.opened_by, followup=False
            )
        original = self._live_message(handle.original_message_id)
        if followup and original is not None and original.interaction_id == handle.id:
            metadata["original_response_message_id"] = str(original.id)
        return metadata

    def _message(
        self,
        handle: InteractionHandle,
        data: dict[str, Any],
        files: list[UploadedFile],
        *,
        flags: int,
        followup: bool = False,
    ) -> Message:
        channel = self.world.store.channel(handle.channel_id)
        mtype: int | None = CHAT_INPUT_COMMAND
        reference = None
        if handle.type == MESSAGE_COMPONENT:
            mtype = DEFAULT_MESSAGE
            if not followup and self._live_message(handle.message_id) is not None:
                # The response to a click is shown as a reply to the message clicked.
                mtype = None
                reference = {"message_id": str(handle.message_id), "fail_if_not_exists": False}
        return self.world.new_message(
            channel,
            self.world.bot_user.id,
            content=data.get("content") or "",
            embeds=validate_embeds(data.get("embeds")),
            attachments=self.world.build_attachments(data, files),
            components=validate_components(
                data.get("components"), v2=bool(flags & FLAG_IS_COMPONENTS_V2)
            ),
            flags=flags,
            reference=reference,
            allowed_mentions=data.get("allowed_mentions"),
            tts=bool(data.get("tts")),
            mtype=mtype,
            webhook_id=self.world.application_id,
            interaction_metadata=self._metadata(handle, followup=followup),
            interaction_id=handle.id,
        )

    async def callback(
        self,
        interaction_id: int,
        token: str,
        body: dict[str, Any],
        files: list[UploadedFile],
        *,
        with_response: bool,
    ) -> dict[str, Any] | None:
        handle = self.handles.get(int(interaction_id))
        if handle is None or handle.token != token:
            raise DiscordAPIError(404, UNKNOWN_INTERACTION, "Unknown interaction")
        if handle.responded:
            error = DiscordAPIError(
                400, ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged."
            )
            handle.rejected.append(error)
            raise error
        if handle.expired():
            error = DiscordAPIError(404, UNKNOWN_INTERACTION, "Unknown interaction")
            handle.rejected.append(error)
            log.warning(
                "interaction %s answered %.2fs after its %.1fs deadline",
                handle.id,
                time.monotonic() - handle.deadline,
                self.world.interaction_deadline,
            )
            self.world.notify()
            raise error
        ctype = body.get("type")
        data = body.get("data") or {}
        valid = {
            APPLICATION_COMMAND: (
                CHANNEL_MESSAGE_WITH_SOURCE,
                DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
                MODAL,
            ),
            MESSAGE_COMPONENT: (
                CHANNEL_MESSAGE_WITH_SOURCE,
                DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
                DEFERRED_UPDATE_MESSAGE,
                UPDATE_MESSAGE,
                MODAL,
            ),
            MODAL_SUBMIT: (
                CHANNEL_MESSAGE_WITH_SOURCE,
                DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
                DEFERRED_UPDATE_MESSAGE,
                UPDATE_MESSAGE,
            ),
        }[handle.type]
        if ctype not in valid:
            raise form_error(
                "type", "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type"
            )
        message: Message | None = None
        updated: Message | None = None  # type 6/7: the message the component is on
        if ctype in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE) and handle.message_id is not None:
            updated = self._live_message(handle.message_id)
            if updated is None:
                raise DiscordAPIError(404, UNKNOWN_MESSAGE, "Unknown Message")
            if ctype == UPDATE_MESSAGE:
                # Validated (and refused with 50035) before the interaction is acknowledged.
                await self.world.edit_message_body(
                    updated, data, files, allow_flags=INTERACTION_FLAGS
                )
        if ctype == CHANNEL_MESSAGE_WITH_SOURCE:
            validate_message_body(data, file_count=len(files), allow_flags=INTERACTION_FLAGS)
            message = self._message(handle, data, files, flags=data.get("flags") or 0)
        elif ctype == DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            flags = FLAG_LOADING | ((data.get("flags") or 0) & FLAG_EPHEMERAL)
            message = self._message(handle, {}, [], flags=flags)
        elif ctype == MODAL:
            for key in ("custom_id", "title", "components"):
                if not data.get(key):
                    raise form_error(f"data.{key}", "BASE_TYPE_REQUIRED", "This field is required")
            handle.modal = data
        handle.callbacks.append({"type": ctype, "data": data, "time": time.monotonic()})
        if message is not None:
            handle.original_message_id = message.id
            await self.world.dispatch_message("MESSAGE_CREATE", message)
        elif updated is not None:
            # For a component, "@original" is the message the component is on.
            handle.original_message_id = updated.id
        self.world.notify()
        if not with_response:
            return None
        interaction: dict[str, Any] = {"id": str(handle.id), "type": handle.type}
        answered = message if message is not None else updated
        if answered is not None:
            interaction["response_message_id"] = str(answered.id)
            interaction["response_message_loading"] = bool(answered.flags & FLAG_LOADING)
            interaction["response_message_ephemeral"] = bool(answered.flags & FLAG_EPHEMERAL)
        result: dict[str, Any] = {"interaction": interaction}
        # Discord describes a resource only for a message it made or changed (types 4 and
        # 7); a defer (5, 6) or a modal (9) answers with the interaction alone.
        if ctype == CHANNEL_MESSAGE_WITH_SOURCE and message is not None:
            result["resource"] = {"type": ctype, "message": self._message_object(message)}
        elif ctype == UPDATE_MESSAGE and updated is not None:
            result["resource"] = {"type": ctype, "message": self._message_object(updated)}
        return result
