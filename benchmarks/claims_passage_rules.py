"""One bears-on decision per pair, or one per passage? Cross-validation on the training split.

Usage: python benchmarks/claims_passage_rules.py [--claims seeds/claims.yaml]

Most labelled passages carry one claim, so a passage's second-best claim might need
a higher bar than its best. Builds the dataset `claimwatch claims train` trains on
(`training.training_set`), takes `training.cross_validate`'s out-of-fold
probabilities and, for the views that score every passage against every claim of
the story, compares three rules, each with its thresholds chosen on four folds and
applied to the fifth:

* one threshold for every pair (what the matcher does);
* the passage's best claim at t1, its other claims at t2;
* any claim at t1 that also reaches a share of the best claim's probability.

Prints F1 for each view and rule. The held-out split is not read. About ten
minutes on two cores, most of it building the dataset.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archiver.app.claimsfile import load_story
from archiver.claims import training
from archiver.claims.semantic import E5Embedder

ROOT = Path(__file__).resolve().parent.parent
Rule = Callable[[np.ndarray, Any], np.ndarray]  # (passages x claims) probs -> chosen


def one_threshold(p: np.ndarray, t: float) -> np.ndarray:
    return p >= t


def best_then_others(p: np.ndarray, ts: tuple[float, float]) -> np.ndarray:
    rank = np.argsort(np.argsort(-p, axis=1), axis=1)
    return ((rank == 0) & (p >= ts[0])) | ((rank > 0) & (p >= ts[1]))


def share_of_best(p: np.ndarray, ts: tuple[float, float]) -> np.ndarray:
    return (p >= ts[0]) & (p >= ts[1] * p.max(axis=1, keepdims=True))


def cross_validated(
    rule: Rule, grid: Sequence[Any], p: np.ndarray, y: np.ndarray, fold: np.ndarray
) -> float:
    pred = np.zeros_like(y, dtype=bool)
    for k in np.unique(fold):
        fit, test = fold != k, fold == k
        best = max(grid, key=lambda g: training._f1(rule(p[fit], g), y[fit]))
        pred[test] = rule(p[test], best)
    return training._f1(pred, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=Path, default=ROOT / "seeds" / "claims.yaml")
    args = parser.parse_args()
    story = load_story(args.claims)
    n = len(story.claims)
    data = training.training_set(story.labelled(), story.claims, E5Embedder())
    settings = training.Settings()
    probs, _scores = training.cross_validate(data, settings)
    fold = np.zeros(len(probs), int)
    for k, held in enumerate(training.folds_of(data.groups, settings.folds, settings.seed)):
        fold[held] = k
    views = np.asarray(data.views)
    ids = {c.id for c in story.claims}
    grid = [float(t) for t in training.GRID]
    pairs = [(a, b) for a in grid for b in grid if b >= a]
    shares = [(a, s) for a in grid for s in np.round(np.arange(0, 1.01, 0.1), 1)]
    print(f"{'view':45}  one threshold  best, then others  share of best")
    for view in dict.fromkeys(data.views):
        index = np.flatnonzero(views == view)
        if {data.claims[i] for i in index[:n]} != ids:  # a small story's: not a passage's
            continue
        p, y = probs[index].reshape(-1, n), data.target[index].reshape(-1, n)
        f = fold[index].reshape(-1, n)[:, 0]
        scores = [
            cross_validated(one_threshold, grid, p, y, f),
            cross_validated(best_then_others, pairs, p, y, f),
            cross_validated(share_of_best, shares, p, y, f),
        ]
        print(f"{view:45}  {scores[0]:13.3f}  {scores[1]:17.3f}  {scores[2]:13.3f}")


if __name__ == "__main__":
    main()
