"""Properties every diff must have, over generated English/Arabic texts (hypothesis)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.text.diff import Change, apply, diff
from archiver.text.segment import words

WORDS = [
    "Meta",
    "will",
    "not",
    "release",
    "Llama",
    "65",
    "billion",
    "open",
    "closed",
    "model",
    "ميتا",
    "لن",
    "تطلق",
    "النموذج",
    "مجانًا",
    "مليار",
    "the",
    "a",
    "said",
    "Zuckerberg",
]
ENDINGS = [". ", "! ", "? ", "؟ ", ".\n", "\n", " ", ", ", ""]

sentence = st.builds(
    lambda ws, end: " ".join(ws) + end,
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=8),
    st.sampled_from(ENDINGS),
)
text = st.lists(sentence, max_size=12).map("".join)
pair = text.flatmap(
    lambda a: st.tuples(
        st.just(a),
        st.one_of(
            text,
            st.lists(st.sampled_from(a.split(" ") or [""]) | sentence, max_size=14).map(" ".join),
        ),
    )
)


def changed_words(change: Change, side: str) -> Counter[str]:
    """Words inserted (side='new') or deleted (side='old') by the change."""
    out: Counter[str] = Counter()
    for u in change.units:
        if u.kind == "modified":
            op = "insert" if side == "new" else "delete"
            for e in u.edits:
                if e.op == op:
                    out.update(words(e.text))
        elif u.kind == ("added" if side == "new" else "removed"):
            out.update(words((u.new if side == "new" else u.old) or ""))
    return out


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(pair)
def test_applying_the_change_gives_the_new_text(ab: tuple[str, str]) -> None:
    a, b = ab
    assert apply(a, diff(a, b)) == b
    assert apply(b, diff(b, a)) == a


@settings(max_examples=150, deadline=None)
@given(text)
def test_a_text_against_itself_has_no_units(a: str) -> None:
    change = diff(a, a)
    assert change.units == () and change.significance == 0.0


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(pair)
def test_diff_is_the_mirror_of_the_reverse_diff(ab: tuple[str, str]) -> None:
    a, b = ab
    forward, backward = diff(a, b), diff(b, a)
    assert changed_words(forward, "new") == changed_words(backward, "old")
    assert changed_words(forward, "old") == changed_words(backward, "new")
    kinds = Counter(u.kind for u in forward.units)
    back = Counter(u.kind for u in backward.units)
    assert (kinds["added"], kinds["removed"], kinds["modified"], kinds["moved"]) == (
        back["removed"],
        back["added"],
        back["modified"],
        back["moved"],
    )
    assert forward.stats.words_added == backward.stats.words_removed


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(pair)
def test_modified_edits_rebuild_both_sentences(ab: tuple[str, str]) -> None:
    for u in diff(*ab).units:
        if u.kind == "modified":
            assert "".join(e.text for e in u.edits if e.op != "insert") == u.old
            assert "".join(e.text for e in u.edits if e.op != "delete") == u.new
