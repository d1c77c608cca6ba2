"""``python -m bench [--quick] [--only NAME[,NAME...]] [--out DIR] [--publish]``: every scenario
of ``bench/scenarios``, one table each, ``results.json`` and ``results.png`` (see bench/README.md).

A run writes to ``bench/out/`` (ignored by git), so measuring never dirties a clone; the tracked
``bench/results.json`` and ``bench/results.png`` change only with ``--publish``, which merges
the scenarios this run measured into them and keeps the others (``bench.publish``).

Not a test: nothing here runs in the test command or in CI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.framework import BENCH_DIR, OUT_DIR
from bench.publish import publish
from bench.runner import run_scenarios
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
        help="also merge the scenarios run into bench/results.json (the others kept as they "
        "were published) and draw bench/results.png again: the tracked results README quotes",
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
        written, left = publish(args.out, BENCH_DIR, names, list(SCENARIOS))
        for path in written:
            print(f"published {path}")
        if left:
            print(f"not published (failed or skipped; the published stay): {', '.join(left)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
