"""Exit codes and the one-line error every command reports (no heavy imports: ``--help``
and a mistyped command line must answer at once)."""

from __future__ import annotations

__all__ = ["EXIT_CONFIG", "EXIT_FAILED", "EXIT_OK", "CliError"]

# 2: the command line or the settings are wrong; 1: something failed while doing the work.
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


class CliError(Exception):
    """A command cannot go on; ``str(exc)`` is one line for the operator."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code
