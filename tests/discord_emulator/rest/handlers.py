"""What a REST handler takes and gives (``ApiRequest``, ``Reply``) and the base it shares.

Each resource's handlers are a ``Handlers`` subclass in this package (``application``,
``guilds``, ``channels``, ``messages``, ``interactions``); ``routing.RestApi`` combines
them and routes requests to them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.discord_emulator import message_payloads
from tests.discord_emulator.errors import form_error
from tests.discord_emulator.state import UploadedFile

if TYPE_CHECKING:
    from tests.discord_emulator.world.core import DiscordWorld


@dataclass
class ApiRequest:
    method: str
    path: str
    params: dict[str, str]
    query: Mapping[str, str]
    json: Any
    files: list[UploadedFile] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        """The JSON object body (``{}`` when there is none); a non-object is a form error."""
        if self.json is None:
            return {}
        if not isinstance(self.json, dict):
            raise form_error("_root", "MODEL_TYPE_CONVERT", "Only dictionaries may be used.")
        return self.json

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("1", "true")


@dataclass
class Reply:
    status: int
    body: Any = None


Handler = Callable[[ApiRequest], Awaitable[Any]]


class Handlers:
    """Base of the per-resource handler classes: the world they act on."""

    world: DiscordWorld

    def _message_payload(self, message: Any) -> dict[str, Any]:
        return message_payloads.message(message, self.world.store, url_base=self.world.url_base)
