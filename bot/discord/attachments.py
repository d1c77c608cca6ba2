"""Attachments: what is recorded about them, and how the model is told about them.

Discord's attachment links expire, so the text of a small text file is kept in the record
itself (``meta.attachments[i].text``); images and large files are recorded by name, size
and type only, and named to the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

__all__ = ["attachment_notes", "is_text"]

TEXT_EXTENSIONS = frozenset(
    """.txt .md .markdown .rst .log .csv .tsv .json .jsonl .yaml .yml .toml .ini .cfg .conf .xml
    .html .htm .css .js .mjs .ts .tsx .jsx .py .rb .go .rs .java .kt .c .h .cc .cpp .hpp .cs .php
    .sh .bash .zsh .ps1 .sql .r .lua .swift .scala .hs .ex .exs .erl .clj .dart .vue .svelte
    .diff .patch .env .gitignore .dockerfile""".split()
)
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-yaml")


def is_text(filename: str, content_type: str | None) -> bool:
    """Whether a file can be read as text and shown to the model."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind.startswith(TEXT_TYPES):
        return True
    name = PurePosixPath(filename.lower())
    return name.suffix in TEXT_EXTENSIONS or name.name in {"dockerfile", "makefile"}


def attachment_notes(attachments: Sequence[Mapping[str, Any]]) -> str:
    """What the model reads about a message's attachments (appended to its text)."""
    notes: list[str] = []
    for item in attachments:
        name = str(item.get("filename", "file"))
        kind = str(item.get("content_type") or "unknown type")
        size = _size(item.get("size"))
        text = item.get("text")
        if isinstance(text, str):
            cut = " (truncated)" if item.get("truncated") else ""
            notes.append(f"[attached file {name} ({kind}, {size}){cut}]\n```\n{text}\n```")
        elif kind.startswith("image/"):
            notes.append(f"[attached image {name} ({kind}, {size}); you cannot see images]")
        else:
            notes.append(f"[attached file {name} ({kind}, {size}), not shown to you]")
    return "\n".join(notes)


def _size(value: object) -> str:
    if not isinstance(value, int):
        return "size unknown"
    if value < 1024:
        return f"{value} bytes"
    if value < 1024 * 1024:
        return f"{value / 1024:.1f} KB"
    return f"{value / 1024 / 1024:.1f} MB"
