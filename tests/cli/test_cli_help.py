"""``--help`` on every command, and bad command lines as one line with exit code 2."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.cli.helpers import cli_env, run_cli

HELPS = {
    (): ["run", "sync", "conversations", "chat", "With no command, Echo runs"],
    ("run",): ["Run the bot", "DISCORD_TOKEN"],
    ("sync",): ["--guild", "globally"],
    ("conversations",): ["list", "show", "export", "while Echo runs"],
    ("conversations", "list"): ["--guild", "--json", "newest first", "as of its\nlast save"],
    ("conversations", "show"): ["THREAD_ID", "--full", "thinking"],
    ("conversations", "export"): ["THREAD_ID", "-o FILE", "--force"],
    ("chat",): ["--guild", "--user", "no .env", "/quit"],
    ("memories",): ["generate", "search", "idle for ECHO_MEMORY_INACTIVITY_SECONDS"],
    ("memories", "generate"): ["--idle-seconds N", "--enqueue", "--wait", "eligible"],
    ("memories", "list"): ["--guild", "--json"],
    ("memories", "show"): ["THREAD_ID", "--json"],
    ("memories", "search"): ["--guild ID", "--limit K", "QUERY", "another server"],
    ("store",): ["migrate"],
    ("store", "migrate"): ["--from {json,redis}", "--to {json,redis}", "--redis-wait"],
    ("worker",): ["--claim-after", "--once", "SIGTERM"],
}


async def test_every_command_has_help(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    results = await asyncio.gather(
        *(run_cli(*command, "--help", cwd=tmp_path, env=env) for command in HELPS)
    )
    for (command, expected), result in zip(HELPS.items(), results, strict=True):
        assert result.code == 0, (command, result)
        assert result.stdout.startswith(f"usage: python -m bot {' '.join(command)}".rstrip())
        text = " ".join(result.stdout.split())
        for words in expected:
            assert " ".join(words.split()) in text, (command, words, result.stdout)
        assert result.stderr == ""
        # A command the help lists must have its own entry above, so a new command cannot
        # arrive without its help being checked.
        listed = {(*command, name) for name in _subcommands(result.stdout)}
        assert listed <= HELPS.keys(), (command, sorted(listed - HELPS.keys()))


def _subcommands(help_text: str) -> list[str]:
    """The names under a help's COMMAND/ACTION heading (argparse indents them by four)."""
    names: list[str] = []
    lines = help_text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() in {"COMMAND", "ACTION"}:
            for entry in lines[i + 1 :]:
                if not entry.strip():
                    break
                if entry.startswith("    ") and not entry.startswith("     "):
                    names.append(entry.split()[0])
    return names


async def test_bad_command_lines_are_one_line_and_exit_2(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    cases = {
        ("bogus",): "invalid choice: 'bogus'",
        ("conversations",): "the following arguments are required: ACTION",
        ("conversations", "show"): "the following arguments are required: THREAD_ID",
        ("conversations", "list", "--colour"): "unrecognized arguments: --colour",
        ("chat", "--guild"): "argument --guild: expected one argument",
        # No wait or age is infinite: inf and nan parse as floats but are refused.
        ("memories", "generate", "--idle-seconds", "nan"): "must be a finite number, got 'nan'",
        ("worker", "--claim-after", "inf"): "must be a finite number, got 'inf'",
        ("store", "migrate", "--from", "json", "--to", "redis", "--redis-wait=-inf"): (
            "must be a finite number, got '-inf'"
        ),
        # ...nor so long that the date arithmetic overflows (an OverflowError, exit 1, before).
        ("memories", "generate", "--idle-seconds", "1e308"): "must be at most 3153600000 seconds",
    }
    results = await asyncio.gather(*(run_cli(*args, cwd=tmp_path, env=env) for args in cases))
    for (args, expected), result in zip(cases.items(), results, strict=True):
        assert result.code == 2, (args, result)
        line = result.error_line
        assert line.startswith("echo: ") and expected in line, (args, line)
        assert "--help" in line
        assert result.stdout == ""


async def test_a_setting_that_is_no_usable_number_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cases = {
        "LLM_TIMEOUT_SECONDS": ("inf", "Input should be a finite number"),
        "ECHO_IDLE_SECONDS": ("nan", "Input should be a finite number"),
        "ECHO_MEMORY_INACTIVITY_SECONDS": ("1e308", "must be at most 3153600000 seconds"),
        "ECHO_CATCH_UP_HOURS": ("1e300", "must be at most 876000 hours"),
    }
    results = await asyncio.gather(
        *(
            run_cli("memories", "list", cwd=tmp_path, env=cli_env(tmp_path, **{name: value}))
            for name, (value, _) in cases.items()
        )
    )
    for (name, (value, expected)), result in zip(cases.items(), results, strict=True):
        assert result.code == 2, (name, result)
        line = result.error_line
        assert line.startswith(f"echo: invalid setting {name}={value!r}: "), line
        assert expected in line, line
        assert result.stdout == ""


async def test_help_names_the_program_as_it_was_started(tmp_path: Path) -> None:
    """Installed as a script, the usage line says ``echo-bot``, which is what was typed."""
    script = Path(sys.executable).with_name("echo-bot")
    assert script.exists(), f"{script} is missing: pip install -e . installs it"
    process = await asyncio.create_subprocess_exec(
        str(script),
        "conversations",
        "--help",
        env=cli_env(tmp_path),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err
    assert out.decode().startswith("usage: echo-bot conversations "), out.decode()


async def test_help_wraps_to_the_terminal(tmp_path: Path) -> None:
    env = cli_env(tmp_path, COLUMNS="60")
    commands = [("conversations", "list"), ("conversations", "show"), ("memories", "generate")]
    results = await asyncio.gather(
        *(run_cli(*command, "--help", cwd=tmp_path, env=env) for command in commands)
    )
    for command, result in zip(commands, results, strict=True):
        assert result.code == 0, result
        long = [line for line in result.stdout.splitlines() if len(line) > 60]
        assert not long, (command, long)
