"""Sentences: where one ends, and naming one by quoting part of it (``flags add``, the
web view's form)."""

from __future__ import annotations

import pytest

from archiver.text.segment import contains_loosely, sentences, sentences_containing

TEXT = "Die Bahn streikt.  Der Verkehr ruht am Mittwoch.\nIn Berlin fährt keine S-Bahn. Die Bahn schweigt."


@pytest.mark.parametrize(
    ("quote", "found", "anywhere"),
    [
        ("verkehr RUHT", ["Der Verkehr ruht am Mittwoch."], True),  # case and spacing
        ("Die Bahn", ["Die Bahn streikt.", "Die Bahn schweigt."], True),  # several
        ("streikt. Der Verkehr", [], True),  # over two sentences
        ("ruht am Mittwoch. In Berlin", [], True),  # over two paragraphs
        ("Flughafen", [], False),
        ("   ", [], False),
    ],
)
def test_a_quote_names_the_sentences_that_hold_it(
    quote: str, found: list[str], anywhere: bool
) -> None:
    assert sentences_containing(TEXT, quote) == found
    assert contains_loosely(TEXT, quote) is anywhere


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. Lee spoke. Then he left.", ["Dr. Lee spoke. ", "Then he left."]),
        ("The vote was 12. Then it ended.", ["The vote was 12. ", "Then it ended."]),
        # A numbered item's marker was a sentence of its own ("1." and the rest), so a
        # diff showed "1." as context and a flag's evidence lost its number.
        (
            "1. Every copy must carry this licence. 2. A product must say so.",
            ["1. Every copy must carry this licence. ", "2. A product must say so."],
        ),
        ("3.2. Terms apply here.", ["3.2. Terms apply here."]),
        ("Chapter 1. Introduction here.", ["Chapter 1. ", "Introduction here."]),
        # A German date's day is an ordinal: "vom 5." ended a sentence there.
        (
            "Der Vorfall vom 5. Jänner wurde untersucht. Am 9. Januar hob die FAA das Verbot auf.",
            ["Der Vorfall vom 5. Jänner wurde untersucht. ", "Am 9. Januar hob die FAA das Verbot auf."],
        ),
    ],
)  # fmt: skip
def test_where_a_sentence_ends(text: str, expected: list[str]) -> None:
    found = [s.text for s in sentences(text)]
    assert found == expected and "".join(found) == text
