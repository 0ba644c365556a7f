"""Per-claim probes: what all of a claim's labelled examples have in common, learned.

The nearest-example features ask how close a sentence comes to *one* labelled
example. A probe asks how much it looks like the claim's examples *as a group*,
against every other example of the story (other claims' evidence and near
misses), fitted from the story's own examples when the matcher starts:

* a claim's probe is kernel ridge regression on the examples' sentence vectors
  (an RBF kernel on their cosine similarity, ``GAMMA``, ``LAMBDA``): its score
  for a sentence estimates the share of nearby examples that carry the claim,
  each example weighed by how close it is, so a claim whose examples form
  several groups (a hire, its pay, the lab it joins) is found near each of them;
* stance probes are logistic regressions within a claim's examples, one per
  stance against the claim's other stances.

Nothing is shipped or named per claim, so any story with examples gets its own
probes; a claim with fewer than ``MIN_POSITIVES`` examples gets none (its
features stay 0). A story with more than ``MAX_SUPPORT`` distinct examples fits
its claims' probes on that many of them: every claim's examples first, near misses
to fill, spread evenly through the bank (``_support``).

In training, a passage must not be judged by a probe that learned from it: the
bank's pages are dealt into ``FOLDS`` folds by a hash of the page, and a passage
is scored by the probes fitted without its page's fold. At run time the probes
learn from every example.

On the seed story's training split (5-fold cross-validation by page), adding the
probe features (logistic ones then) raised bears-on F1 from 0.71 to 0.76 and
non-English recall from 0.66 to 0.77, and the stance probes raised stance
accuracy from 0.766 to 0.778; kernel ridge claim probes in place of logistic ones
raised F1 with every example from 0.728 to 0.755 (docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from archiver.claims.rules import STANCES

MIN_POSITIVES = 5  # examples a claim needs before it gets a probe
FOLDS = 10  # training: a passage is scored by probes fitted without its page's fold
# Chosen by cross-validation on the training split: F1 with every example within
# 0.006 of its best for GAMMA 5-10 and LAMBDA 0.03-0.3; GAMMA 20 and LAMBDA 1 lower.
GAMMA = 10.0  # kernel: exp(GAMMA * (cosine - 1))
LAMBDA = 0.1  # ridge
MAX_SUPPORT = 2500  # examples a story's claim probes are fitted on, at most (memory: n^2)
# Stance probes: logistic, L2 chosen likewise (kernel ones scored 0.750 against 0.759).
L2_STANCE = 30.0


def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float, weight: np.ndarray | None = None, iters: int = 30
) -> tuple[np.ndarray, float]:
    """L2-regularized logistic regression by Newton's method (x already standardized)."""
    n, d = x.shape
    w = np.ones(n) if weight is None else weight
    xb = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 1e-6  # the bias is not shrunk
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(xb @ beta, -30, 30)))
        grad = xb.T @ (w * (p - y)) + reg * beta
        hess = (xb * (w * p * (1 - p))[:, None]).T @ xb + np.diag(reg)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta[:-1], float(beta[-1])


@dataclass(frozen=True)
class Probe:
    """Standardized vector times weights plus bias: a stance's log-odds for a sentence."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        return np.asarray(((vectors - self.mean) / self.scale) @ self.weights + self.bias)


def kernel(vectors: np.ndarray, support: np.ndarray) -> np.ndarray:
    """The probes' RBF kernel between unit vectors: exp(GAMMA * (cosine - 1)), computed
    in place (at MAX_SUPPORT examples the matrix alone is 50 MB)."""
    k = np.asarray(vectors, np.float64) @ support.T
    k -= 1.0
    k *= GAMMA
    return np.exp(k, out=k)


@dataclass(frozen=True)
class KernelProbe:
    """A claim's probe: kernel weights over the story's examples plus the claim's share
    of them, so its score for a sentence estimates the share of the examples near it
    that carry the claim (about 0 to 1). A story's claim probes share ``support``."""

    support: np.ndarray  # (examples, dim) unit vectors
    alpha: np.ndarray  # (examples,)
    bias: float

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        return np.asarray(kernel(vectors, self.support) @ self.alpha + self.bias)


def fold_of(group: str) -> int:
    """The training fold of a page: the same for every run and every machine."""
    return int.from_bytes(hashlib.sha256(group.encode("utf-8")).digest()[:4], "big") % FOLDS


@dataclass(frozen=True)
class Probes:
    """A story's probes: whether a sentence bears on each claim, and for each claim,
    each stance against the claim's other examples (``(claim, stance)``)."""

    bears: dict[str, KernelProbe]
    stance: dict[tuple[str, str], Probe]

    def bear_scores(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        """Every claim probe's score for each of ``vectors``, the kernel computed once."""
        if not self.bears:
            return {}
        k = kernel(vectors, next(iter(self.bears.values())).support)
        return {claim: k @ p.alpha + p.bias for claim, p in self.bears.items()}


def probes_to_bytes(probes: Probes) -> bytes:
    """The probes as one npz blob (for the store's cache and the workers' bank file)."""
    claims = list(probes.bears)
    kernels = list(probes.bears.values())
    names = list(probes.stance)
    rows = list(probes.stance.values())
    out = io.BytesIO()
    np.savez(
        out,
        claims=_json_bytes(claims),
        support=kernels[0].support if kernels else np.zeros((0, 0)),
        alpha=np.vstack([p.alpha for p in kernels]) if kernels else np.zeros((0, 0)),
        kbias=np.asarray([p.bias for p in kernels], np.float64),
        names=_json_bytes(names),
        mean=np.vstack([p.mean for p in rows]) if rows else np.zeros((0, 0)),
        scale=np.vstack([p.scale for p in rows]) if rows else np.zeros((0, 0)),
        weights=np.vstack([p.weights for p in rows]) if rows else np.zeros((0, 0)),
        bias=np.asarray([p.bias for p in rows], np.float64),
    )
    return out.getvalue()


def _json_bytes(value: object) -> np.ndarray:
    return np.frombuffer(json.dumps(value, ensure_ascii=False).encode("utf-8"), np.uint8)


def probes_from_bytes(blob: bytes) -> Probes:
    with np.load(io.BytesIO(blob)) as data:
        claims = json.loads(data["claims"].tobytes().decode("utf-8"))
        support, alpha, kbias = data["support"], data["alpha"], data["kbias"]
        names = json.loads(data["names"].tobytes().decode("utf-8"))
        mean, scale, weights, bias = data["mean"], data["scale"], data["weights"], data["bias"]
    bears = {
        claim: KernelProbe(support, alpha[n], float(kbias[n])) for n, claim in enumerate(claims)
    }
    stance = {
        (name[0], name[1]): Probe(mean[n], scale[n], weights[n], float(bias[n]))
        for n, name in enumerate(names)
    }
    return Probes(bears, stance)


def fit_probes(
    vectors: np.ndarray,
    labels: Sequence[dict[str, str]],
    l2_stance: float = L2_STANCE,
) -> Probes:
    """Probes from texts: ``vectors[i]`` is a text's vector, ``labels[i]`` maps each claim
    it bears on to its stance (empty: a near miss). A claim needs ``MIN_POSITIVES`` texts
    for a probe; a stance needs ``MIN_POSITIVES`` of the claim's texts on each side."""
    if len(labels) <= MIN_POSITIVES:
        return Probes({}, {})
    x = np.asarray(vectors, np.float64)
    claims = sorted({c for found in labels for c in found})
    y = np.asarray([[c in found for c in claims] for found in labels], np.float64)
    bears: dict[str, KernelProbe] = {}
    fitted = [
        k for k in range(len(claims)) if MIN_POSITIVES <= y[:, k].sum() <= len(y) - MIN_POSITIVES
    ]
    if fitted:
        rows = _support(y)
        unit = x[rows] / np.maximum(np.linalg.norm(x[rows], axis=1, keepdims=True), 1e-12)
        target = y[rows][:, fitted]
        share = target.mean(axis=0)
        gram = kernel(unit, unit)
        gram[np.diag_indices_from(gram)] += LAMBDA
        alpha = np.linalg.solve(gram, target - share)
        for j, k in enumerate(fitted):
            bears[claims[k]] = KernelProbe(unit, alpha[:, j].copy(), float(share[j]))
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    stance: dict[tuple[str, str], Probe] = {}
    for claim in claims:
        mine = np.flatnonzero([claim in found for found in labels])
        for side in STANCES:
            ys = np.asarray([labels[int(n)][claim] == side for n in mine], np.float64)
            if MIN_POSITIVES <= ys.sum() <= len(ys) - MIN_POSITIVES:
                w, b = fit_logistic(z[mine], ys, l2_stance)
                stance[(claim, side)] = Probe(mean, scale, w, b)
    return Probes(bears, stance)


def _support(y: np.ndarray) -> np.ndarray:
    """The rows the claim probes are fitted on: all of them, or ``MAX_SUPPORT`` of them,
    every claim's examples first and near misses to fill, each spread evenly through the
    bank (the same bank, the same rows)."""
    if len(y) <= MAX_SUPPORT:
        return np.arange(len(y))
    claimed, misses = np.flatnonzero(y.any(axis=1)), np.flatnonzero(~y.any(axis=1))
    if len(claimed) >= MAX_SUPPORT:
        return claimed[np.linspace(0, len(claimed) - 1, MAX_SUPPORT).astype(int)]
    room = MAX_SUPPORT - len(claimed)
    chosen = misses[np.linspace(0, len(misses) - 1, room).astype(int)]
    return np.sort(np.concatenate([claimed, chosen]))
