"""Naming a sentence by quoting part of it (``flags add``, the web view's form)."""

from __future__ import annotations

import pytest

from archiver.text.segment import contains_loosely, sentences_containing

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
