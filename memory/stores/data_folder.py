"""Whether a path can be a data folder, checked before anything is read from it.

A folder that is not there yet is a fresh install: the bot makes it, and the operator's tools
say there is nothing in it yet. Anything else that stops Echo from reading it (a file in its
place or on the way to it, a link to nowhere or a loop of links, a ``guilds`` or ``journal``
that is not a folder, no permission) is the operator's to fix, and must never read as an empty
folder: it is a ``StoreConfigError``, one line naming the path and the cause.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

from memory.stores.base import StoreConfigError, StoreError

__all__ = ["check_data_folder", "lock_folder"]


def check_data_folder(data_dir: Path) -> None:
    """``StoreConfigError`` unless ``data_dir`` is a readable folder or not made yet."""
    fix = "point ECHO_DATA_DIR at a folder (it is made if missing)"
    if not _is_folder(data_dir, "the data folder", fix):
        return
    for part in ("guilds", "journal"):
        _is_folder(data_dir / part, f"the data folder's {part}", "move it out of the way")
    if not os.access(data_dir, os.R_OK | os.X_OK):
        raise StoreConfigError(
            f"cannot read the data folder {data_dir}: permission denied: check its permissions"
        )


def _is_folder(path: Path, what: str, fix: str) -> bool:
    """True if ``path`` is a folder, False if nothing is there (not even a link)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            target = os.readlink(path)
            raise StoreConfigError(
                f"{what} {path} is a link to {target}, which does not exist: {fix}"
            ) from None
        return False
    except PermissionError:
        raise StoreConfigError(
            f"cannot read {what} {path}: permission denied: check the permissions of it and "
            "the folders above it"
        ) from None
    except OSError as exc:  # a file on the way (ENOTDIR), a loop of links
        raise StoreConfigError(f"cannot use {what} {path}: {exc.strerror or exc}: {fix}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise StoreConfigError(f"{what} {path} is a file, not a folder: {fix}")
    return True


def lock_folder(folder: Path) -> int:
    path = folder / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(
            f"{folder} is in use by another Echo process (it holds {path}); "
            "stop it or choose another ECHO_DATA_DIR"
        ) from None
    return fd
