"""Would more labelled passages help? The matcher's learning curve on the training split.

Usage: python benchmarks/claims_learning_curve.py [--fractions 0.25 0.5 0.75 1]

The training split's pages are cut into 5 folds (``training.page_folds``, seed 7).
For each fold, a model is trained (``training.training_set`` and ``training.train``,
as ``claims train`` does) on a fraction of the other folds' pages, the same pages
first at every fraction, and the fold's passages are then scored as the matcher
scores a new page: against a bank of the training pages' examples with the claims
as written, and with the claims reduced to statements and no bank (a new story).
Each pair is flagged at its kind's threshold. F1 and stance accuracy are pooled over
the five folds. The held-out split is not read.

If F1 still rises from 75% to 100% of the pages, more passages of the same kind
would raise it further; if it is flat, they would not. With ``--bank-only`` the
model is trained on all of the other folds' pages every time and only the bank
(the story's labelled examples the matcher compares with) is cut to the fraction:
what a story's own examples add, apart from what training adds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from archiver.app.claimsfile import load_story
from archiver.claims import training
from archiver.claims.semantic import E5Embedder

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=Path, default=ROOT / "seeds" / "claims.yaml")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--bank-only", action="store_true", help="cut only the bank")
    args = parser.parse_args()
    story = load_story(args.claims)
    rows = story.labelled()
    embedder = E5Embedder()
    settings = training.Settings()
    fold = training.page_folds([r.group for r in rows], settings.folds, settings.seed)
    pages = list(fold)  # shuffled: a fraction keeps the same pages first
    bare = [training.statements_only(c) for c in story.claims]
    models: dict[int, training.ClaimModel] = {}
    print("| pages used | passages | F1, full bank | stance | F1, statements, no bank |")
    print("|---:|---:|---:|---:|---:|")
    for fraction in args.fractions:
        start = time.perf_counter()
        full: list[tuple[np.ndarray, np.ndarray]] = []
        new: list[tuple[np.ndarray, np.ndarray]] = []
        stance_right = stance_n = used = 0
        for k in range(settings.folds):
            pool = [g for g in pages if fold[g] != k]
            keep = set(pool[: round(len(pool) * fraction)])
            train_rows = [r for r in rows if r.group in keep]
            test_rows = [r for r in rows if fold[r.group] == k]
            used += len(train_rows)
            if args.bank_only:
                if k not in models:
                    every = [r for r in rows if fold[r.group] != k]
                    data = training.training_set(every, story.claims, embedder, seed=settings.seed)
                    models[k] = training.train(data, settings, {})
                model = models[k]
            else:
                data = training.training_set(train_rows, story.claims, embedder, seed=settings.seed)
                model = training.train(data, settings, {})
            bank = training.bank_of(train_rows)
            test = training.build(test_rows, story.claims, embedder, bank=bank)
            flagged = model.bears_probability(test.bears) >= model.threshold
            full.append((flagged, test.target))
            caught = flagged & (test.stance_target >= 0)
            found = model.stance.scores(test.stance[caught]).argmax(axis=1)
            stance_right += int((found == test.stance_target[caught]).sum())
            stance_n += int(caught.sum())
            test = training.build(test_rows, bare, embedder)
            flagged = model.bears_probability(test.bears) >= model.threshold_no_examples
            new.append((flagged, test.target))
        print(
            f"| {fraction:.0%} | {used / settings.folds:.0f} | {_pooled_f1(full):.4f} "
            f"| {stance_right / max(stance_n, 1):.4f} | {_pooled_f1(new):.4f} |",
            flush=True,
        )
        print(f"<!-- {time.perf_counter() - start:.0f} s -->", flush=True)


def _pooled_f1(parts: list[tuple[np.ndarray, np.ndarray]]) -> float:
    pred = np.concatenate([p for p, _ in parts])
    target = np.concatenate([t for _, t in parts])
    return training._f1(pred, target)


if __name__ == "__main__":
    main()
