"""Files that cannot be read are moved aside, never deleted.

A conversation file, a memory file or a journal segment that does not parse is renamed to
``<name>.corrupt`` (``<name>.corrupt.2``, ... when an earlier one is already there) in the
same folder: out of the way of the next start, and kept for the operator, who may repair or
remove it. The new name never matches what the store or the journal scans for, so nothing is
read twice.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["aside_path", "move_aside"]


def aside_path(path: Path) -> Path:
    """The first free ``<path>.corrupt[.N]``: an earlier file set aside is never overwritten."""
    target = path.with_name(path.name + ".corrupt")
    number = 1
    while os.path.lexists(target):
        number += 1
        target = path.with_name(f"{path.name}.corrupt.{number}")
    return target


def move_aside(path: Path) -> Path:
    """Rename ``path`` to its ``.corrupt`` name and return that name; ``OSError`` if it fails."""
    target = aside_path(path)
    os.replace(path, target)
    return target
