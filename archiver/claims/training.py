"""Training the claims model on labelled passages (``archiver.claims.labelled``).

``train`` fits the two logistic scorers of ``archiver.claims.model`` with Newton's
method (L2-regularized, deterministic) and picks the bears-on threshold by
cross-validation grouped by page, so passages from one page never sit on both
sides of a fold.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from archiver.claims.bank import Bank, Example
from archiver.claims.features import describe, example_count
from archiver.claims.labelled import Labelled, embedded_ahead
from archiver.claims.model import ClaimModel, Linear
from archiver.claims.probes import FOLDS, fit_logistic, fold_of
from archiver.claims.rules import STANCES, Claim, MatchOptions
from archiver.claims.semantic import MODEL_NAME, Embedder

# -- the dataset -------------------------------------------------------------------


@dataclass
class Dataset:
    bears: np.ndarray  # (pairs, features)
    target: np.ndarray  # (pairs,) 1 when the label has the claim
    stance: np.ndarray  # (pairs, stance features)
    stance_target: np.ndarray  # (pairs,) index into STANCES, -1 without a label
    groups: list[str]
    weight: np.ndarray  # (pairs,) sample weights (reviewer verdicts can weigh more)
    views: list[str] = field(default_factory=list)  # the kind of bank each pair saw
    claims: list[str] = field(default_factory=list)  # the claim of each pair


def build(
    rows: Sequence[Labelled],
    claims: Sequence[Claim],
    embedder: Embedder,
    options: MatchOptions | None = None,
    weight: float = 1.0,
    bank: Bank | None = None,
    view: str = "",
) -> Dataset:
    """Features of every (passage, claim) pair. With a bank, a passage never sees the
    examples from its own page, as a passage from a new page would not. ``view`` names
    the kind of bank, for the cross-validation report."""
    options = options or MatchOptions()
    bears, target, stance, stance_target, groups, ids = [], [], [], [], [], []
    for row in embedded_ahead(rows, embedder):
        _texts, pairs = describe(row.text, claims, embedder, options, bank, row.group)
        for pair in pairs:
            label = row.labels.get(pair.claim.id)
            bears.append(pair.bears)
            target.append(1.0 if label else 0.0)
            stance.append(pair.stance)
            stance_target.append(STANCES.index(label) if label else -1)
            groups.append(row.group)
            ids.append(pair.claim.id)
    return Dataset(
        np.vstack(bears),
        np.asarray(target),
        np.vstack(stance),
        np.asarray(stance_target),
        groups,
        np.full(len(target), weight),
        [view] * len(target),
        ids,
    )


def statements_only(claim: Claim) -> Claim:
    """The claim without its lexical hints: only what it says, in its languages."""
    return Claim(claim.id, claim.statements)


def in_language(claim: Claim, lang: str) -> Claim:
    """The claim as statements in ``lang`` only (none, if it has no such statement)."""
    return Claim(claim.id, tuple((lg, text) for lg, text in claim.statements if lg == lang))


def shared_languages(claims: Sequence[Claim]) -> list[str]:
    """The languages every claim has a statement in."""
    if not claims:
        return []
    common = set.intersection(*({lg for lg, _ in c.statements} for c in claims))
    return sorted(common)


def labelled_for(rows: Sequence[Labelled], claims: Sequence[Claim]) -> list[Labelled]:
    """The rows as a story of only ``claims`` would have them labelled: the evidence of
    any other claim is a near miss there."""
    ids = {c.id for c in claims}
    return [replace(row, labels={k: v for k, v in row.labels.items() if k in ids}) for row in rows]


def bank_of(rows: Sequence[Labelled]) -> Bank:
    """Every labelled passage as an example: one per claim it bears on, or a near miss."""
    out = []
    for row in rows:
        if not row.labels:
            out.append(Example(None, None, row.text, row.group))
        for cid, stance in row.labels.items():
            out.append(Example(cid, stance, row.text, row.group))
    return Bank(tuple(out))


def concat(parts: Sequence[Dataset]) -> Dataset:
    return Dataset(
        np.vstack([p.bears for p in parts]),
        np.concatenate([p.target for p in parts]),
        np.vstack([p.stance for p in parts]),
        np.concatenate([p.stance_target for p in parts]),
        [g for p in parts for g in p.groups],
        np.concatenate([p.weight for p in parts]),
        [v for p in parts for v in p.views],
        [c for p in parts for c in p.claims],
    )


# -- fitting -----------------------------------------------------------------------


def _standardize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    return mean, scale


@dataclass(frozen=True)
class Settings:
    l2_bears: float = 1.0
    l2_stance: float = 30.0
    folds: int = 5
    seed: int = 7
    sparse: bool = True  # train on sparse banks too (training_set)


def fit(data: Dataset, settings: Settings, threshold: float = 0.5) -> ClaimModel:
    mean, scale = _standardize(data.bears)
    w, b = fit_logistic((data.bears - mean) / scale, data.target, settings.l2_bears, data.weight)
    bears = Linear(mean, scale, w[None, :], np.asarray([b]))
    labelled = data.stance_target >= 0
    xs = data.stance[labelled]
    smean, sscale = _standardize(xs)
    z = (xs - smean) / sscale
    rows, biases = [], []
    for k in range(len(STANCES)):
        y = (data.stance_target[labelled] == k).astype(float)
        wk, bk = fit_logistic(z, y, settings.l2_stance, data.weight[labelled])
        rows.append(wk)
        biases.append(bk)
    stance = Linear(smean, sscale, np.vstack(rows), np.asarray(biases))
    return ClaimModel(bears, stance, threshold, MODEL_NAME)


def page_folds(groups: Sequence[str], k: int, seed: int) -> dict[str, int]:
    """The fold of every page, in the order ``seed`` shuffled the pages into."""
    pages = sorted(set(groups))
    random.Random(seed).shuffle(pages)
    return {g: n % k for n, g in enumerate(pages)}


def folds_of(groups: Sequence[str], k: int, seed: int) -> list[np.ndarray]:
    """Fold number of every pair, whole pages at a time (``page_folds``)."""
    fold = page_folds(groups, k, seed)
    assign = np.asarray([fold[g] for g in groups])
    return [assign == n for n in range(k)]


def cross_validate(data: Dataset, settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold bears-on probabilities and stance scores (pairs x STANCES) for every
    pair; a pair's predicted stance is its highest score."""
    probs = np.zeros(len(data.target))
    scores = np.zeros((len(data.target), len(STANCES)))
    for held in folds_of(data.groups, settings.folds, settings.seed):
        model = fit(_subset(data, ~held), settings)
        probs[held] = model.bears_probability(data.bears[held])
        scores[held] = model.stance.scores(data.stance[held])
    return probs, scores


def _subset(data: Dataset, mask: np.ndarray) -> Dataset:
    return Dataset(
        data.bears[mask],
        data.target[mask],
        data.stance[mask],
        data.stance_target[mask],
        [g for g, m in zip(data.groups, mask, strict=True) if m],
        data.weight[mask],
        [v for v, m in zip(data.views, mask, strict=True) if m] if data.views else [],
        [c for c, m in zip(data.claims, mask, strict=True) if m] if data.claims else [],
    )


def _f1(pred: np.ndarray, target: np.ndarray) -> float:
    tp = float((pred & (target == 1)).sum())
    wrong = float((pred & (target == 0)).sum() + (~pred & (target == 1)).sum())
    return 2 * tp / (2 * tp + wrong) if tp else 0.0


GRID = np.round(np.arange(0.10, 0.91, 0.02), 2)  # thresholds tried
SOFTNESS = 0.004  # of F1: how far below the best a threshold still counts


def soft_argmax(values: np.ndarray, scores: np.ndarray, softness: float = SOFTNESS) -> float:
    """The mean of ``values`` weighted by exp((score - best) / softness): near the best
    score a flat curve has no single argmax, and the plain one jumps between the ends
    of the plateau with the last bits of the sentence vectors, which differ between
    CPUs (the embedder picks its SIMD path at run time). The weighted mean moves with
    the curve smoothly instead."""
    weights = np.exp((scores - scores.max()) / softness)
    return float((values * weights).sum() / weights.sum())


def best_threshold(probs: np.ndarray, target: np.ndarray, window: int = 2) -> tuple[float, float]:
    """The threshold with the best F1 on out-of-fold probabilities, and its F1.

    Near its top the F1 curve is flat (0.625-0.626 from 0.26 to 0.38 on the seed
    corpus with examples), so the threshold is the ``soft_argmax`` of the curve,
    itself averaged over ``window`` grid steps either side. Its plain argmax moved
    from 0.44 to 0.48 between two machines, and the smoothed argmax from 0.30 to
    0.34 between two others, which moved the held-out F1 by 0.012; with the
    probabilities jittered by 0.01, this choice stays within 0.323-0.333."""
    scores = np.asarray([_f1(probs >= t, target) for t in GRID])
    if not scores.any():
        return 0.5, 0.0
    n = len(GRID)
    smooth = np.asarray([scores[max(0, i - window) : i + window + 1].mean() for i in range(n)])
    threshold = round(soft_argmax(GRID, smooth), 4)
    return threshold, _f1(probs >= threshold, target)


def train(data: Dataset, settings: Settings, info: dict[str, Any]) -> ClaimModel:
    """Fit on everything, with the threshold that cross-validation found best."""
    probs, scores = cross_validate(data, settings)
    stances = scores.argmax(axis=1)
    with_examples = data.bears[:, 0] > 0.5  # has_examples: the claim has labelled examples
    # A claim with a few examples (a reviewer's first verdicts) has its own threshold: the
    # model reads a few examples cautiously, and the one for full banks cost such claims
    # recall (docs/benchmarks.md, "A claim with few examples").
    few = with_examples & (example_count(data.bears) <= SPARSE_MAX)
    cv: dict[str, Any] = {}
    thresholds = []
    groups = (("with_examples", with_examples), ("statements_only", ~with_examples))
    for name, mask in (*groups, ("few_examples", few)):
        threshold, f1 = best_threshold(probs[mask], data.target[mask]) if mask.any() else (0.5, 0)
        thresholds.append(threshold)
        caught = mask & (data.stance_target >= 0) & (probs >= threshold)
        right = stances[caught] == data.stance_target[caught]
        cv[name] = {
            "threshold": threshold,
            "f1": round(f1, 4),
            "stance_accuracy": round(float(right.mean()), 4) if caught.any() else 0.0,
        }
    if data.views:  # F1 by kind of bank, each pair at its own kind of claim's threshold
        cut = np.where(few, thresholds[2], np.where(with_examples, thresholds[0], thresholds[1]))
        for view in sorted(set(data.views)):
            mask = np.asarray([v == view for v in data.views])
            cv.setdefault("by_view", {})[view] = round(
                _f1(probs[mask] >= cut[mask], data.target[mask]), 4
            )
    model = fit(data, settings)
    details = {
        **info,
        "settings": settings.__dict__,
        "pairs": len(data.target),
        "cv": cv,
    }
    return ClaimModel(
        model.bears,
        model.stance,
        thresholds[0],
        model.embedder,
        details,
        thresholds[1],
        thresholds[2] if few.any() else None,
        SPARSE_MAX,
    )


def training_set(
    rows: Sequence[Labelled],
    claims: Sequence[Claim],
    embedder: Embedder,
    sparse: bool = True,
    seed: int = 7,
) -> Dataset:
    """Every passage described in several views: against a bank of all the other
    pages' examples (how the shipped story is matched), against no bank (a story
    nobody has reviewed yet) and, with ``sparse``, against a bank of a few examples a
    claim (``sparse_banks``: a story a reviewer has just begun), each with the claims
    as written and with the claims reduced to their statements (no entities, terms or
    cues: what a new user writes first); with the claims as statements in one of their
    languages only, against the full bank and against none (most users write their
    claims in one language); and with the claims as statements dealt into stories of
    one, two, three or five claims (``small_stories``: a new user's first story may be
    that small), against no bank and against a bank of the story's own examples
    (``labelled_for``). So the model has seen every kind of story it will meet."""
    bank = bank_of(rows)
    bare = [statements_only(c) for c in claims]
    views: list[tuple[Sequence[Claim], Bank | None, str]] = [
        (claims, bank, FULL),
        (claims, None, NONE),
        (bare, bank, FULL + STATEMENTS),
        (bare, None, NONE + STATEMENTS),
    ]
    languages = shared_languages(bare)
    if len(languages) > 1:
        views += [
            ([in_language(c, lang) for c in bare], b, kind + ONE_LANGUAGE.format(lang))
            for lang in languages
            for b, kind in ((bank, FULL), (None, NONE))
        ]
    parts = [build(rows, c, embedder, bank=b, view=v) for c, b, v in views]
    for story in small_stories(bare, seed):
        size = SMALL.format(len(story))
        own = labelled_for(rows, story)
        parts.append(build(own, story, embedder, view=size + NONE + STATEMENTS))
        parts.append(build(own, story, embedder, bank=bank_of(own), view=size + FULL + STATEMENTS))
    if sparse:
        banks = sparse_banks(bank, seed)
        by_fold: dict[int, list[Labelled]] = defaultdict(list)
        for row in rows:
            by_fold[fold_of(row.group)].append(row)
        for c, view in ((claims, SPARSE), (bare, SPARSE + STATEMENTS)):
            parts += [
                build(by_fold[f], c, embedder, bank=banks[f], view=view) for f in sorted(by_fold)
            ]
    return concat(parts)


# training_set's views, by kind of bank; STATEMENTS marks the claims reduced to statements
FULL, SPARSE, NONE, STATEMENTS = "full bank", "sparse bank", "no bank", ", statements only"


SMALL = "{} of the claims, "  # training_set's small stories, by size
ONE_LANGUAGE = ", statements in {} only"  # training_set's claims in one language


def small_stories(claims: Sequence[Claim], seed: int) -> list[list[Claim]]:
    """Small stories made of a story's claims: each claim alone, then the claims shuffled
    into stories of two, three and five (the last ones smaller or left out when the
    story has fewer than ten claims).

    A model trained only on the seed story's ten claims at once scored one-claim
    stories at F1 0.28 and two-claim ones at 0.25 out of fold (statements only, no
    bank), against 0.46 for all ten: its comparisons across claims mean something else
    in a story of one. Trained on these too, with the features repeated for stories
    of ``SMALL_STORY`` claims or fewer, 0.38 and 0.45, for half a point less on the ten.
    With a bank of its own examples a one-claim story scored 0.10 until the model was
    trained on such stories too (``labelled_for``), 0.75 after (docs/benchmarks.md)."""
    order = list(claims)
    random.Random(seed).shuffle(order)
    stories = [[c] for c in claims]
    start = 0
    for size in (2, 3, 5):
        if order[start : start + size]:
            stories.append(order[start : start + size])
        start += size
    return stories


SPARSE_MAX = 12  # examples of a claim, at most, in a sparse bank


def sparse_banks(bank: Bank, seed: int) -> list[Bank]:
    """For each training fold of pages (``probes.fold_of``), a bank like the one a new
    reviewer builds, drawn from the other folds' examples: for each claim between 1 and
    ``SPARSE_MAX`` of its examples, and between none and as many near misses as the
    claims have examples together. The passages of a fold are described with its bank,
    so none sees an example from its own page."""
    rng = random.Random(seed)
    folds = [fold_of(e.group) for e in bank.examples]
    out = []
    for fold in range(FOLDS):
        by_claim: dict[str, list[Example]] = defaultdict(list)
        for e, f in zip(bank.examples, folds, strict=True):
            if f != fold:
                by_claim[e.claim or ""].append(e)
        chosen: list[Example] = []
        for claim in sorted(c for c in by_claim if c):
            pool = by_claim[claim]
            chosen += rng.sample(pool, min(rng.randint(1, SPARSE_MAX), len(pool)))
        misses = by_claim.get("", [])
        chosen += rng.sample(misses, min(rng.randint(0, len(chosen)), len(misses)))
        out.append(Bank(tuple(chosen)))
    return out


MIN_LABELLED = 30  # passages with a label that training needs, at the least
MIN_UNLABELLED = 10  # and passages without one (the near misses)


def too_few(rows: Sequence[Labelled], folds: int) -> str | None:
    """Why ``rows`` are too few to train a model on, or None. Cross-validation by page
    needs a page for every fold, and the model both kinds of passage."""
    labelled = sum(1 for r in rows if r.labels)
    pages = len({r.group for r in rows})
    if labelled >= MIN_LABELLED and len(rows) - labelled >= MIN_UNLABELLED and pages >= folds:
        return None
    return (
        f"{len(rows)} passages ({labelled} with a label, {len(rows) - labelled} without, "
        f"from {pages} pages) are too few to train on: it takes at least {MIN_LABELLED} "
        f"with a label and {MIN_UNLABELLED} without, from {folds} pages or more. Until "
        "then, list them as the claims file's examples: the shipped model reads them "
        "without retraining"
    )


def train_model(
    rows: Sequence[Labelled],
    claims: Sequence[Claim],
    settings: Settings,
    sources: Sequence[str] = (),
    embedder: Embedder | None = None,
) -> ClaimModel:
    """Train from labelled passages (``training_set``)."""
    if embedder is None:
        from archiver.claims.semantic import E5Embedder

        embedder = E5Embedder()
    data = training_set(rows, claims, embedder, settings.sparse, settings.seed)
    digest = hashlib.sha256(
        "\n".join(sorted(json.dumps([r.text, r.labels], sort_keys=True) for r in rows)).encode()
    ).hexdigest()[:16]
    info = {"passages": len(rows), "corpus": list(sources), "corpus_digest": digest}
    return train(data, settings, info)
