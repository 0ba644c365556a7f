"""Does e5 read a claim and its evidence together? Stance from one joint vector.

Usage: python benchmarks/claims_joint_stance.py [--claims seeds/claims.yaml]

An NLI model reads the claim and the evidence as one input, which is how it sees a
contradiction. e5 is a sentence embedder, but it too can be given both at once:
"statement evidence" as one text, its tokens attending to each other. For every
labelled (passage, claim) pair of the story's examples, this embeds the passage's
sentence nearest the claim's statements, the statement, and the two joined, then
fits a logistic model of "contradicts" against "supports" on the other claims' pairs
and scores the left-out claim's (leave one claim out, as a new story's claims are
never trained on). Three inputs are compared: the sentence's vector alone (what
the evidence is about), the joint vector, and the joint vector less the mean of the
two it joins (what reading them together adds). Two to three minutes; the held-out
split is not read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from archiver.app.claimsfile import load_story
from archiver.claims import rules as lexical
from archiver.claims.probes import fit_logistic
from archiver.claims.semantic import E5Embedder

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.claims_new_claims import auc  # noqa: E402

L2 = (10.0, 100.0, 1000.0)


def left_out_auc(x: np.ndarray, y: np.ndarray, claim: np.ndarray, l2: float) -> str:
    """AUC of the pooled scores, each claim scored by a model fitted on the others, and
    the mean of the AUCs within each claim (its pairs ranked against each other only)."""
    scores = np.zeros(len(y))
    for c in np.unique(claim):
        train = claim != c
        mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-9
        w, b = fit_logistic((x[train] - mean) / std, y[train], l2)
        scores[~train] = ((x[~train] - mean) / std) @ w + b
    within = [auc(scores[claim == c], y[claim == c]) for c in np.unique(claim)]
    return f"{auc(scores, y):.3f} ({np.nanmean(within):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=Path, default=ROOT / "seeds" / "claims.yaml")
    args = parser.parse_args()
    story = load_story(args.claims)
    claims = {c.id: c for c in story.claims}
    embedder = E5Embedder()
    sentence, statement, joined, stance, claim = [], [], [], [], []
    for row in story.labelled():
        sentences = [s.text for s in lexical.parse(row.text)]
        if not sentences:
            continue
        vectors = embedder.embed(sentences)
        for claim_id, label in row.labels.items():
            if label == "mentions":
                continue
            texts = [t for _lang, t in claims[claim_id].statements]
            sims = vectors @ embedder.embed(texts).T
            i, j = np.unravel_index(int(sims.argmax()), sims.shape)
            sentence.append(vectors[i])
            statement.append(embedder.embed([texts[j]])[0])
            joined.append(f"{texts[j]} {sentences[i]}")
            stance.append(label == "contradicts")
            claim.append(claim_id)
    s, t = np.stack(sentence), np.stack(statement)
    both = embedder.embed(joined)
    y, c = np.asarray(stance, dtype=float), np.asarray(claim)
    print(f"pairs: {int(y.sum())} contradicts, {int(len(y) - y.sum())} supports")
    inputs = {
        "the sentence's vector alone": s,
        "the joint vector": both,
        "the joint vector less the mean of its two": both - (s + t) / 2,
    }
    print(
        "leave-one-claim-out AUC, contradicts above supports (mean within a claim), "
        "at L2 " + " / ".join(map(str, L2))
    )
    for name, x in inputs.items():
        values = " / ".join(left_out_auc(x, y, c, l2) for l2 in L2)
        print(f"  {name:44} {values}")


if __name__ == "__main__":
    main()
