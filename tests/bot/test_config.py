"""Settings: defaults, .env, and one-line errors naming the setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings, setting_names
from memory import FsyncPolicy

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_setting_with_its_default() -> None:
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z_]+)=", text, re.M))
    assert listed == setting_names()
    from_example = load_settings({}, env_file=ROOT / ".env.example")
    # The file shows the defaults (the values; where they were read from differs).
    assert from_example.model_dump() == load_settings({}, env_file=None).model_dump()


def test_defaults() -> None:
    settings = load_settings({}, env_file=None)
    assert settings.llm_provider == "echo"
    assert settings.data_dir == Path("./data")
    assert settings.idle_seconds == 300
    assert settings.journal_fsync is FsyncPolicy.EVERYSEC
    assert settings.thread_replies == "all"
    assert settings.show_thinking is False
    assert settings.discord_api_base == "https://discord.com/api/v10"


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ECHO_IDLE_SECONDS=10\nLLM_MODEL=from-file\nECHO_LOG_LEVEL=debug\n")
    settings = load_settings({"ECHO_IDLE_SECONDS": "20"}, env_file=env_file)
    assert settings.idle_seconds == 20
    assert settings.llm_model == "from-file"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ECHO_IDLE_SECONDS": "abc"}, "invalid setting ECHO_IDLE_SECONDS='abc'"),
        ({"ECHO_IDLE_SECONDS": "0"}, "ECHO_IDLE_SECONDS='0': Input should be greater than 0"),
        ({"ECHO_JOURNAL_FSYNC": "sometimes"}, "ECHO_JOURNAL_FSYNC='sometimes'"),
        ({"LLM_PROVIDER": "gpt"}, "LLM_PROVIDER='gpt'"),
        ({"LLM_PROVIDER": "openai"}, "LLM_MODEL is not set"),
        ({"DEV_GUILD_ID": "my-server"}, "DEV_GUILD_ID='my-server'"),
        ({"DISCORD_API_BASE": "discord.com"}, "DISCORD_API_BASE"),
        ({"DISCORD_GATEWAY_URL": "https://gateway"}, "ws:// or wss://"),
        ({"ECHO_THREAD_REPLIES": "some"}, "ECHO_THREAD_REPLIES='some'"),
        ({"ECHO_SHOW_THINKING": "maybe"}, "ECHO_SHOW_THINKING='maybe'"),
        ({"ECHO_LOG_LEVEL": "LOUD"}, "ECHO_LOG_LEVEL='LOUD': must be one of"),
        ({"ECHO_MAX_TOOL_ROUNDS": "-1"}, "ECHO_MAX_TOOL_ROUNDS='-1'"),
        ({"ECHO_MAX_REPLY_SECONDS": "0"}, "ECHO_MAX_REPLY_SECONDS='0': Input should be greater"),
        ({"ECHO_MAX_REPLY_SECONDS": "-5"}, "ECHO_MAX_REPLY_SECONDS='-5'"),
        ({"ECHO_MAX_REPLY_CHARS": "0"}, "ECHO_MAX_REPLY_CHARS='0': Input should be greater"),
        ({"ECHO_MAX_REPLY_CHARS": "lots"}, "ECHO_MAX_REPLY_CHARS='lots'"),
    ],
)
def test_bad_settings_are_one_line_naming_them(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env, env_file=None)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_secrets_are_not_echoed_back() -> None:
    settings = load_settings({"DISCORD_TOKEN": "   "}, env_file=None)
    with pytest.raises(ConfigError, match=r"DISCORD_TOKEN is not set.*\.env\.example"):
        settings.require_token()
    # A bad REDIS_URL is shown so the operator can find the mistake, its password masked.
    for url in ("redis://alice:hunter2@127.0.0.1:notaport/0", "http://alice:hunter2@host/0"):
        with pytest.raises(ConfigError) as caught:
            load_settings({"REDIS_URL": url}, env_file=None)
        assert "hunter2" not in str(caught.value)
        assert "alice:***@" in str(caught.value)


def test_empty_values_mean_default() -> None:
    settings = load_settings({"LLM_MODEL": "", "ECHO_IDLE_SECONDS": " "}, env_file=None)
    assert settings.llm_model is None and settings.idle_seconds == 300


def test_naming_a_model_or_endpoint_chooses_the_openai_provider() -> None:
    assert load_settings({"LLM_MODEL": "llama3.1"}, env_file=None).llm_provider == "openai"
    with pytest.raises(ConfigError, match="LLM_MODEL is not set"):
        load_settings({"LLM_BASE_URL": "http://127.0.0.1:11434/v1"}, env_file=None)
    # A key alone is no model either: say that a model name is needed, not nothing at all.
    with pytest.raises(ConfigError, match="LLM_MODEL is not set: a real model needs its name"):
        load_settings({"LLM_API_KEY": "sk-test"}, env_file=None)
    explicit = load_settings({"LLM_PROVIDER": "echo", "LLM_MODEL": "x"}, env_file=None)
    assert explicit.llm_provider == "echo"


def test_misspelled_settings_are_named_with_the_closest_setting() -> None:
    settings = load_settings(
        {"ECHO_MEMORY_AUTOO": "true", "LLM_MODLE": "x", "ECHO_IDLE_SECONDS": "60", "HOME": "/"},
        env_file=None,
    )
    assert settings.notices == (
        "ECHO_MEMORY_AUTOO is not a setting; did you mean ECHO_MEMORY_AUTO?",
        "LLM_MODLE is not a setting; did you mean LLM_MODEL?",
    )
    assert settings.memory_auto is False  # the typo did not set it: hence the warning
    far = load_settings({"DISCORD_SHARDS_PER_CLUSTER_X": "1"}, env_file=None).notices
    assert far == (
        "DISCORD_SHARDS_PER_CLUSTER_X is not a setting (see .env.example for the settings)",
    )


def test_typos_in_dotenv_are_named_and_the_file_read_is_known(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ECHO_IDLE_SECONDS=30\nECHO_STOER=redis\n")
    settings = load_settings({}, env_file=env_file)
    assert settings.notices == ("ECHO_STOER is not a setting; did you mean ECHO_STORE?",)
    assert settings.env_file == env_file.resolve()
    assert load_settings({}, env_file=tmp_path / "missing.env").env_file is None
    # Neither is a setting an operator could set, nor part of what a dump shows.
    assert "env_file" not in settings.model_dump() and "notices" not in settings.model_dump()


def test_shards_are_a_count_and_the_ids_this_process_runs() -> None:
    redis = {"ECHO_STORE": "redis"}
    settings = load_settings(
        {"ECHO_SHARD_COUNT": "8", "ECHO_SHARD_IDS": "0-2, 5", **redis}, env_file=None
    )
    assert settings.shard_ids == (0, 1, 2, 5) and settings.runs_shard_zero
    assert not load_settings(
        {"ECHO_SHARD_COUNT": "4", "ECHO_SHARD_IDS": "2,3", **redis}, env_file=None
    ).runs_shard_zero
    unset = load_settings({}, env_file=None)
    assert unset.shard_count is None and unset.shard_ids is None and unset.runs_shard_zero
    # Every shard in one process: JSON files are fine.
    assert load_settings({"ECHO_SHARD_COUNT": "2", "ECHO_SHARD_IDS": "0-1"}, env_file=None)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ECHO_SHARD_IDS": "0"}, "ECHO_SHARD_IDS needs ECHO_SHARD_COUNT"),
        ({"ECHO_SHARD_COUNT": "2", "ECHO_SHARD_IDS": "1,2"}, "names shard 2, but"),
        ({"ECHO_SHARD_COUNT": "2", "ECHO_SHARD_IDS": "one"}, "ECHO_SHARD_IDS='one': must be"),
        ({"ECHO_SHARD_COUNT": "4", "ECHO_SHARD_IDS": "3-1"}, "runs backwards"),
        ({"ECHO_SHARD_COUNT": "0"}, "ECHO_SHARD_COUNT='0'"),
        # Other processes run the other shards: they can share conversations only on Redis.
        ({"ECHO_SHARD_COUNT": "4", "ECHO_SHARD_IDS": "0,1"}, "set ECHO_STORE=redis"),
    ],
)
def test_bad_shard_settings_are_one_line(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(expected)) as caught:
        load_settings(env, env_file=None)
    assert "\n" not in str(caught.value)


NUMBER_SETTINGS = sorted(
    field.alias
    for field in Settings.model_fields.values()
    if field.alias and field.annotation in (float, int, float | None, int | None)
)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity"])
def test_no_number_setting_is_infinite_or_nan(value: str) -> None:
    assert "LLM_TIMEOUT_SECONDS" in NUMBER_SETTINGS and "ECHO_IDLE_SECONDS" in NUMBER_SETTINGS
    for name in NUMBER_SETTINGS:
        with pytest.raises(ConfigError) as caught:
            load_settings({name: value}, env_file=None)
        line = str(caught.value)
        assert line.startswith(f"invalid setting {name}=") and "\n" not in line, line


DURATION_SETTINGS = [name for name in NUMBER_SETTINGS if name.endswith(("_SECONDS", "_HOURS"))]


def test_no_duration_setting_overflows_the_date_arithmetic() -> None:
    """Finite, and still too long to mean anything: refused at start-up, one line, rather than
    an OverflowError the first time the bot computes a date from it."""
    assert {"ECHO_IDLE_SECONDS", "ECHO_CATCH_UP_HOURS"} <= set(DURATION_SETTINGS)
    for name in DURATION_SETTINGS:
        with pytest.raises(ConfigError) as caught:
            load_settings({name: "1e300"}, env_file=None)
        line = str(caught.value)
        assert line.startswith(f"invalid setting {name}=") and "(a century)" in line, line
        assert "\n" not in line
    # "Never" as operators write it (1e9 seconds: 32 years) is still a setting.
    assert load_settings({"ECHO_MEMORY_INACTIVITY_SECONDS": "1e9"}, env_file=None)
    assert load_settings({"ECHO_CATCH_UP_HOURS": "87600"}, env_file=None).catch_up_hours == 87600
