"""Settings: the environment, then ``.env``, validated once at start-up.

An operator's mistake must read as one line naming the setting, the value and why, never
as a traceback, so every problem becomes a ``ConfigError`` with such a line.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.discord.endpoints import DEFAULT_API_BASE, DEFAULT_GATEWAY_URL, resolve_discord_endpoints
from bot.numbers import too_long
from memory import FsyncPolicy
from memory.records.models import validate_snowflake
from memory.stores.redis.urls import check_cluster_url, check_redis_url, shown_url

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "ConfigError",
    "Settings",
    "load_settings",
    "misspelled_settings",
    "setting_names",
]

DEFAULT_SYSTEM_PROMPT = (
    "You are Echo, a friendly and helpful assistant in a Discord server. You talk with people "
    "in a thread. Messages from people start with their display name in square brackets. "
    "Answer clearly and concisely, using Discord markdown where it helps. You remember what "
    "was said earlier in this server; use that memory when it is relevant and say so."
)

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

SETTING_PREFIXES = ("ECHO_", "LLM_", "DISCORD_", "REDIS_")
"""A variable starting with one of these is meant for Echo: if it is not a setting, say so."""


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line meant for the operator."""


class Settings(BaseModel):
    """Every setting of ``.env.example``, by its environment variable name."""

    # allow_inf_nan=False: "inf" or "nan" parse as floats, and an infinite timeout or interval
    # is a setting that silently never fires.
    model_config = ConfigDict(
        frozen=True, extra="ignore", populate_by_name=True, allow_inf_nan=False
    )

    discord_token: str = Field("", alias="DISCORD_TOKEN")
    discord_api_base: str = Field(DEFAULT_API_BASE, alias="DISCORD_API_BASE")
    discord_gateway_url: str = Field(DEFAULT_GATEWAY_URL, alias="DISCORD_GATEWAY_URL")
    dev_guild_id: str | None = Field(None, alias="DEV_GUILD_ID")
    discord_connect_timeout_seconds: Annotated[float, Field(gt=0)] = Field(
        20.0, alias="DISCORD_CONNECT_TIMEOUT_SECONDS"
    )

    data_dir: Path = Field(Path("./data"), alias="ECHO_DATA_DIR")
    idle_seconds: Annotated[float, Field(gt=0)] = Field(300.0, alias="ECHO_IDLE_SECONDS")
    journal_fsync: FsyncPolicy = Field(FsyncPolicy.EVERYSEC, alias="ECHO_JOURNAL_FSYNC")
    store: Literal["json", "redis"] = Field("json", alias="ECHO_STORE")
    recall_reranker: Literal["none", "semantic"] = Field("none", alias="ECHO_RECALL_RERANKER")
    redis_url: str = Field("redis://127.0.0.1:6379/0", alias="REDIS_URL")
    redis_prefix: str = Field("echo", alias="ECHO_REDIS_PREFIX")
    redis_cluster: bool = Field(False, alias="ECHO_REDIS_CLUSTER")

    llm_provider: Literal["echo", "openai"] = Field("echo", alias="LLM_PROVIDER")
    llm_base_url: str | None = Field(None, alias="LLM_BASE_URL")
    llm_api_key: str | None = Field(None, alias="LLM_API_KEY")
    llm_model: str | None = Field(None, alias="LLM_MODEL")
    llm_timeout_seconds: Annotated[float, Field(gt=0)] = Field(60.0, alias="LLM_TIMEOUT_SECONDS")
    llm_reasoning_open: bool = Field(False, alias="LLM_REASONING_OPEN")

    system_prompt: str = Field(DEFAULT_SYSTEM_PROMPT, alias="ECHO_SYSTEM_PROMPT")
    max_context_tokens: Annotated[int, Field(ge=500)] = Field(8000, alias="ECHO_MAX_CONTEXT_TOKENS")
    max_tool_rounds: Annotated[int, Field(ge=0, le=20)] = Field(4, alias="ECHO_MAX_TOOL_ROUNDS")
    show_thinking: bool = Field(False, alias="ECHO_SHOW_THINKING")
    thread_replies: Literal["all", "requester", "mention"] = Field(
        "all", alias="ECHO_THREAD_REPLIES"
    )
    user_cooldown_seconds: Annotated[float, Field(ge=0)] = Field(
        2.0, alias="ECHO_USER_COOLDOWN_SECONDS"
    )
    max_concurrent_replies: Annotated[int, Field(ge=1)] = Field(
        4, alias="ECHO_MAX_CONCURRENT_REPLIES"
    )
    max_reply_seconds: Annotated[float, Field(gt=0)] = Field(180.0, alias="ECHO_MAX_REPLY_SECONDS")
    max_reply_chars: Annotated[int, Field(gt=0)] = Field(12000, alias="ECHO_MAX_REPLY_CHARS")
    max_attachment_bytes: Annotated[int, Field(ge=0)] = Field(
        100_000, alias="ECHO_MAX_ATTACHMENT_BYTES"
    )
    memory_inactivity_seconds: Annotated[float, Field(ge=0)] = Field(
        7200.0, alias="ECHO_MEMORY_INACTIVITY_SECONDS"
    )
    memory_auto: bool = Field(False, alias="ECHO_MEMORY_AUTO")
    memory_interval_seconds: Annotated[float, Field(gt=0)] = Field(
        3600.0, alias="ECHO_MEMORY_INTERVAL_SECONDS"
    )
    log_level: str = Field("INFO", alias="ECHO_LOG_LEVEL")
    catch_up_hours: Annotated[float, Field(ge=0)] = Field(24.0, alias="ECHO_CATCH_UP_HOURS")
    shard_count: Annotated[int, Field(ge=1)] | None = Field(None, alias="ECHO_SHARD_COUNT")
    shard_ids: tuple[int, ...] | None = Field(None, alias="ECHO_SHARD_IDS")

    # Where the settings came from, for start-up to tell the operator; not settings themselves.
    env_file: Path | None = Field(None, exclude=True)
    """The ``.env`` that was read (absolute), or None when none was."""
    notices: tuple[str, ...] = Field((), exclude=True)
    """One line per variable that looks like a setting and is not one."""

    @field_validator("discord_api_base")
    @classmethod
    def _api_base(cls, value: str) -> str:
        return resolve_discord_endpoints(api_base=value).api_base

    @field_validator("discord_gateway_url")
    @classmethod
    def _gateway(cls, value: str) -> str:
        return resolve_discord_endpoints(gateway_url=value).gateway_url

    @field_validator("dev_guild_id")
    @classmethod
    def _guild(cls, value: str | None) -> str | None:
        return None if value is None else validate_snowflake(value, "DEV_GUILD_ID")

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}")
        return level

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        value = value.strip()
        check_redis_url(value)
        return value

    @field_validator("redis_prefix")
    @classmethod
    def _redis_prefix(cls, value: str) -> str:
        value = value.strip()
        if not value or any(c in value for c in "{}: \t\n*?[]"):
            raise ValueError("must be a non-empty word without spaces, ':', '{', '}' or globs")
        return value

    @model_validator(mode="after")
    def _redis_cluster(self) -> Settings:
        if self.redis_cluster:
            try:
                check_cluster_url(self.redis_url)
            except ValueError as exc:
                raise ValueError(f"REDIS_URL with ECHO_REDIS_CLUSTER=true: {exc}") from None
        return self

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _shard_ids(cls, value: Any) -> Any:
        return parse_shard_ids(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _shards(self) -> Settings:
        if self.shard_ids is None:
            return self
        if self.shard_count is None:
            raise ValueError(
                "ECHO_SHARD_IDS needs ECHO_SHARD_COUNT, the total number of shards, the same in "
                "every process"
            )
        beyond = [i for i in self.shard_ids if i >= self.shard_count]
        if beyond:
            raise ValueError(
                f"ECHO_SHARD_IDS names shard {beyond[0]}, but ECHO_SHARD_COUNT={self.shard_count} "
                f"numbers them 0 to {self.shard_count - 1}"
            )
        if self.store != "redis" and not self.runs_every_shard:
            raise ValueError(
                f"ECHO_SHARD_IDS runs {len(self.shard_ids)} of {self.shard_count} shards, so other "
                "processes run the rest, and processes share conversations only through Redis: "
                "set ECHO_STORE=redis (see README, 'Running on Redis')"
            )
        return self

    @property
    def runs_every_shard(self) -> bool:
        """This process serves every shard (the only process of the bot)."""
        return self.shard_ids is None or set(self.shard_ids) == set(range(self.shard_count or 1))

    @property
    def runs_shard_zero(self) -> bool:
        """Once-per-bot duties (syncing slash commands) belong to the process of shard 0."""
        return self.shard_ids is None or 0 in self.shard_ids

    @field_validator("*")
    @classmethod
    def _not_too_long(cls, value: Any, info: ValidationInfo) -> Any:
        # Every duration setting, present and future, by its name: ..._SECONDS or ..._HOURS.
        alias = cls.model_fields[info.field_name or ""].alias or ""
        unit = alias.rpartition("_")[2].lower()
        if isinstance(value, float) and unit in ("seconds", "hours"):
            why = too_long(value, unit)
            if why is not None:
                raise ValueError(why)
        return value

    @field_validator(
        "journal_fsync", "llm_provider", "thread_replies", "store", "recall_reranker", mode="before"
    )
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    def require_token(self) -> str:
        if not self.discord_token.strip():
            raise ConfigError(
                "DISCORD_TOKEN is not set: copy .env.example to .env and put your bot token "
                "there (see README.md, 'Create the Discord application')"
            )
        return self.discord_token.strip()

    def check_reranker(self) -> None:
        if self.recall_reranker == "semantic":
            from memory.recall.encoder import missing_extra

            why = missing_extra()
            if why is not None:
                raise ConfigError(f"ECHO_RECALL_RERANKER=semantic: {why}")

    def check_llm(self) -> None:
        if self.llm_provider == "openai" and not self.llm_model:
            raise ConfigError(
                "LLM_MODEL is not set: a real model needs its name (e.g. LLM_MODEL=gpt-4o-mini "
                "with LLM_API_KEY for OpenAI, or LLM_MODEL=llama3.1 with "
                "LLM_BASE_URL=http://127.0.0.1:11434/v1 for a local Ollama)"
            )


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | os.PathLike[str] | None = ".env"
) -> Settings:
    """Settings from ``environ`` (default: the process environment) over ``env_file``.

    Empty values count as unset, so ``LLM_MODEL=`` in a copied .env.example means "default".
    """
    values: dict[str, str] = {}
    read_file: Path | None = None
    if env_file is not None and Path(env_file).is_file():
        read_file = Path(env_file).resolve()
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    names = setting_names()
    given = {k: v for k, v in values.items() if k in names and v.strip() != ""}
    if "LLM_PROVIDER" not in given and given.keys() & {"LLM_MODEL", "LLM_BASE_URL", "LLM_API_KEY"}:
        # Naming a model, an endpoint or a key means wanting a model: not the offline echo.
        given["LLM_PROVIDER"] = "openai"
    try:
        settings = Settings.model_validate(given)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, given)) from None
    settings.check_llm()
    settings.check_reranker()
    return settings.model_copy(
        update={"env_file": read_file, "notices": tuple(misspelled_settings(values))}
    )


def parse_shard_ids(text: str) -> tuple[int, ...]:
    """``0,1`` or ``0-3`` (or both, ``0-1,4``): the shards this process runs, sorted, once each."""
    ids: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"must be shard numbers like 0,1 or 0-3, got {text!r}")
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise ValueError(f"the range {part!r} runs backwards")
        ids.update(range(first, last + 1))
    if not ids:
        raise ValueError(f"must name at least one shard, got {text!r}")
    return tuple(sorted(ids))


def setting_names() -> frozenset[str]:
    """Every environment variable Echo reads as a setting."""
    return frozenset(field.alias for field in Settings.model_fields.values() if field.alias)


def misspelled_settings(variables: Iterable[str]) -> list[str]:
    """A line for each variable with Echo's prefixes that is no setting, naming the closest.

    A typo in ``.env`` would otherwise be silently ignored and leave the default in force,
    which is the hardest kind of mistake to see.
    """
    names = setting_names()
    lines = []
    for variable in sorted(set(variables)):
        if not variable.startswith(SETTING_PREFIXES) or variable in names:
            continue
        close = difflib.get_close_matches(variable, sorted(names), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else " (see .env.example for the settings)"
        lines.append(f"{variable} is not a setting{hint}")
    return lines


def _one_line(exc: ValidationError, given: Mapping[str, str]) -> str:
    error = exc.errors()[0]
    if not error["loc"]:  # a check across settings: its message names them
        return f"invalid settings: {str(error['msg']).removeprefix('Value error, ')}"
    field = str(error["loc"][0])
    name = Settings.model_fields[field].alias if field in Settings.model_fields else field
    name = name or field
    value = given.get(name, "")
    why = str(error["msg"]).removeprefix("Value error, ")
    shown = "" if name in {"DISCORD_TOKEN", "LLM_API_KEY"} else f"={value!r}"
    if name == "REDIS_URL":
        shown = f"={shown_url(value)!r}"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"invalid setting {name}{shown}: {why}{more}"
