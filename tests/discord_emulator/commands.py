"""Application commands: validating a sync, and turning a test's call into interaction data.

A sync is checked the way Discord checks it (names, descriptions, option order), since
a command tree Discord would refuse must fail here, not in production. An invocation
is built only from what the bot synced, so a command the bot never synced cannot be
invoked, just as no user could.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable
from typing import Any

from tests.discord_emulator.errors import (
    UNKNOWN_APPLICATION_COMMAND,
    form_error,
    max_length,
    not_found,
)
from tests.discord_emulator.state import Channel, Command, Guild, Store

log = logging.getLogger(__name__)

CHAT_INPUT = 1
# Option types
SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
STRING = 3
INTEGER = 4
BOOLEAN = 5
USER = 6
CHANNEL = 7
ROLE = 8
MENTIONABLE = 9
NUMBER = 10
ATTACHMENT = 11

NAME_PATTERN = re.compile(r"^[-_'\w]{1,32}$")


def _validate_name(name: Any, path: str, *, chat_input: bool) -> None:
    if not isinstance(name, str) or not name:
        raise form_error(f"{path}.name", "BASE_TYPE_REQUIRED", "This field is required")
    if len(name) > 32:
        raise max_length(f"{path}.name", 32)
    if chat_input and (not NAME_PATTERN.match(name) or name != name.lower()):
        raise form_error(
            f"{path}.name",
            "APPLICATION_COMMAND_INVALID_NAME",
            f"Command name is invalid: {name!r}",
        )


def _validate_description(body: dict[str, Any], path: str) -> None:
    description = body.get("description")
    if not isinstance(description, str) or not 1 <= len(description) <= 100:
        raise form_error(
            f"{path}.description",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 100 in length.",
        )


def _validate_options(options: list[dict[str, Any]], path: str) -> None:
    if len(options) > 25:
        raise max_length(f"{path}.options", 25)
    seen_optional = False
    names: set[str] = set()
    for i, option in enumerate(options):
        opath = f"{path}.options.{i}"
        _validate_name(option.get("name"), opath, chat_input=True)
        _validate_description(option, opath)
        if option["name"] in names:
            raise form_error(
                f"{opath}.name", "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "Duplicate name"
            )
        names.add(option["name"])
        if option.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP):
            _validate_options(option.get("options") or [], opath)
            continue
        if option.get("required"):
            if seen_optional:
                raise form_error(
                    f"{opath}.required",
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            seen_optional = True
        if len(option.get("choices") or []) > 25:
            raise max_length(f"{opath}.choices", 25)


def validate_command_body(body: Any, index: int) -> dict[str, Any]:
    """One command of a bulk overwrite; raises a 50035 naming ``{index}.field``."""
    path = str(index)
    if not isinstance(body, dict):
        raise form_error(path, "MODEL_TYPE_CONVERT", "Only dictionaries may be used.")
    ctype = body.get("type", CHAT_INPUT)
    _validate_name(body.get("name"), path, chat_input=ctype == CHAT_INPUT)
    if ctype == CHAT_INPUT:
        _validate_description(body, path)
        _validate_options(body.get("options") or [], path)
    return body


def _find_option(options: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((o for o in options if o.get("name") == name), None)


def _resolve_value(
    spec: dict[str, Any],
    value: Any,
    *,
    store: Store,
    guild: Guild | None,
    resolved: dict[str, dict[str, Any]],
    payloads: Any,
) -> Any:
    otype = spec.get("type")
    name = spec["name"]
    if otype == STRING:
        if not isinstance(value, str):
            raise TypeError(f"option {name!r} expects a string, got {value!r}")
        return value
    if otype == INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"option {name!r} expects an int, got {value!r}")
        return value
    if otype == NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"option {name!r} expects a number, got {value!r}")
        return value
    if otype == BOOLEAN:
        if not isinstance(value, bool):
            raise TypeError(f"option {name!r} expects a bool, got {value!r}")
        return value
    target = int(getattr(value, "id", value))
    if otype in (USER, MENTIONABLE) and target in store.users:
        resolved.setdefault("users", {})[str(target)] = payloads.user(store.users[target])
        if guild is not None and target in guild.members:
            resolved.setdefault("members", {})[str(target)] = payloads.member(
                guild.members[target],
                store,
                with_user=False,
                permissions=store.permissions(guild.id, target),
            )
        return str(target)
    if otype in (ROLE, MENTIONABLE) and guild is not None and target in guild.roles:
        resolved.setdefault("roles", {})[str(target)] = payloads.role(guild.roles[target])
        return str(target)
    if otype == CHANNEL and target in store.channels:
        channel: Channel = store.channels[target]
        entry = payloads.channel(channel)
        entry["permissions"] = str((1 << 53) - 1)
        resolved.setdefault("channels", {})[str(target)] = entry
        return str(target)
    raise TypeError(f"option {name!r} (type {otype}) cannot resolve {value!r}")


def build_options(
    spec_options: list[dict[str, Any]],
    supplied: dict[str, Any],
    *,
    store: Store,
    guild: Guild | None,
    payloads: Any,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Interaction ``data.options`` and ``data.resolved`` for the supplied values."""
    resolved: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for name in supplied:
        if _find_option(spec_options, name) is None:
            known = [o["name"] for o in spec_options]
            raise KeyError(f"unknown option {name!r}; the synced command has {known}")
    for spec in spec_options:
        name = spec["name"]
        if name not in supplied:
            if spec.get("required"):
                raise KeyError(f"required option {name!r} missing")
            continue
        value = _resolve_value(
            spec, supplied[name], store=store, guild=guild, resolved=resolved, payloads=payloads
        )
        choices = spec.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise ValueError(f"{value!r} is not one of the choices of option {name!r}")
        out.append({"name": name, "type": spec["type"], "value": value})
    return out, resolved


def nest_subcommands(
    body: dict[str, Any], path: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Walk "group sub" to the leaf's option specs; return (leaf specs, wrapper chain)."""
    specs: list[dict[str, Any]] = body.get("options") or []
    chain: list[dict[str, Any]] = []
    for part in path:
        option = _find_option(specs, part)
        if option is None or option.get("type") not in (SUB_COMMAND, SUB_COMMAND_GROUP):
            raise KeyError(f"no subcommand {part!r} in command {body.get('name')!r}")
        chain.append({"name": part, "type": option["type"], "options": []})
        specs = option.get("options") or []
    return specs, chain


class CommandRegistry:
    """The application's synced commands, global and per guild, with Discord's ids.

    A bulk overwrite keeps the id of a command that keeps its name and type, as Discord
    does, so a bot that re-syncs on every start does not churn command ids.
    """

    def __init__(self, store: Store, application_id: int, on_change: Callable[[], None]) -> None:
        self.store = store
        self.application_id = application_id
        self._on_change = on_change

    def list(self, guild_id: int | None = None) -> list[Command]:
        """Synced commands: global ones (``guild_id=None``) or one guild's."""
        return sorted(
            (c for c in self.store.commands.values() if c.guild_id == guild_id), key=lambda c: c.id
        )

    def bulk_overwrite(self, guild_id: int | None, bodies: Any) -> list[Command]:
        if guild_id is not None:
            self.store.guild(guild_id)
        if not isinstance(bodies, list):
            raise form_error("_root", "BASE_TYPE_LIST", "Must be a list.")
        seen: set[tuple[str, int]] = set()
        for i, body in enumerate(bodies):
            validate_command_body(body, i)
            key = (body["name"], int(body.get("type", 1)))
            if key in seen:
                raise form_error(
                    str(i), "APPLICATION_COMMANDS_DUPLICATE_NAME", f"Duplicate name {key[0]!r}"
                )
            seen.add(key)
        existing = {(c.name, c.type): c for c in self.list(guild_id)}
        result = []
        for body in bodies:
            ctype = int(body.get("type", 1))
            old = existing.pop((body["name"], ctype), None)
            command = Command(
                id=old.id if old else self.store.next_id(),
                application_id=self.application_id,
                guild_id=guild_id,
                name=body["name"],
                type=ctype,
                body=copy.deepcopy(body),
                version=self.store.next_id(),
            )
            self.store.commands[command.id] = command
            result.append(command)
        for stale in existing.values():
            del self.store.commands[stale.id]
        log.info(
            "commands synced (%s): %s",
            f"guild {guild_id}" if guild_id else "global",
            [c.name for c in result],
        )
        self._on_change()
        return result

    def upsert(self, guild_id: int | None, body: Any) -> Command:
        validate_command_body(body, 0)
        key = (body["name"], int(body.get("type", 1)))
        others = [c.body for c in self.list(guild_id) if (c.name, c.type) != key]
        commands = self.bulk_overwrite(guild_id, [*others, body])
        return next(c for c in commands if (c.name, c.type) == key)

    def get(self, guild_id: int | None, command_id: int) -> Command:
        command = self.store.commands.get(int(command_id))
        if command is None or command.guild_id != guild_id:
            raise not_found(UNKNOWN_APPLICATION_COMMAND, "application command")
        return command

    def delete(self, guild_id: int | None, command_id: int) -> None:
        del self.store.commands[self.get(guild_id, command_id).id]
        self._on_change()

    def find_chat_input(self, guild_id: int, name: str) -> Command:
        """The slash command a user in ``guild_id`` would see under ``name``."""
        for scope in (guild_id, None):
            for command in self.list(scope):
                if command.name == name and command.type == CHAT_INPUT:
                    return command
        synced = [c.name for c in self.list(guild_id)] + [c.name for c in self.list(None)]
        raise LookupError(f"slash command {name!r} was never synced; synced commands: {synced}")
