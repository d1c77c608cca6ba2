"""The builder of recall's lexicon of kinds (bench/wordnet_kinds.py), on a made-up WordNet in
WordNet 3.0's file format: which nouns it keeps, and with which kinds."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from bench import wordnet_kinds

HEADER = "  1 This made-up database is laid out as WordNet 3.0's files are.  \n"
# lemma pos synset_cnt p_cnt [ptr...] sense_cnt tagsense_cnt offsets (most frequent first)
INDEX_NOUN = """\
kickboxing n 1 1 @ 1 1 00000100
sport n 1 1 ~ 1 1 00000200
florida n 1 1 @ 1 1 00000300
turtle n 2 1 @ 2 0 00000500 00000600
run n 1 1 @ 1 1 00000700
mouse n 1 1 @ 1 1 00000800
judo n 2 1 @ 2 1 00001000 00000500
"""
INDEX_VERB = "run v 1 0 1 5 00000900\n"
# offset lex_filenum ss_type w_cnt (hex) [word lex_id] p_cnt [symbol offset pos st] | gloss
DATA_NOUN = """\
00000100 04 n 01 kickboxing 0 001 @ 00000200 n 0000 | fighting with fists and feet
00000200 04 n 02 contact_sport 0 sport 0 000 | a sport of bodily contact
00000300 15 n 01 Florida 0 001 @i 00000400 n 0000 | a state
00000400 15 n 01 American_state 0 000 | one of the states
00000500 06 n 01 turtle 0 001 @ 00000200 n 0000 | one sense
00000600 05 n 01 turtle 0 001 @ 00000400 n 0000 | another sense
00000700 04 n 01 run 0 001 @ 00000200 n 0000 | a score
00000800 05 n 01 mouse 0 001 @ 00000810 n 0000 | a small animal
00000810 05 n 01 rodent 0 000 | a gnawing animal
00001000 04 n 01 judo 0 002 @ 00000200 n 0000 @ 00000810 n 0000 | two hypernyms
"""


def wordnet(folder: Path) -> Path:
    folder.mkdir()
    (folder / "index.noun").write_text(HEADER + INDEX_NOUN)
    (folder / "index.verb").write_text(HEADER + INDEX_VERB)
    (folder / "index.adj").write_text(HEADER)
    (folder / "data.noun").write_text(HEADER + DATA_NOUN)
    (folder / "noun.exc").write_text("mice mouse\nturtles turtle\n")
    (folder / "LICENSE").write_text("the license\n")
    return folder


def test_each_noun_gets_its_first_senses_hypernyms(tmp_path: Path) -> None:
    assert wordnet_kinds.build(wordnet(tmp_path / "wn")) == [
        "florida american state",  # an instance hypernym counts
        "judo contact sport rodent",  # every hypernym of the first sense, in order
        "kickboxing contact sport",
        "mice rodent",  # an irregular plural, a key of its own
        "mouse rodent",
        # Left out: "sport", "rodent" (no hypernym), "turtle" (two senses, neither counted;
        # so its plural too), "run" (more often a verb).
    ]


def test_main_writes_the_gzipped_lexicon_and_the_license(tmp_path: Path) -> None:
    out = tmp_path / "out" / "kinds.txt.gz"
    assert wordnet_kinds.main(["--wordnet", str(wordnet(tmp_path / "wn")), "--out", str(out)]) == 0
    first = out.read_bytes()
    assert gzip.decompress(first).decode().splitlines()[0] == "florida american state"
    assert (out.parent / "WORDNET-LICENSE").read_text() == "the license\n"
    # The same WordNet gives the same bytes: the tracked file changes only with its source.
    wordnet_kinds.main(["--wordnet", str(tmp_path / "wn"), "--out", str(out)])
    assert out.read_bytes() == first


def test_main_refuses_a_folder_without_wordnet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert wordnet_kinds.main(["--wordnet", str(tmp_path)]) == 2
    assert "no WordNet 3.0 data.noun" in capsys.readouterr().err
