"""Files that name no one (``meta.requester`` only): recall infers each person's name from how
the other addressed them (memory.recall.speakers), so a question naming a person still finds
what that person said."""

from __future__ import annotations

import json
from pathlib import Path

from memory.recall import RecallIndex
from memory.recall.coverage import coverage_order, speech_words
from memory.recall.speakers import names_by_requester
from memory.records.models import Conversation
from tests.memory.test_recall_coverage import COVERS, OTHERS, QUESTION, REPEATS, talk


def unnamed(conv: Conversation) -> Conversation:
    """``conv`` as another tool might write it: who wrote each message by id alone."""
    data = json.loads(conv.to_json())
    for message in data["history"]:
        message["meta"].pop("author_name", None)
    return Conversation.from_json(json.dumps(data))


def test_a_person_is_named_by_how_the_other_addresses_them() -> None:
    said = [
        ("101", "Hey Caroline! How was the parade?", None),
        ("102", "Thanks, Mel. It was loud!", None),
        ("101", "That's great, Caroline!", None),
        ("102", "Wow. Yeah, Melanie.", None),
    ]
    # Each is named by the name the other used most, "Mel" counting for "Melanie"; "Wow" and
    # "Yeah" open a sentence, they name no one.
    assert names_by_requester(said) == {"102": "Caroline", "101": "Melanie"}


def test_no_name_is_inferred_among_three_or_over_a_written_one() -> None:
    three = [("1", "Hey Ann!", None), ("2", "Hi Bo!", None), ("3", "Hello Cy!", None)]
    assert names_by_requester(three) == {}
    # 101 wrote under a name: it is kept, not guessed ("Mel"); 102 is still guessed.
    said = [("101", "Hey Caroline!", "Melanie"), ("102", "Hi Mel!", None)]
    assert names_by_requester(said) == {"101": "Melanie", "102": "Caroline"}
    # Nobody addressed: nobody named.
    assert names_by_requester([("1", "ok", None), ("2", "sure thing", None)]) == {}
    # A greeting that ends its sentence addresses no one: the next word begins another.
    said = [("1", "Thanks! Exciting times ahead!", None), ("2", "Wow. Great news.", None)]
    assert names_by_requester(said) == {}


def test_coverage_keeps_what_each_person_said_under_their_inferred_name() -> None:
    speech = json.loads(speech_words(unnamed(COVERS)))
    assert "marshmallow" in speech["said"]["melanie"]
    assert "marshmallow" not in speech["said"].get("caroline", "")


def test_a_question_naming_a_person_finds_what_they_said_without_names_in_the_files(
    tmp_path: Path,
) -> None:
    # As with names written down (test_recall_coverage): BM25 prefers the conversation where
    # Caroline repeats "hikes"; the one where Melanie tells of her family's hikes ranks first
    # only if Melanie's words are known to be hers.
    talks = [unnamed(c) for c in (REPEATS, COVERS, *OTHERS)]
    with RecallIndex(tmp_path / "recall") as index:
        index.rebuild([(c, None) for c in talks])
        assert [h.thread_id for h in index.search("1", QUESTION)][:2] == ["12", "11"]


def test_a_name_written_on_some_messages_names_the_others_too() -> None:
    # Three people (nothing can be inferred), one of whom wrote under a name only at first:
    # the latest name they wrote under names their unnamed messages.
    said = [
        ("1", "Morning all", "Ann"),
        ("2", "Hi Ann!", None),
        ("1", "Back from the lake", "Annie"),
        ("3", "Hello", None),
        ("1", "We caught a pike", None),
    ]
    assert names_by_requester(said) == {"1": "Annie"}


def test_coverage_counts_an_unnamed_message_for_the_name_its_writer_used_elsewhere() -> None:
    data = json.loads(COVERS.to_json())
    names = [m["meta"].get("author_name") for m in data["history"]]
    assert "Melanie" in names
    # Melanie's name is kept on her first message only (Caroline's on none): her words about
    # marshmallows, in a later message, are still hers.
    first = names.index("Melanie")
    for n, message in enumerate(data["history"]):
        if n != first:
            message["meta"].pop("author_name", None)
    speech = json.loads(speech_words(Conversation.from_json(json.dumps(data))))
    assert "marshmallow" in speech["said"]["melanie"]
    assert "marshmallow" not in speech["said"].get("caroline", "")


# Melanie is only ever called "Mel" in these two, so in files that name no one she is "Mel"
# there; elsewhere she is named in full. In the first Caroline talks of the sunset painting.
CALLED_MEL = unnamed(
    talk("61", ("Caroline", "Hey Mel! Look, my sunset painting."), ("Melanie", "Lovely, Caroline!"))
)
MEL_PAINTED = unnamed(
    talk("62", ("Melanie", "Hi Caroline! Look, my sunset painting."), ("Caroline", "Lovely, Mel!"))
)
NAMED_IN_FULL = talk("63", ("Melanie", "We went to the lake."), ("Caroline", "Nice, Melanie!"))


def test_a_name_asked_about_stands_for_its_short_form_where_no_one_of_that_name_spoke() -> None:
    assert json.loads(speech_words(CALLED_MEL))["said"].keys() == {"mel", "caroline"}
    speech = [speech_words(c) for c in (CALLED_MEL, MEL_PAINTED, NAMED_IN_FULL)]
    order, _ = coverage_order(["melanie", "paint", "sunset"], [1.0, 0.9, 0.5], speech, 0.5)
    # "Melanie" spoke in the third; in the first two, the question's Melanie is their "Mel":
    # her words there are measured, and the one where she painted comes first.
    assert order[:2] == [1, 0]


def test_a_word_that_is_no_speakers_name_stands_for_no_one() -> None:
    # "Melbourne" begins with "Mel", but nobody is called Melbourne: both conversations are
    # measured against everything said in them, and BM25's order stands.
    speech = [speech_words(CALLED_MEL), speech_words(MEL_PAINTED)]
    order, _ = coverage_order(["melbourne", "paint", "sunset"], [1.0, 0.9], speech, 0.5)
    assert order == [0, 1]


def test_a_search_naming_the_person_in_full_finds_what_they_said_under_a_short_name(
    tmp_path: Path,
) -> None:
    talks = [CALLED_MEL, MEL_PAINTED, NAMED_IN_FULL, *(unnamed(c) for c in OTHERS)]
    with RecallIndex(tmp_path / "recall") as index:
        index.rebuild([(c, None) for c in talks])
        hits = index.search("1", "What did Melanie paint at sunset?")
        assert [h.thread_id for h in hits][:2] == ["62", "61"]
