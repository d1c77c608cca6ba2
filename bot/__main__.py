"""Entry point for ``python -m bot`` and the ``echo-bot`` script."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print(
        "echo: the bot is not built yet; the memory library (memory/) is usable today.",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
