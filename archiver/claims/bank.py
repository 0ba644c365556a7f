"""A story's labelled examples, as the matcher reads them.

``Bank`` holds the examples (the corpus of the claims file, and the reviewer's
verdicts) with their vectors and probes (``archiver.claims.probes``), computed
once per process. ``bank_view`` and ``example_features`` turn one passage's
similarity to them into features: how close the nearest examples of each claim
come, against other claims' and near misses', and how many examples it has.
``write_bank`` and ``read_bank`` carry a bank to the extraction workers as one
file.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib.resources import files
from pathlib import Path

import numpy as np

from archiver.claims import probes as probes_
from archiver.claims.probes import Probes, fit_probes, fold_of, probes_from_bytes
from archiver.claims.rules import STANCES
from archiver.claims.semantic import Embedder


@dataclass(frozen=True)
class Example:
    """A labelled passage: evidence for ``claim`` with ``stance``, or (claim None) a near
    miss that bears on no claim. ``group`` is the page it came from."""

    claim: str | None
    stance: str | None
    text: str
    group: str = ""


@dataclass(frozen=True)
class Bank:
    """Labelled examples of the story (its corpus, and the reviewer's verdicts). A new
    passage close to a claim's examples likely bears on it the same way."""

    examples: tuple[Example, ...] = ()
    _vectors: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    # (embedder, fold) -> probes; fold None: the run-time probes, from every example
    _probes: dict[tuple[str, int | None], Probes] = field(
        default_factory=dict, compare=False, repr=False
    )

    def vectors(self, embedder: Embedder) -> np.ndarray:
        if embedder.name not in self._vectors:
            texts = [e.text for e in self.examples]
            self._vectors[embedder.name] = (
                embedder.embed(texts) if texts else np.zeros((0, 384), np.float32)
            )
        return self._vectors[embedder.name]

    def probes(self, embedder: Embedder, exclude: str | None = None) -> Probes:
        """The story's probes (``archiver.claims.probes``), fitted on the examples' vectors
        once; in training (``exclude``: a passage's page), without that page's fold."""
        fold = None if exclude is None else fold_of(exclude)
        key = (embedder.name, fold)
        if key not in self._probes:
            vectors = self.vectors(embedder)
            rows: dict[str, int] = {}  # text -> its first row (one example per claim)
            labels: dict[str, dict[str, str]] = {}
            for n, e in enumerate(self.examples):
                if fold is not None and fold_of(e.group) == fold:
                    continue
                rows.setdefault(e.text, n)
                found = labels.setdefault(e.text, {})
                if e.claim:
                    found[e.claim] = e.stance or "mentions"
            texts = list(rows)
            self._probes[key] = fit_probes(
                vectors[[rows[t] for t in texts]] if texts else vectors[:0],
                [labels[t] for t in texts],
            )
        return self._probes[key]

    def probes_key(self, embedder: str) -> str:
        """A digest of everything the run-time probes are computed from: the examples,
        the embedder (so the vectors) and the probes' settings. Their cache key."""
        settings = [
            embedder,
            "kernel",
            probes_.GAMMA,
            probes_.LAMBDA,
            probes_.MAX_SUPPORT,
            probes_.L2_STANCE,
            probes_.MIN_POSITIVES,
        ]
        blob = json.dumps(settings).encode("utf-8") + b"\0" + _examples_json(self)
        return hashlib.sha256(blob).hexdigest()

    def preset_probes(self, embedder: str, probes: Probes) -> None:
        """Use probes fitted elsewhere (the main process, or an earlier run) as this bank's
        run-time probes for ``embedder``, instead of fitting them again."""
        self._probes[(embedder, None)] = probes

    @cached_property
    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        """Every example's claim ("" for a near miss) and stance, as arrays: read once,
        not walked again for each passage and claim."""
        claims = np.asarray([e.claim or "" for e in self.examples], dtype=object)
        stances = np.asarray([e.stance or "" for e in self.examples], dtype=object)
        return claims, stances

    @cached_property
    def codes(self) -> tuple[np.ndarray, tuple[str, ...]]:
        """Every example's claim as a number, and the claims those numbers stand for
        ("" for a near miss): a view finds each claim's examples from these."""
        names = tuple(sorted({e.claim or "" for e in self.examples}))
        number = {name: n for n, name in enumerate(names)}
        return np.asarray([number[e.claim or ""] for e in self.examples], np.intp), names


BACKGROUND = "background"  # the group (and origin) of the built-in near misses


def with_background(bank: Bank) -> Bank:
    """``bank`` as the matcher uses it. Every feature of the examples weighs a claim's
    nearest example against the nearest near miss, so a bank of examples with no near
    miss at all (a new story's first confirmed flags, a claims file whose examples all
    carry a label) made any sentence look like evidence: on the seed story, precision
    fell from 0.75 to 0.20. Until the story has near misses of its own, everyday news in
    many languages (``archiver/data/background.txt``) stands in for them."""
    if not bank.examples or any(e.claim is None for e in bank.examples):
        return bank
    return Bank((*bank.examples, *(Example(None, None, t, BACKGROUND) for t in _background())))


@cache
def _background() -> tuple[str, ...]:
    lines = files("archiver").joinpath("data/background.txt").read_text(encoding="utf-8")
    return tuple(t for t in map(str.strip, lines.splitlines()) if t and not t.startswith("#"))


@dataclass(frozen=True)
class View:
    """The bank as one passage sees it: similarity to each usable example, and the
    examples' claims ("" for none) and stances."""

    sims: np.ndarray
    examples: list[Example]
    claims: np.ndarray
    stances: np.ndarray
    codes: np.ndarray  # each example's claim as a number: ``names[code]``
    names: tuple[str, ...]

    @cached_property
    def rows(self) -> dict[str, np.ndarray]:
        """The positions of each claim's examples ("" for the near misses), found once
        for the passage rather than by comparing every label again for each claim."""
        found = {name: np.flatnonzero(self.codes == n) for n, name in enumerate(self.names)}
        return {name: at for name, at in found.items() if len(at)}


EMPTY = View(
    np.zeros(0), [], np.zeros(0, dtype=object), np.zeros(0, dtype=object), np.zeros(0, np.intp), ()
)


def bank_view(
    bank: Bank | None, vectors: np.ndarray, embedder: Embedder, exclude: str | None
) -> View:
    """Similarity of the passage (its best sentence) to every usable example: all of
    them, or in training all but those from the passage's own page (``exclude``)."""
    if bank is None or not bank.examples:
        return EMPTY
    matrix = bank.vectors(embedder)
    claims, stances = bank.labels
    codes, names = bank.codes
    examples = list(bank.examples)
    if exclude is not None:
        keep = np.asarray([e.group != exclude for e in bank.examples], bool)
        if not keep.any():
            return EMPTY
        matrix, claims, stances, codes = matrix[keep], claims[keep], stances[keep], codes[keep]
        examples = [e for e, k in zip(examples, keep, strict=True) if k]
    return View((vectors @ matrix.T).max(axis=0), examples, claims, stances, codes, names)


def neighbours(sims: np.ndarray, examples: list[Example], k: int = 10) -> dict[str | None, float]:
    """Share of similarity-weighted votes of the ``k`` nearest examples, by claim."""
    if not len(sims):
        return {}
    order = np.argsort(sims)[::-1][:k]
    weights = np.exp(20 * (sims[order] - sims[order[0]]))
    votes: dict[str | None, float] = {}
    for w, n in zip(weights, order, strict=True):
        votes[examples[n].claim] = votes.get(examples[n].claim, 0.0) + float(w)
    total = float(weights.sum())
    return {c: v / total for c, v in votes.items()}


def example_features(
    claim_id: str,
    view: View,
    votes: dict[str | None, float],
    best_by_claim: dict[str, float],
) -> tuple[list[float], list[float]]:
    sims = view.sims
    mine = view.rows.get(claim_id)
    if mine is None:
        return [0.0] * 10, [0.0] * (1 + len(STANCES))
    none = view.rows.get("")
    own = sims[mine]
    top = np.sort(own)[::-1]
    ex_other = max((v for k, v in best_by_claim.items() if k != claim_id), default=0.0)
    ex_none = float(sims[none].max()) if none is not None else 0.0
    order = np.argsort(own)[::-1][:5]
    weights = np.exp(20 * (own[order] - own[order[0]]))
    stances = view.stances[mine][order]
    shares = [float(weights[stances == s].sum() / weights.sum()) for s in STANCES]
    bears = [1.0, float(top[0]), float(top[:3].mean()), ex_other, ex_none]
    bears.append(float(top[0]) - max(ex_other, ex_none))
    values = sorted(best_by_claim.values())
    median = values[len(values) // 2]
    bears += [
        votes.get(claim_id, 0.0),
        float(top[0]) - median,
        float(float(top[0]) >= values[-1]),
        math.log1p(len(mine)),  # a few examples say less than a hundred
    ]
    return bears, [1.0, *shares]


def write_bank(
    path: Path, bank: Bank, vectors: dict[str, bytes], probes: bytes | None = None
) -> str:
    """Write the bank, known vectors and (``probes_to_bytes``) its fitted probes to
    ``path`` (npz); returns its content digest."""
    keys = sorted(vectors)
    matrix = (
        np.vstack([np.frombuffer(vectors[k], np.float32) for k in keys])
        if keys
        else np.zeros((0, 384), np.float32)
    )
    blob = _examples_json(bank)
    fitted = probes or b""
    key = hashlib.sha256(blob + "".join(keys).encode() + fitted).hexdigest()[:16]
    with path.open("wb") as f:
        np.savez(
            f,
            examples=np.frombuffer(blob, np.uint8),
            keys=np.asarray(keys),
            vectors=matrix,
            probes=np.frombuffer(fitted, np.uint8),
        )
    return key


def _examples_json(bank: Bank) -> bytes:
    """The examples as the bank file stores them (and the probes' digest reads them)."""
    rows = [[e.claim, e.stance, e.text, e.group] for e in bank.examples]
    return json.dumps(rows, ensure_ascii=False).encode("utf-8")


def read_bank(path: str, embedder: str) -> tuple[Bank, dict[str, bytes]]:
    """The bank a file holds, with its probes set for ``embedder`` when the file has them."""
    with np.load(path) as data:
        rows = json.loads(data["examples"].tobytes().decode("utf-8"))
        vectors = {str(k): v.tobytes() for k, v in zip(data["keys"], data["vectors"], strict=True)}
        fitted = data["probes"].tobytes() if "probes" in data.files else b""
    bank = Bank(tuple(Example(*row) for row in rows))
    if fitted:
        bank.preset_probes(embedder, probes_from_bytes(fitted))
    return bank, vectors
