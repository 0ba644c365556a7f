"""One bears-on threshold, or one per language? Cross-validation on the training split.

Usage: python benchmarks/claims_thresholds.py [--claims seeds/claims.yaml]

Builds the dataset `claimwatch claims train` trained on before the sparse banks
(`training.training_set` with ``sparse=False``: every passage against every
claim, in four views), takes
`training.cross_validate`'s out-of-fold probabilities, and for each fold chooses the threshold on the other
four folds' probabilities: one for all passages, one per script (latin, arabic,
cjk, other), or one for English and one for the rest (a group with under 10
positive pairs keeps the global threshold). Prints F1 and recall, overall and on
non-English passages, for claims with examples and for statements only. The
held-out split is not read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from archiver.app.claimsfile import load_story
from archiver.claims import training
from archiver.claims.features import script_of
from archiver.claims.semantic import E5Embedder

ROOT = Path(__file__).resolve().parent.parent
MIN_POSITIVES = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=Path, default=ROOT / "seeds" / "claims.yaml")
    args = parser.parse_args()
    story = load_story(args.claims)
    rows = story.labelled()
    # The four views with a full bank or none (not the sparse banks, whose passages
    # come fold by fold): pairs come passage by passage, claim by claim, view by view.
    data = training.training_set(rows, story.claims, E5Embedder(), sparse=False)
    per_view = [(script_of(r.text), r.lang) for r in rows for _ in story.claims]
    views = len(data.target) // len(per_view)
    scripts = np.asarray([s for s, _ in per_view] * views)
    english = np.asarray([lang == "en" for _, lang in per_view] * views)
    settings = training.Settings()
    probs, _stance_scores = training.cross_validate(data, settings)
    folds = training.folds_of(data.groups, settings.folds, settings.seed)
    groupings = {
        "one threshold": np.zeros(len(probs), int),
        "per script": np.unique(scripts, return_inverse=True)[1],
        "English / other": english.astype(int),
    }
    has_examples = data.bears[:, 0] > 0.5
    for kind, view in (("with examples", has_examples), ("statements only", ~has_examples)):
        for name, group in groupings.items():
            pred = _predictions(probs, data.target, view, group, folds)
            overall, other = (
                _scores(pred, data.target, view),
                _scores(pred, data.target, view & ~english),
            )
            print(
                f"{kind:15}  {name:15}  F1 {overall[0]:.4f}  recall {overall[1]:.4f}  "
                f"non-English F1 {other[0]:.4f}  recall {other[1]:.4f}"
            )


def _predictions(
    probs: np.ndarray,
    target: np.ndarray,
    view: np.ndarray,
    group: np.ndarray,
    folds: list[np.ndarray],
) -> np.ndarray:
    pred = np.zeros(len(probs), bool)
    for held in folds:
        fit, test = view & ~held, view & held
        overall, _f1 = training.best_threshold(probs[fit], target[fit])
        for g in np.unique(group[view]):
            fit_g, test_g = fit & (group == g), test & (group == g)
            threshold = overall
            if target[fit_g].sum() >= MIN_POSITIVES:
                threshold, _f1 = training.best_threshold(probs[fit_g], target[fit_g])
            pred[test_g] = probs[test_g] >= threshold
    return pred


def _scores(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """F1 and recall, every pair not labelled 1 counting as a negative."""
    p, y = pred[mask], target[mask] == 1
    found, wanted = int((p & y).sum()), int(y.sum())
    return training._f1(p, y), (found / wanted if wanted else 0.0)


if __name__ == "__main__":
    main()
