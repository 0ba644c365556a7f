"""The seed story's labelled corpus: the held-out split is frozen, and both splits
are what seeds/corpus/README.md says they are."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from archiver.app.claimsfile import load_story
from archiver.claims.labelled import read_labelled

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
CORPUS = SEEDS / "corpus"
HELDOUT_SHA256 = "318db465159107df1adf8b58628b93faf6cbdc4287256e9729489c39d2f855cc"
# The second test set, from another batch of pages (seeds/corpus/README.md).
EXTRA_SHA256 = "d902ad34815a99d3f45f4847004773e6395c73c1808d1b0f8d4d777a05004c0e"
STANCES = {"supports", "contradicts", "mentions"}


def rows(name: str) -> list[dict]:
    with (CORPUS / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_the_test_sets_are_frozen() -> None:
    # Written before any tuning; changing it would make every reported figure meaningless.
    digest = hashlib.sha256((CORPUS / "heldout.jsonl").read_bytes()).hexdigest()
    assert digest == HELDOUT_SHA256
    # extra.jsonl is a second test set, from another batch of pages: frozen too.
    digest = hashlib.sha256((CORPUS / "extra.jsonl").read_bytes()).hexdigest()
    assert digest == EXTRA_SHA256


@pytest.mark.parametrize("name", ["heldout.jsonl", "train.jsonl", "extra.jsonl"])
def test_every_passage_has_its_page_language_date_and_valid_labels(name: str) -> None:
    claims = {c.id for c in load_story(SEEDS / "claims.yaml").claims}
    seen = set()
    for row in rows(name):
        assert row["id"] not in seen
        seen.add(row["id"])
        assert row["url"].startswith(("http://", "https://")), row["id"]
        assert row["lang"] and row["date"][:2] in {"20"}, row["id"]
        assert row["text"].strip(), row["id"]
        assert set(row["labels"]) <= claims, row["id"]
        assert set(row["labels"].values()) <= STANCES, row["id"]
    # The loader used by `claims train` and `claims eval` reads the same file.
    assert len(read_labelled(CORPUS / name)) == len(seen)


def test_no_page_is_in_two_files() -> None:
    train, extra, held = (
        {r["url"].rstrip("/") for r in rows(name)}
        for name in ("train.jsonl", "extra.jsonl", "heldout.jsonl")
    )
    assert not train & held and not extra & held and not extra & train


def test_corpus_size_languages_and_distractors() -> None:
    everything = rows("heldout.jsonl") + rows("train.jsonl")
    langs = Counter(r["lang"] for r in everything)
    assert len(everything) >= 1500
    assert len(langs) >= 6
    assert sum(n for lang, n in langs.items() if lang != "en") >= 0.35 * len(everything)
    assert langs["ar"] >= 200
    assert sum(not r["labels"] for r in everything) >= 0.25 * len(everything)
    # Every claim has examples of its own to learn from in the training split.
    per_claim = Counter(c for r in rows("train.jsonl") for c in r["labels"])
    assert min(per_claim.values()) >= 20 and len(per_claim) == 10
