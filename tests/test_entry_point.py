"""``python -m bot`` until the bot lands: one line, exit code 2."""

from __future__ import annotations

import subprocess
import sys


def test_python_m_bot_says_it_is_not_built_yet() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1 and "not built yet" in lines[0]
