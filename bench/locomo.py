"""Recall quality on LoCoMo (the public file or --data), and timing at 100,000 conversations.

```sh
.venv/bin/python -m bench.locomo                       # every variant + the scale run
.venv/bin/python -m bench.locomo --scale 0             # quality only
.venv/bin/python -m bench.locomo --cli                 # also through `python -m bot memories`
.venv/bin/python -m bench.locomo --data locomo-dev.json --dialogues dev
```

The data: ``--data PATH``, or LoCoMo's public ``locomo10.json``, downloaded once into
``~/.cache/echo-bench`` and checked by sha256 (``bench/locomo_data.py``). A run says which
dialogues it used; ``--dialogues dev|unseen|all|<ids>`` chooses.

What it does:

1. Writes the five dialogues into a fresh Echo data folder with the real ``JsonFileStore``:
   one guild per dialogue (ids 1000..1004), one conversation per session, created at the
   session's date read as UTC, one ``chat`` message per turn (``author_name`` = the speaker,
   requester = the speaker's id; speaker_a is the conversation's requester, both speakers are
   participants). A turn that shares an image carries LoCoMo's ``blip_caption`` as
   `` [shares a photo: <caption>]`` after its text: that is the turn as the dialogue shows it.
   Only the turns and the session dates are read: never ``observation``, ``session_summary``,
   ``event_summary`` or the QA answers (``bench/locomo_echo.py``).
2. Makes memories offline with the real batch job (``MemoryService`` + the extractive
   distiller), as ``memories generate`` does without a model.
3. For each variant, indexes every conversation into a fresh ``RecallIndex`` and searches the
   question's guild with every question of categories 1-4 that names an evidence session
   (``D:?(\\d+):(\\d+)``; 760 questions). hit@1: the top conversation is an evidence session;
   hit@5: one of the top five is. Every hit is also checked to belong to the guild searched
   (``bench/locomo_score.py``).
4. The baseline of the data's README (rank_bm25 defaults over raw session text), when
   ``rank_bm25`` is installed (``pip install rank-bm25``; a bench-only dependency).
5. The semantic re-ranker beside the default, when its extra is installed: all dialogues,
   held out, cold and warm latency (``bench/locomo_semantic.py``).
6. Leave one dialogue out (not with ``--quick``): every tuned setting chosen on all dialogues
   but one and scored on the one left out (``bench/locomo_lodo.py``).
7. Distillation: does the memory record of a question's evidence conversation hold the
   answer's words (``bench/locomo_distill.py``)?
8. Timing at scale: 100,000 small conversations in one guild and 20,000 in four others;
   index open time, search p50/p95, index size (``bench/locomo_scale.py``).

Results go to ``bench/out/results-locomo.json`` (ignored by git, so a run never dirties the
clone); ``--publish`` also copies them to the tracked ``bench/results-locomo.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import locomo_data, locomo_distill, locomo_lodo, locomo_semantic
from bench.locomo_echo import Question, generate_memories, load_folder, questions, write_data_folder
from bench.locomo_scale import scale_run, synthetic
from bench.locomo_score import Score, baseline, cli_variant, recall_variant, score, sync_variant
from memory import Conversation
from memory.recall import RecallSettings
from memory.records.memories import MemoryRecord

PUBLISHED = Path(__file__).resolve().parent / "results-locomo.json"
RESULTS = Path(__file__).resolve().parent / "out" / "results-locomo.json"
# When a tool importing the dialogues might have written them: any day long after them.
WRITTEN = datetime(2026, 12, 1, 12, tzinfo=UTC)


# --- the run ------------------------------------------------------------------------------------

WHOLE = 1_000_000  # a window this wide makes the whole conversation one passage


def variants() -> list[tuple[str, RecallSettings, bool, str]]:
    """(name, settings, with memories, note). The first with memories is the default."""
    d = RecallSettings()
    nodates = replace(d, dates_weight=0.0)
    whole = replace(d, window=WHOLE, stride=WHOLE)
    return [
        (
            f"default: passages {d.window}/{d.stride}, dates x2, memory x0.5,"
            f" coverage x{d.coverage_weight:g}, pairs",
            d,
            True,
            "chosen",
        ),
        ("default without memories", d, False, ""),
        (
            "whole conversation, unicode61, no dates",
            replace(whole, tokenizer="unicode61 remove_diacritics 2", dates_weight=0.0),
            False,
            "~ the baseline, in FTS5",
        ),
        ("whole conversation, porter, no dates", replace(whole, dates_weight=0.0), False, ""),
        ("whole conversation, porter, dates x2", whole, False, ""),
        ("whole conversation, porter, dates x2, + memory", whole, True, ""),
        (f"passages {d.window}/{d.stride}, porter, no dates", nodates, False, ""),
        (
            f"passages {d.window}/{d.stride}, unicode61 (no stemming)",
            replace(d, tokenizer="unicode61 remove_diacritics 2"),
            True,
            "",
        ),
        ("passages 1/1 (one message)", replace(d, window=1, stride=1), True, ""),
        ("passages 3/1", replace(d, window=3, stride=1), True, ""),
        ("passages 4/2", replace(d, window=4, stride=2), True, ""),
        ("passages 5/3", replace(d, window=5, stride=3), True, ""),
        ("passages 5/5 (no overlap)", replace(d, window=5, stride=5), True, ""),
        ("passages 8/4", replace(d, window=8, stride=4), True, ""),
        ("dates x1", replace(d, dates_weight=1.0), True, ""),
        ("dates x4", replace(d, dates_weight=4.0), True, ""),
        ("memory x1", replace(d, memory_weight=1.0), True, ""),
        ("memory x2", replace(d, memory_weight=2.0), True, ""),
        ("names x0 (speaker names ignored)", replace(d, names_weight=0.0), True, ""),
        ("names x1", replace(d, names_weight=1.0), True, ""),
        ("coverage x0 (BM25's order alone)", replace(d, coverage_weight=0.0), True, ""),
        ("coverage x0.25", replace(d, coverage_weight=0.25), True, ""),
        ("coverage x1", replace(d, coverage_weight=1.0), True, ""),
        ("no phrase pairs (words apart only)", replace(d, phrase_pairs=False), True, ""),
        ("phrase pairs in questions asking when too", replace(d, phrase_pairs_when=True), True, ""),
        ("no kinds (coverage by the words said only)", replace(d, kinds=False), True, ""),
        ('no verb forms ("win" not covered by "won")', replace(d, verb_forms=False), True, ""),
        ("no timed coverage (when questions as others)", replace(d, timed_weight=0.0), True, ""),
        ("timed coverage x0.5", replace(d, timed_weight=0.5), True, ""),
        ("timed coverage x1", replace(d, timed_weight=1.0), True, ""),
    ]


def table(rows: list[Score]) -> str:
    lines = [
        f"{'variant':68} {'hit@1':>6} {'hit@5':>6} {'q/s':>8} {'p50 ms':>7} {'p95 ms':>7}"
        f" {'leaks':>5}"
    ]
    for r in rows:
        lines.append(
            f"{r.variant[:68]:68} {r.hit1:6.3f} {r.hit5:6.3f} {r.queries_per_s:8.1f}"
            f" {r.p50_ms:7.2f} {r.p95_ms:7.2f} {r.leaks:5d}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.locomo", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="a LoCoMo JSON file (default: the public locomo10.json, downloaded once into "
        f"{locomo_data.cache_dir()} and checked by sha256)",
    )
    parser.add_argument(
        "--dialogues",
        default="all",
        help="which dialogues: all (default), dev (the five the settings were developed on), "
        "unseen (the others), or sample ids (conv-26,conv-30)",
    )
    parser.add_argument("--url", default=locomo_data.LOCOMO_URL, help=argparse.SUPPRESS)
    parser.add_argument(
        "--scale", type=int, default=100_000, help="conversations in the big guild (0: skip)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the default variant and the baseline only (no variants, no leave-one-out)",
    )
    parser.add_argument("--cli", action="store_true", help="also run `python -m bot memories`")
    parser.add_argument("--keep", type=Path, help="write the Echo data folder here and keep it")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--publish", action="store_true", help="also write the tracked bench/results-locomo.json"
    )
    args = parser.parse_args(argv)

    try:
        dataset = locomo_data.load(args.data, url=args.url).select(args.dialogues)
    except locomo_data.DataError as exc:
        print(f"LoCoMo data: {exc}", file=sys.stderr)
        return 2
    records = dataset.records
    qs = questions(records)
    print(f"{dataset.path} (sha256 {dataset.sha256[:12]}...): {dataset.describe()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="echo-bench-"))
    try:
        folder = args.keep or work / "data"
        written = asyncio.run(write_data_folder(folder, records, captions=True))
        generated = asyncio.run(generate_memories(folder))
        items = asyncio.run(load_folder(folder))
        print(
            f"{len(records)} dialogues -> {written} conversations in {folder}; "
            f"{generated} memories generated offline; {len(qs)} questions (categories 1-4)",
            flush=True,
        )
        rows: list[Score] = []
        base = baseline(records, qs)
        if base is not None:
            rows.append(base)
        else:
            print("rank_bm25 is not installed: no baseline row (pip install rank-bm25)")
        chosen = variants()
        if args.quick:
            chosen = chosen[:2]
        for name, settings, memories, note in chosen:
            rows.append(
                recall_variant(name, qs, items, settings, work, memories=memories, note=note)
            )
            print(table(rows[-1:]).splitlines()[1], flush=True)
        rows.append(sync_variant(folder, qs, work))
        print(table(rows[-1:]).splitlines()[1], flush=True)
        semantic = semantic_variant(qs, items, work)
        if semantic is not None:
            rows.append(semantic[0])
        if not args.quick:
            # How files written by other tools fare: no photo captions; no speakers' names
            # (a message says who wrote it by its requester id alone); conversations dated
            # when the files were written (their messages keep their dates).
            for name, captions, names, written in (
                ("default, photo captions left out", False, True, None),
                ("default, speakers' names left out (meta.requester only)", True, False, None),
                (
                    "default, conversations dated when written (messages when said)",
                    True,
                    True,
                    WRITTEN,
                ),
            ):
                plain = work / f"plain-{captions}-{names}-{written is None}"
                asyncio.run(
                    write_data_folder(
                        plain, records, captions=captions, names=names, written=written
                    )
                )
                asyncio.run(generate_memories(plain))
                plain_items = asyncio.run(load_folder(plain))
                rows.append(
                    recall_variant(name, qs, plain_items, RecallSettings(), work, memories=True)
                )
        if args.cli:
            cli_folder = work / "cli"
            asyncio.run(write_data_folder(cli_folder, records, captions=True))
            try:
                rows.append(cli_variant(cli_folder, records, qs))
            except (RuntimeError, OSError) as exc:
                print(f"CLI not measured: {exc}")
        print()
        print(table(rows))
        lodo = None
        if not args.quick and len(records) > 1:
            lodo = leave_one_out(qs, items, work)
        distilled = locomo_distill.measure(records, items)
        print("\n" + locomo_distill.table(distilled))
        distilled_topics = locomo_distill.topics(records, items)
        print(f"topics: the records' topic words LoCoMo's session summary uses: {distilled_topics}")
        scale = None
        if args.scale > 0:
            print(
                f"\nscale: {args.scale:,} conversations in one guild,"
                f" {args.scale // 20:,} in each of 4 others ...",
                flush=True,
            )
            scale = scale_run(args.scale, work)
            if locomo_semantic.missing() is None:
                scale["semantic"] = locomo_semantic.at_scale(args.scale, work, synthetic)
            for key, value in scale.items():
                print(f"  {key}: {value}")
        results = {
            "data": str(dataset.path),
            "data_sha256": dataset.sha256,
            "dialogues": dataset.samples,
            "questions": len(qs),
            "settings": asdict(RecallSettings()),
            "rows": [asdict(r) for r in rows],
            "leave_one_dialogue_out": lodo,
            "semantic": semantic[1] if semantic is not None else None,
            "distillation": distilled,
            "topics": distilled_topics,
            "scale": scale,
            "python": sys.version.split()[0],
            "sqlite": __import__("sqlite3").sqlite_version,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwritten: {args.out}")
        if args.publish:
            PUBLISHED.write_text(json.dumps(results, indent=2) + "\n")
            print(f"published: {PUBLISHED}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def semantic_variant(
    qs: list[Question], items: list[tuple[Conversation, MemoryRecord | None]], work: Path
) -> tuple[Score, dict[str, Any]] | None:
    """The default with the semantic re-ranker (``bench/locomo_semantic.py``), if installed."""
    why = locomo_semantic.missing()
    if why is not None:
        print(f"semantic re-ranker: not measured: {why}")
        return None
    guild_by_thread = {c.thread_id: c.guild_id for c, _ in items}
    return locomo_semantic.measure(
        qs,
        items,
        work,
        lambda reranker: score(
            "default + semantic re-ranker",
            qs,
            lambda q: [h.thread_id for h in reranker.search(q.guild_id, q.text, limit=5)],
            guild_by_thread.__getitem__,
            "ECHO_RECALL_RERANKER=semantic; warm: the vectors kept",
        ),
    )


def leave_one_out(
    qs: list[Question], items: list[tuple[Conversation, MemoryRecord | None]], work: Path
) -> dict[str, Any]:
    """The default on every dialogue beside settings chosen without the dialogue scored."""
    grid = locomo_lodo.candidates()
    print(f"\nleave one dialogue out: {len(grid)} candidate settings ...", flush=True)
    found = locomo_lodo.outcomes(qs, items, grid, work)
    held, folds = locomo_lodo.held_out([q.guild_id for q in qs], found)
    text, data = locomo_lodo.table([q.category for q in qs], found["default"], held)
    print(text)
    for fold in folds:
        print(f"  dialogue of guild {fold.held_out} held out: chose {fold.chosen}")
    return {"table": data, "folds": [asdict(f) for f in folds]}


if __name__ == "__main__":
    raise SystemExit(main())
