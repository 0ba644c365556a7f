"""claimwatch search: which sources say a phrase now, and over their versions from when
to when they said it and which edit took it away."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.text.search import Hit, Span, find, moves, spans
from store.models import NewVersion, SourceSpec
from store.repo import Store
from tests.support import NOW, claimwatch
from tests.support.records import capture, schedule


@pytest.mark.parametrize(
    ("text", "phrase", "expected"),
    [
        # Any case, any spacing; the match is given as the text writes it.
        ("Meta will KEEP   releasing models.", "keep releasing", [Hit("Meta will ", "KEEP   releasing", " models.")]),
        # Unicode case folding: one character of the text may fold to two.
        ("Die Straße bleibt offen.", "STRASSE", [Hit("Die ", "Straße", " bleibt offen.")]),
        # Never across two paragraphs; each paragraph gives its own context.
        ("It said open\nsource models.", "open source", []),
        ("Open weights.\nThen open weights again.", "open weights",
         [Hit("", "Open weights", "."), Hit("Then ", "open weights", " again.")]),
        # Arabic, as written.
        ("قالت ميتا إن نموذجها القادم سيبقى مغلقًا.", "نموذجها القادم",
         [Hit("قالت ميتا إن ", "نموذجها القادم", " سيبقى مغلقًا.")]),
        # Long context is cut at a word, and marked.
        ("word " * 30 + "needle" + " tail" * 30, "needle",
         [Hit("…" + "word " * 11, "needle", " tail" * 11 + "…")]),
        # A single character is no phrase.
        ("a b c", "a", []),
    ],
)  # fmt: skip
def test_find_a_phrase(text: str, phrase: str, expected: list[Hit]) -> None:
    assert find(text, phrase) == expected


def test_find_stops_at_its_limit() -> None:
    assert len(find("x y " * 10, "x y", limit=3)) == 3


def test_the_phrases_an_edit_moves() -> None:
    old = "The threshold is 700 million users.\nWeights are open."
    new = "The threshold is 500 million users.\nWeights are OPEN, and free."
    watched = ["700 million", "500 million", "are open", "closed"]
    moved = moves(old, new, watched)
    assert [(m.phrase, m.said) for m in moved] == [("700 million", False), ("500 million", True)]
    assert [m.hit for m in moved] == [
        Hit("The threshold is ", "700 million", " users."),  # where the old text said it
        Hit("The threshold is ", "500 million", " users."),
    ]
    assert moves(old, old, watched) == []


T = [NOW + timedelta(hours=h) for h in range(6)]


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ([False, False], []),
        ([True, True, True], [Span((1, T[0]), (3, T[2]), None)]),
        ([False, True, True, False], [Span((2, T[1]), (3, T[2]), (4, T[3]))]),
        (  # said, taken away, said again (a flip-back), and still
            [True, False, True, True],
            [Span((1, T[0]), (1, T[0]), (2, T[1])), Span((3, T[2]), (4, T[3]), None)],
        ),
    ],
)
def test_the_versions_that_said_it(present: list[bool], expected: list[Span]) -> None:
    assert spans([(n + 1, T[n], p) for n, p in enumerate(present)]) == expected


@pytest.mark.e2e
@pytest.mark.slow
def test_search_the_archive_now_and_over_time(tmp_path: Path) -> None:
    """The CLI: current texts by default, every version with --history, --source, JSON
    records, a note when nothing says it, and one error line for a phrase too short."""
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    store.migrate()
    histories = {
        "licence": [
            "Licensees with over 700 million monthly users need a separate licence.",
            "Licensees with over 500 million monthly users need a separate licence.",
            "Licensees with over 700 million monthly users need a separate licence.",
        ],
        "blog": ["We will keep releasing open models.", "We will release some models."],
        "other": ["Nothing about the thresholds here."],
    }
    for label, texts in histories.items():
        sid = store.add_source(SourceSpec(url=f"http://127.0.0.1:9/{label}", label=label), NOW)
        for n, text in enumerate(texts):
            new = NewVersion(text=text, raw=None, title=label)
            store.add_version(new, capture(sid, n * 60), schedule(n * 60))
    store.close()

    now = claimwatch(tmp_path, "search", "700 MILLION")
    assert now.returncode == 0, now.stderr
    assert now.stdout.splitlines() == [
        "licence  v3  2025-07-14 11:00:00",
        "  Licensees with over 700 million monthly users need a separate licence.",
    ]
    over_time = claimwatch(tmp_path, "search", "700 million", "--history")
    assert over_time.stdout.splitlines() == [
        "licence",
        "  said in v1 (2025-07-14 09:00:00); gone in v2 (2025-07-14 10:00:00)",
        "  said in v3 (2025-07-14 11:00:00), and still",
    ]
    records = claimwatch(tmp_path, "search", "keep releasing", "--history", "--json")
    assert [json.loads(line) for line in records.stdout.splitlines()] == [
        {
            "source": "blog",
            "url": "http://127.0.0.1:9/blog",
            "spans": [
                {
                    "from_version": 1,
                    "from_captured_at": "2025-07-14T09:00:00+00:00",
                    "to_version": 1,
                    "to_captured_at": "2025-07-14T09:00:00+00:00",
                    "gone_in_version": 2,
                    "gone_at": "2025-07-14T10:00:00+00:00",
                }
            ],
        }
    ]
    gone = claimwatch(tmp_path, "search", "keep releasing")
    assert (gone.returncode, gone.stdout) == (0, "")
    assert gone.stderr == "(no current text says 'keep releasing')\n"
    one = claimwatch(tmp_path, "search", "licence", "--source", "blog")
    assert (one.stdout, one.stderr) == ("", "(no current text says 'licence')\n")
    both = claimwatch(tmp_path, "search", "monthly users", "--limit", "1", "--json")
    assert len(both.stdout.splitlines()) == 1
    short = claimwatch(tmp_path, "search", " a ")
    assert short.returncode == 2
    assert short.stderr == "claimwatch: error: search for at least 2 characters, not ' a '\n"


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet="aAßSsΣσς İi \n\t\u00a0\u2028-.", max_size=60),
    phrase=st.text(alphabet="aAßSsΣσς İi \u00a0-.", min_size=2, max_size=8),
)
def test_the_shortcut_never_hides_a_match(text: str, phrase: str) -> None:
    """``find`` skips the paragraphs' character maps when the whole text, folded at
    once, lacks the phrase: over case folds that change length (ß, İ), final sigma and
    every kind of space, it finds exactly what the full search finds."""
    from archiver.text.search import CONTEXT, _found, folded, too_short

    full = [] if too_short(phrase) else _found(text, folded(phrase), 3, CONTEXT)
    assert find(text, phrase) == full
