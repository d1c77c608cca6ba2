"""REST handlers for the bot and its application: gateway URLs, users and DMs, commands."""

from __future__ import annotations

from typing import Any

from tests.discord_emulator import app_payloads, payloads
from tests.discord_emulator.errors import DiscordAPIError, form_error
from tests.discord_emulator.rest.handlers import ApiRequest, Handlers, Reply


class ApplicationHandlers(Handlers):
    """/gateway, /users, /applications."""

    # -- gateway, users, application ------------------------------------------

    async def get_gateway(self, request: ApiRequest) -> Any:
        return {"url": self.world.gateway_url}

    async def get_gateway_bot(self, request: ApiRequest) -> Any:
        return {
            "url": self.world.gateway_url,
            "shards": self.world.recommended_shards,
            "session_start_limit": {
                "total": 1000,
                "remaining": 1000 - self.world.gateway.identify_count,
                "reset_after": 14400000,
                "max_concurrency": self.world.max_concurrency,
            },
        }

    async def get_me(self, request: ApiRequest) -> Any:
        me = payloads.user(self.world.bot_user)
        me.update(
            {"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US", "bio": ""}
        )
        return me

    async def get_user(self, request: ApiRequest) -> Any:
        return payloads.user(self.world.store.user(int(request.params["user_id"])))

    async def open_dm(self, request: ApiRequest) -> Any:
        """POST /users/@me/channels: the bot's DM channel with ``recipient_id`` (get or create)."""
        recipient = request.body().get("recipient_id")
        if recipient is None:
            raise form_error("recipient_id", "BASE_TYPE_REQUIRED", "This field is required")
        try:
            user_id = int(recipient)
        except (TypeError, ValueError):
            raise form_error(
                "recipient_id", "NUMBER_TYPE_COERCE", f'Value "{recipient}" is not snowflake.'
            ) from None
        channel = self.world.dm_channel(user_id)
        return payloads.channel(channel, store=self.world.store)

    async def get_application(self, request: ApiRequest) -> Any:
        return app_payloads.application(
            app_id=self.world.application_id,
            bot=self.world.bot_user,
            owner=self.world.app_owner,
            flags=self.world.application_flags,
            guild_count=len(self.world.store.guilds),
        )

    # -- application commands -------------------------------------------------

    @staticmethod
    def _scope(request: ApiRequest) -> int | None:
        guild_id = request.params.get("guild_id")
        return int(guild_id) if guild_id is not None else None

    async def list_commands(self, request: ApiRequest) -> Any:
        self._app_id(request)
        return [
            app_payloads.command(c) for c in self.world.command_registry.list(self._scope(request))
        ]

    async def put_commands(self, request: ApiRequest) -> Any:
        self._app_id(request)
        commands = self.world.command_registry.bulk_overwrite(
            self._scope(request), request.json or []
        )
        return [app_payloads.command(c) for c in commands]

    async def post_command(self, request: ApiRequest) -> Any:
        self._app_id(request)
        command = self.world.command_registry.upsert(self._scope(request), request.body())
        return Reply(201, app_payloads.command(command))

    async def get_command(self, request: ApiRequest) -> Any:
        self._app_id(request)
        command = self.world.command_registry.get(
            self._scope(request), int(request.params["command_id"])
        )
        return app_payloads.command(command)

    async def patch_command(self, request: ApiRequest) -> Any:
        self._app_id(request)
        command = self.world.command_registry.get(
            self._scope(request), int(request.params["command_id"])
        )
        body = {**command.body, **request.body()}
        updated = self.world.command_registry.upsert(self._scope(request), body)
        return app_payloads.command(updated)

    async def delete_command(self, request: ApiRequest) -> Any:
        self._app_id(request)
        self.world.command_registry.delete(self._scope(request), int(request.params["command_id"]))
        return None

    def _app_id(self, request: ApiRequest) -> None:
        if int(request.params["app_id"]) != self.world.application_id:
            raise DiscordAPIError(
                403, 20012, "You are not authorized to perform this action on this application"
            )
