"""Which stances the matcher can tell apart, by kind of story: cross-validation on the
training split.

Usage: python benchmarks/claims_stance_by_view.py [--claims seeds/claims.yaml]

Builds the dataset `claimwatch claims train` trains on (`training.training_set`: every
passage described in every view, from a full bank of the story's examples to none,
with the claims as written or as bare statements), takes `training.cross_validate`'s
out-of-fold scores, and keeps the labelled pairs the bears-on model catches at the
thresholds `train` chooses (one for claims with examples, one without). For each
view it prints stance accuracy and the recall of each stance; then the same for
every pair whose claim has examples and every pair whose claim has none, and how the
pairs of claims without examples whose evidence is negated where the claim is not are
labelled. One to four minutes on two cores; the held-out split is not read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from archiver.app.claimsfile import load_story
from archiver.claims import training
from archiver.claims.features import STANCE_FEATURES
from archiver.claims.rules import STANCES
from archiver.claims.semantic import E5Embedder

ROOT = Path(__file__).resolve().parent.parent


def line(name: str, target: np.ndarray, found: np.ndarray) -> str:
    recall = [
        f"{float((found[target == k] == k).mean()):.2f}" if (target == k).any() else "-"
        for k in range(len(STANCES))
    ]
    counts = "/".join(str(int((target == k).sum())) for k in range(len(STANCES)))
    accuracy = float((target == found).mean()) if len(target) else 0.0
    return f"| {name} | {len(target)} ({counts}) | {accuracy:.3f} | {' / '.join(recall)} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=Path, default=ROOT / "seeds" / "claims.yaml")
    args = parser.parse_args()
    story = load_story(args.claims)
    settings = training.Settings()
    data = training.training_set(story.labelled(), story.claims, E5Embedder(), True, settings.seed)
    probs, scores = training.cross_validate(data, settings)
    found = scores.argmax(axis=1)
    with_examples = data.bears[:, 0] > 0.5  # has_examples
    cut = np.zeros(len(probs))
    for mask in (with_examples, ~with_examples):
        cut[mask] = training.best_threshold(probs[mask], data.target[mask])[0]
    caught = (data.stance_target >= 0) & (probs >= cut)
    views = np.asarray(data.views)
    print("| view | pairs (supports/contradicts/mentions) | stance accuracy | recall s / c / m |")
    print("|---|---:|---:|---|")
    for view in sorted(set(data.views)):
        m = caught & (views == view)
        print(line(view, data.stance_target[m], found[m]))
    for name, mask in (
        ("every claim with examples", with_examples),
        ("every claim without", ~with_examples),
    ):
        m = caught & mask
        print(line(f"**{name}**", data.stance_target[m], found[m]))
    # Does a negation the claim lacks mark a contradiction? (a stance feature)
    mismatch = data.stance[:, STANCE_FEATURES.index("negation_mismatch")] > 0.5
    m = caught & ~with_examples & mismatch
    labels = ", ".join(
        f"{int((data.stance_target[m] == k).sum())} {s}" for k, s in enumerate(STANCES)
    )
    print(f"\nclaims without examples, evidence negated where the claim is not: {labels}")


if __name__ == "__main__":
    main()
