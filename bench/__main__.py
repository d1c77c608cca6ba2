"""``python -m bench [--quick] [--only NAME[,NAME...]] [--out DIR] [--publish]``: every scenario
of ``bench/scenarios``, one table each, ``results.json`` and ``results.png`` (see bench/README.md).

A run writes to ``bench/out/`` (ignored by git), so measuring never dirties a clone; the tracked
``bench/results.json`` and ``bench/results.png`` change only with ``--publish``.

Not a test: nothing here runs in the test command or in CI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.framework import BENCH_DIR, OUT_DIR, publish, run_scenarios
from bench.scenarios import SCENARIOS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Echo's performance benchmarks against its peers, measured in the same run.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer runs and smaller sizes (under 3 minutes)"
    )
    parser.add_argument(
        "--only",
        metavar="NAME[,NAME...]",
        help=f"run only these scenarios (of: {', '.join(SCENARIOS)}); the other scenarios of "
        "an existing results.json are kept",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=OUT_DIR,
        metavar="DIR",
        help="where results.json and results.png go (default: bench/out/, ignored by git)",
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help="also copy them to bench/results.json and bench/results.png, the tracked results "
        "that README quotes",
    )
    args = parser.parse_args(argv)
    names = list(SCENARIOS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    status = run_scenarios(names, quick=args.quick, out_dir=args.out, merge=bool(args.only))
    if args.publish:
        for path in publish(args.out, BENCH_DIR):
            print(f"published {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
