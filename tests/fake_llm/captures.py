"""Recorded response bodies of real model servers (``../shared/data/llm-captures``).

They stay where they are (shared data with its own sources and licences): the tests read
them in place. Where: ``ECHO_LLM_CAPTURES`` if set, else ``<repo>/../shared/data/llm-captures``,
else ``/work/shared/data/llm-captures``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["Capture", "CapturesMissing", "captures", "captures_dir"]

ENV = "ECHO_LLM_CAPTURES"
_REPO = Path(__file__).resolve().parents[2]
_FALLBACKS = (
    _REPO.parent / "shared" / "data" / "llm-captures",
    Path("/work/shared/data/llm-captures"),
)


class CapturesMissing(RuntimeError):
    """The captures folder is not there: say where it was looked for and how to point at it."""


@dataclass(frozen=True)
class Capture:
    """One entry of ``index.json`` and its body."""

    name: str
    file: str
    server: str
    stream: bool
    status: int
    content_type: str
    tools: list[dict[str, Any]] | None
    path: Path

    @property
    def body(self) -> bytes:
        return self.path.read_bytes()


def captures_dir() -> Path:
    given = os.environ.get(ENV)
    candidates = (Path(given),) if given else _FALLBACKS
    for folder in candidates:
        if (folder / "index.json").is_file():
            return folder
    looked = ", ".join(str(c) for c in candidates)
    raise CapturesMissing(
        f"the recorded LLM captures are missing (looked in {looked}): set {ENV} to the "
        "llm-captures folder (it holds index.json)"
    )


@cache
def captures() -> dict[str, Capture]:
    """Every capture by name, in the index's order."""
    folder = captures_dir()
    entries = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    return {
        entry["name"]: Capture(
            name=entry["name"],
            file=entry["file"],
            server=entry["server"],
            stream=entry["kind"] == "stream",
            status=int(entry["status"]),
            content_type=entry["content_type"],
            tools=entry.get("tools"),
            path=folder / entry["file"],
        )
        for entry in entries
    }
