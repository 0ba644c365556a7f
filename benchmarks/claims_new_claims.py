"""How the bears-on model does on claims it never saw: leave one claim out.

Usage: python benchmarks/claims_new_claims.py [--claims seeds/claims.yaml]

A new user's story is claims the model was not trained on, written as plain
statements, with no labelled examples yet. This builds the dataset `claimwatch
claims train` trains on (`training.training_set`, every passage in several
views), and for every claim and every fold of pages fits the bears-on model on
the other claims' pairs from the other folds, then scores the left-out claim's
pairs in the view with the claims as statements and no bank (``Dataset.views``).
The threshold is chosen on the pooled out-of-fold probabilities, so F1 is an
upper bound; AUC is per claim, then averaged. The held-out split is not read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from archiver.app.claimsfile import load_story
from archiver.claims import training
from archiver.claims.semantic import E5Embedder

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=Path, default=ROOT / "seeds" / "claims.yaml")
    args = parser.parse_args()
    story = load_story(args.claims)
    rows = story.labelled()
    data = training.training_set(rows, story.claims, E5Embedder())
    claim = np.asarray(data.claims, dtype=object)
    # scored: the claims reduced to statements, with no bank (a new user's first story)
    test_view = np.asarray([v == training.NONE + training.STATEMENTS for v in data.views])
    settings = training.Settings()
    folds = training.folds_of(data.groups, settings.folds, settings.seed)
    probs = np.full(len(data.target), np.nan)
    for c in story.claims:
        for held in folds:
            model = training.fit(training._subset(data, (claim != c.id) & ~held), settings)
            test = (claim == c.id) & held & test_view
            probs[test] = model.bears_probability(data.bears[test])
    scored = ~np.isnan(probs)
    threshold, f1 = training.best_threshold(probs[scored], data.target[scored])
    aucs = [
        auc(probs[scored & (claim == c.id)], data.target[scored & (claim == c.id)])
        for c in story.claims
    ]
    for c, value in zip(story.claims, aucs, strict=True):
        print(f"  {c.id:40} AUC {value:.3f}")
    print(f"mean AUC {np.mean(aucs):.4f}; pooled F1 {f1:.4f} at threshold {threshold:.2f}")


def auc(scores: np.ndarray, target: np.ndarray) -> float:
    """The rank AUC of ``scores`` against 0/1 ``target`` (nan without both classes)."""
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = target == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if not n_pos or not n_neg:
        return float("nan")
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


if __name__ == "__main__":
    main()
