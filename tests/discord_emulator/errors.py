"""Discord's JSON errors, raised by handlers and turned into responses by the router.

The codes and messages are Discord's own (https://discord.com/developers/docs/topics/
opcodes-and-status-codes#json), because discord.py surfaces ``code`` and ``text`` to the
bot and bot code branches on them (e.g. 10062 for an expired interaction).
"""

from __future__ import annotations

from typing import Any

UNKNOWN_CHANNEL = 10003
UNKNOWN_GUILD = 10004
UNKNOWN_MEMBER = 10007
UNKNOWN_MESSAGE = 10008
UNKNOWN_USER = 10013
UNKNOWN_WEBHOOK = 10015
UNKNOWN_APPLICATION_COMMAND = 10063
UNKNOWN_INTERACTION = 10062
CANNOT_EXECUTE_ON_DM = 50003
CANNOT_EDIT_OTHERS_MESSAGE = 50005
EMPTY_MESSAGE = 50006
CANNOT_SEND_TO_USER = 50007
INVALID_FORM_BODY = 50035
ALREADY_ACKNOWLEDGED = 40060
THREAD_ALREADY_CREATED = 160004


class DiscordAPIError(Exception):
    """An error response in Discord's shape."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        errors: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def not_found(code: int, what: str) -> DiscordAPIError:
    return DiscordAPIError(404, code, f"Unknown {what}")


def form_error(path: str, code: str, message: str) -> DiscordAPIError:
    """A 50035 "Invalid Form Body" for one field; ``path`` is dotted, e.g. ``embeds.0.title``."""
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        errors = {part: errors}
    return DiscordAPIError(400, INVALID_FORM_BODY, "Invalid Form Body", errors)


def max_length(path: str, limit: int) -> DiscordAPIError:
    return form_error(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
