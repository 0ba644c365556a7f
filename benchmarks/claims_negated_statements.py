"""Does e5 place contradicting evidence nearer a negated claim? On the training split.

Usage: python benchmarks/claims_negated_statements.py [--claims seeds/claims.yaml]

For every labelled (passage, claim) pair of the story's examples: the passage's
sentence nearest the claim's statements, and how much nearer it comes to the
statement negated by a template ("It is not true that ...", "ليس صحيحا أن ...")
than to the statement itself. If e5 read negation, that margin would rank the
contradicting pairs above the supporting ones (AUC well over 0.5). Statements in
languages without a template are left out. Two to three minutes; the held-out split
is not read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from archiver.app.claimsfile import load_story
from archiver.claims import rules as lexical
from archiver.claims.semantic import E5Embedder

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.claims_new_claims import auc as rank_auc  # noqa: E402

NEGATED = {"en": "It is not true that {}", "ar": "ليس صحيحا أن {}"}


def auc(positive: list[float], negative: list[float]) -> float:
    """How often a positive pair's score is above a negative one's."""
    scores = np.asarray([*positive, *negative])
    return rank_auc(scores, np.asarray([1] * len(positive) + [0] * len(negative)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=Path, default=ROOT / "seeds" / "claims.yaml")
    args = parser.parse_args()
    story = load_story(args.claims)
    claims = {c.id: c for c in story.claims}
    embedder = E5Embedder()
    margin: dict[str, list[float]] = {"supports": [], "contradicts": [], "mentions": []}
    nearness: dict[str, list[float]] = {"supports": [], "contradicts": [], "mentions": []}
    for row in story.labelled():
        sentences = [s.text for s in lexical.parse(row.text)]
        if not sentences:
            continue
        vectors = embedder.embed(sentences)
        for claim_id, stance in row.labels.items():
            given = [(lang, t) for lang, t in claims[claim_id].statements if lang in NEGATED]
            if not given:
                continue
            plain = embedder.embed([t for _lang, t in given])
            negated = embedder.embed(
                [NEGATED[lang].format(t[0].lower() + t[1:]) for lang, t in given]
            )
            sims = vectors @ plain.T
            best = vectors[int(sims.max(axis=1).argmax())]
            margin[stance].append(float((best @ negated.T).max() - (best @ plain.T).max()))
            nearness[stance].append(float(sims.max()))
    counts = ", ".join(f"{len(v)} {k}" for k, v in margin.items())
    print(f"pairs: {counts}")
    print(
        "AUC, contradicts above supports, by the negated statement's margin: "
        f"{auc(margin['contradicts'], margin['supports']):.3f}"
    )
    print(
        "AUC, contradicts above supports, by lower similarity to the statement: "
        f"{auc([-x for x in nearness['contradicts']], [-x for x in nearness['supports']]):.3f}"
    )
    print(
        "AUC, mentions above supports, by the negated statement's margin: "
        f"{auc(margin['mentions'], margin['supports']):.3f}"
    )


if __name__ == "__main__":
    main()
