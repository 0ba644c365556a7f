"""The learned claims matcher: a passage and the claims in, flags out.

``match`` is the one entry point. With an embedder (the semantic layer, on by
default) each (passage, claim) pair is described by claim-agnostic features
and scored by a small model shipped with the package (``data/claims-model.json``,
retrained from the corpus by ``claimwatch claims train``):

* similarity of each sentence to the claim's statements, in every language the
  claims file gives, and how far that claim leads the story's other claims
  (absolute similarities shift by language; the lead does not);
* with the story's labelled examples: how close the nearest ones come, and the
  claim's probe, a small model of all its examples fitted at start-up
  (``archiver.claims.probes``);
* similarity to the claim's cue phrases, when the claims file has them;
* lexical hits: entities named, topic terms, cues (a negation flips a cue);
* negation and "change of course" words, shared numbers, the passage's script.

One logistic model decides whether the passage bears on the claim; a second
(one-vs-rest over the three stances) gives supports, contradicts or mentions,
also from the product of the evidence sentence's and the statement's vectors.
No feature names a claim, so a new story's claims work without retraining.
Without an embedder, matching falls back to the lexical rules in
``archiver.claims.rules``. Every flag carries its evidence sentence and reasons.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from archiver.claims import rules as lexical
from archiver.claims.probes import Probes, fit_probes, fold_of
from archiver.claims.rules import Claim, Flag, MatchOptions
from archiver.claims.semantic import Embedder
from archiver.claims.textkeys import fold
from store.errors import ConfigError

STANCES = ("supports", "contradicts", "mentions")
FORMAT = 3  # of the model file (see DEFAULT_MODEL)
SCRIPTS = ("latin", "arabic", "cjk", "other")

# Generic words, not claim-specific: negation, and change of course ("abandon",
# "shift away"). They tell the stance model that a sentence reverses something.
_NEGATION = frozenset(
    fold(w)
    for w in (
        "not no never none nobody nothing cannot without neither nor won't don't doesn't "
        "isn't aren't wasn't hasn't haven't didn't "
        "لا لن لم ليس ليست غير عدم بدون "
        "nicht kein keine keinen nie niemals ne pas jamais aucun aucune "
        "no nunca ningún ninguna não nem nunca non mai"
    ).split()
)
_CHANGE = frozenset(
    fold(w)
    for w in (
        "abandon abandons abandoned abandoning drop drops dropped end ends ended halt halted "
        "stop stops stopped stopping scrap scrapped shift shifts shifted pivot pivots pivoted "
        "retreat retreats reverse reversed ditch ditches ditched shelve shelved pause paused "
        "تخلى تخلت تتخلى توقف توقفت يتوقف تحول تحولت تراجع تراجعت "
        "aufgeben abrücken abkehr kehrtwende stoppt stoppen verzichtet "
        "abandonne abandonner renonce virage tourne "
        "abandona abandonar deja dejar giro abandono"
    ).split()
)
_CJK_NEGATION = ("不", "没", "未", "非", "否", "ない", "ず")
_CJK_CHANGE = ("放弃", "转向", "停止", "告别", "關上", "关上", "放棄", "転換", "放棄し")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_ENGLISH = frozenset("the and of to is was that with for by on from its has are this".split())


def script_of(text: str) -> str:
    """The passage's main script: latin, arabic, cjk or other (by letter counts)."""
    counts = dict.fromkeys(SCRIPTS, 0)
    for ch in text:
        if not ch.isalpha():
            continue
        o = ord(ch)
        if o < 0x250:
            counts["latin"] += 1
        elif 0x600 <= o <= 0x6FF or 0x750 <= o <= 0x77F or 0xFB50 <= o <= 0xFEFF:
            counts["arabic"] += 1
        elif 0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7AF:
            counts["cjk"] += 1
        else:
            counts["other"] += 1
    return max(SCRIPTS, key=lambda s: counts[s])


_STOPWORDS = frozenset(
    fold(w)
    for w in (
        "the a an and or of to in on for by with from at as is are was were be been has have "
        "had it its this that which who will would can could their his her they them than "
        "about after into over more most not no also said says "
        "der die das und oder von zu im in auf für mit aus bei als ist sind war wird wurde "
        "hat haben ein eine einer eines den dem des sich nicht auch dass "
        "le la les et ou de du des en au aux pour par avec est sont a été une un qui que "
        "el los las y o del en para por con es son fue una un que se "
        "في من على إلى عن أن إن مع هذا هذه التي الذي ما لا كان قد و"
    ).split()
)
_WORD = re.compile(r"\w+")


@lru_cache(maxsize=4096)
def _content_keys(text: str) -> frozenset[str]:
    """A statement's content words as matching keys (stems; Arabic prefixes removed)."""
    from archiver.claims.textkeys import keys

    out: set[str] = set()
    for w in _WORD.findall(text):
        f = fold(w)
        if len(f) > 1 and f not in _STOPWORDS:
            out |= {k for k in keys(f) if len(k) > 1}
    return frozenset(out)


def _overlaps(claims: Sequence[Claim], passage: str) -> list[float]:
    """For each claim: the share of its statements' content words the passage uses,
    each word weighted by how rare it is among the story's claims."""
    claim_keys = [frozenset().union(*(_content_keys(t) for t in c.texts)) for c in claims]
    df: dict[str, int] = {}
    for ks in claim_keys:
        for k in ks:
            df[k] = df.get(k, 0) + 1
    n = len(claims)
    have = _content_keys(passage)
    out = []
    for ks in claim_keys:
        weights = {k: math.log(1 + n / df[k]) for k in ks}
        total = sum(weights.values()) or 1.0
        out.append(sum(w for k, w in weights.items() if k in have) / total)
    return out


def _numbers(text: str) -> set[str]:
    return {n.replace(",", ".") for n in _NUMBER.findall(text)}


def _marks(text: str) -> tuple[int, int]:
    """Negation and change-of-course words in a sentence."""
    folded = [fold(w) for w in re.findall(r"\w+(?:['’]\w+)?", text)]
    neg = sum(w in _NEGATION or w.endswith("n't") for w in folded)
    change = sum(w in _CHANGE for w in folded)
    neg += sum(text.count(m) for m in _CJK_NEGATION)
    change += sum(text.count(m) for m in _CJK_CHANGE)
    return neg, change


BEARS_FEATURES = (
    "has_examples",
    "ex_sim",
    "ex_top3",
    "ex_other",
    "ex_none",
    "ex_lead",
    "knn_share",
    "ex_rel",
    "ex_is_top",
    "probe",
    "probe_rel",
    "probe_is_top",
    "probe_lead",
    "sim_max",
    "sim_top2",
    "sim_mean",
    "rel_median",
    "rel_next",
    "z",
    "is_top",
    "story",
    "story_lead",
    "cue_support_sim",
    "cue_contra_sim",
    "has_cues",
    "cue_support_lex",
    "cue_contra_lex",
    "has_entities",
    "named",
    "has_terms",
    "term_weight",
    "claim_numbers",
    "shared_numbers",
    "word_overlap",
    "word_overlap_rel",
    "log_sentences",
    *(f"script_{s}" for s in SCRIPTS),
    "english",
    *(f"rel_median_x_{s}" for s in SCRIPTS),
    *(f"sim_max_x_{s}" for s in SCRIPTS),
)
STANCE_FEATURES = (
    "cue_support_lex",
    "cue_contra_lex",
    "cue_sim_diff",
    "has_cues",
    "negations",
    "changes",
    "claim_negations",
    "claim_changes",
    "negation_mismatch",
    "change_mismatch",
    "sim_max",
    "rel_median",
    "has_examples",
    *(f"ex_{s}" for s in STANCES),
    *(f"probe_{s}" for s in STANCES),
    *(f"script_{s}" for s in SCRIPTS),
)


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
    _probes: dict[str, Probes] = field(default_factory=dict, compare=False, repr=False)

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
        key = f"{embedder.name}:{fold}"
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

    @cached_property
    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        """Every example's claim ("" for a near miss) and stance, as arrays: read once,
        not walked again for each passage and claim."""
        claims = np.asarray([e.claim or "" for e in self.examples], dtype=object)
        stances = np.asarray([e.stance or "" for e in self.examples], dtype=object)
        return claims, stances


@dataclass(frozen=True)
class _View:
    """The bank as one passage sees it: similarity to each usable example, and the
    examples' claims ("" for none) and stances."""

    sims: np.ndarray
    examples: list[Example]
    claims: np.ndarray
    stances: np.ndarray


_EMPTY = _View(np.zeros(0), [], np.zeros(0, dtype=object), np.zeros(0, dtype=object))


def _bank_view(
    bank: Bank | None, vectors: np.ndarray, embedder: Embedder, exclude: str | None
) -> _View:
    """Similarity of the passage (its best sentence) to every usable example: all of
    them, or in training all but those from the passage's own page (``exclude``)."""
    if bank is None or not bank.examples:
        return _EMPTY
    matrix = bank.vectors(embedder)
    claims, stances = bank.labels
    examples = list(bank.examples)
    if exclude is not None:
        keep = np.asarray([e.group != exclude for e in bank.examples], bool)
        if not keep.any():
            return _EMPTY
        matrix, claims, stances = matrix[keep], claims[keep], stances[keep]
        examples = [e for e, k in zip(examples, keep, strict=True) if k]
    return _View((vectors @ matrix.T).max(axis=0), examples, claims, stances)


def _neighbours(sims: np.ndarray, examples: list[Example], k: int = 10) -> dict[str | None, float]:
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


def _example_features(
    claim_id: str,
    view: _View,
    votes: dict[str | None, float],
    best_by_claim: dict[str, float],
) -> tuple[list[float], list[float]]:
    sims = view.sims
    mine = view.claims == claim_id
    none = view.claims == ""
    other = ~mine & ~none
    if not mine.any():
        return [0.0] * 9, [0.0] * (1 + len(STANCES))
    own = sims[mine]
    top = np.sort(own)[::-1]
    ex_other = float(sims[other].max()) if other.any() else 0.0
    ex_none = float(sims[none].max()) if none.any() else 0.0
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
    ]
    return bears, [1.0, *shares]


@dataclass(frozen=True)
class Pair:
    """Features of one (passage, claim) pair, and what explains them."""

    claim: Claim
    bears: np.ndarray
    stance: np.ndarray
    best: int  # index of the evidence sentence
    sim: float
    lead: float
    reasons: tuple[str, ...]


def describe(
    passage: str,
    claims: Sequence[Claim],
    embedder: Embedder,
    options: MatchOptions,
    bank: Bank | None = None,
    exclude: str | None = None,
    focus: str | None = None,
) -> tuple[list[str], list[Pair]]:
    """The passage's sentences and, for every claim, the features the model scores.
    With ``focus`` (a sentence of the passage), only that sentence can be the evidence:
    the others are context for the rules ("it" finding its Meta) and are not embedded."""
    sents = lexical.parse(passage)
    if not sents or not claims:
        return [], []
    texts = [s.text for s in sents]
    rows = [n for n, t in enumerate(texts) if focus is None or t.strip() == focus.strip()]
    rows = rows or list(range(len(texts)))
    vectors = embedder.embed([texts[n] for n in rows])
    statement_vecs = [_fixed_vectors(embedder, c.texts) for c in claims]
    centroid = np.mean(np.vstack(statement_vecs), axis=0)
    centroid /= np.linalg.norm(centroid) or 1.0
    story = float((vectors @ centroid).max())
    per_claim = [vectors @ v.T for v in statement_vecs]  # (n_sentences, n_statements)
    sentence_best = [m.max(axis=1) for m in per_claim]
    sims = np.array([s.max() for s in sentence_best])
    median = float(np.median(sims))
    mean, spread = float(sims.mean()), float(sims.std()) + 0.01
    top = int(sims.argmax())
    script = script_of(passage)
    words = {fold(w) for w in re.findall(r"\w+", passage)}
    english = float(len(words & _ENGLISH) >= 1 and script == "latin")
    numbers = _numbers(passage)
    compiled = lexical.compile_claims(tuple(claims))
    overlaps = _overlaps(claims, passage)
    overlap_median = float(np.median(overlaps))
    scripts = [float(script == s) for s in SCRIPTS]
    view = _bank_view(bank, vectors, embedder, exclude)
    ex_sims, examples = view.sims, view.examples
    votes = _neighbours(ex_sims, examples)
    best_by_claim = {
        claim: float(ex_sims[view.claims == claim].max())
        for claim in set(view.claims.tolist()) - {""}
    }
    probes = bank.probes(embedder, exclude) if bank is not None and bank.examples else None
    probed = _probe_scores(probes, vectors, claims)
    pairs = []
    for k, (c, comp) in enumerate(zip(claims, compiled, strict=True)):
        ev = lexical.evidence(comp, sents, options)
        best_per_sentence = sentence_best[k]
        ordered = np.sort(best_per_sentence)[::-1]
        sim = float(ordered[0])
        others = np.delete(sims, k)
        lead = sim - median
        cue_sup = _cue_sim(embedder, c.supports, vectors)
        cue_con = _cue_sim(embedder, c.contradicts, vectors)
        claim_numbers = set().union(*(_numbers(t) for t in c.texts))
        weight = best_per_sentence + 0.05 * np.asarray(ev.per_sentence)[rows]
        best = rows[int(weight.argmax())]
        if ev.cue_sentence and focus is None:
            side = max(ev.side_weight, key=lambda s: ev.side_weight[s])
            best = ev.cue_sentence.get(side, best)
        negs, changes = _marks(texts[best])
        claim_marks = [_marks(t) for t in c.texts]
        claim_neg = max(m[0] for m in claim_marks)
        claim_change = max(m[1] for m in claim_marks)
        ex_bears, ex_stance = _example_features(c.id, view, votes, best_by_claim)
        bears = [
            *ex_bears,
            *probed.get(c.id, (0.0, 0.0, 0.0, 0.0)),
            sim,
            float(ordered[:2].mean()),
            float(best_per_sentence.mean()),
            lead,
            sim - float(others.max()) if len(others) else 0.0,
            (sim - mean) / spread,
            float(k == top),
            story,
            sim - story,
            cue_sup,
            cue_con,
            float(bool(c.supports or c.contradicts)),
            math.log1p(ev.side_weight["supports"]),
            math.log1p(ev.side_weight["contradicts"]),
            float(bool(c.actors or c.objects)),
            float(ev.named),
            float(bool(c.terms)),
            math.log1p(ev.term_weight),
            float(bool(claim_numbers)),
            float(bool(claim_numbers & numbers)),
            overlaps[k],
            overlaps[k] - overlap_median,
            math.log1p(len(sents)),
            *scripts,
            english,
            *(lead * s for s in scripts),
            *(sim * s for s in scripts),
        ]
        stance = [
            math.log1p(ev.side_weight["supports"]),
            math.log1p(ev.side_weight["contradicts"]),
            cue_sup - cue_con,
            float(bool(c.supports or c.contradicts)),
            float(min(negs, 3)),
            float(min(changes, 3)),
            float(min(claim_neg, 3)),
            float(min(claim_change, 3)),
            float((negs % 2) != (claim_neg % 2)),
            float(bool(changes) != bool(claim_change)),
            sim,
            lead,
            *ex_stance,
            *_stance_probes(probes, c.id, vectors),
            *scripts,
        ]
        reasons = [
            f"semantic: similarity {sim:.2f} to the claim, {lead:+.2f} over the median claim",
            *ev.head(),
        ]
        own = np.flatnonzero(view.claims == c.id)
        if len(own):
            near = int(own[ex_sims[own].argmax()])
            example = examples[near]
            reasons.append(
                f"nearest example ({example.stance}, similarity {ex_sims[near]:.2f}): "
                f"{example.text[:120]}"
            )
        pairs.append(
            Pair(
                claim=c,
                bears=np.asarray(bears, np.float64),
                stance=np.asarray(stance, np.float64),
                best=best,
                sim=sim,
                lead=lead,
                reasons=tuple(reasons),
            )
        )
    return texts, pairs


def _probe_scores(
    probes: Probes | None, vectors: np.ndarray, claims: Sequence[Claim]
) -> dict[str, tuple[float, float, float, float]]:
    """For each claim with a probe: its best log-odds over the candidate sentences, that
    less the median claim's, whether it is the top claim, and its lead over the next."""
    if probes is None:
        return {}
    found = [c.id for c in claims if c.id in probes.bears]
    scores = {claim: float(probes.bears[claim].logits(vectors).max()) for claim in found}
    if not scores:
        return {}
    values = sorted(scores.values())
    median = values[len(values) // 2]
    out = {}
    for claim, score in scores.items():
        others = [v for k, v in scores.items() if k != claim]
        lead = score - max(others) if others else 0.0
        out[claim] = (score, score - median, float(score >= values[-1]), lead)
    return out


def _stance_probes(probes: Probes | None, claim: str, vectors: np.ndarray) -> list[float]:
    """Each stance probe's best log-odds over the candidate sentences (0 without one)."""
    out = []
    for side in STANCES:
        probe = probes.stance.get((claim, side)) if probes is not None else None
        out.append(float(probe.logits(vectors).max()) if probe is not None else 0.0)
    return out


def _cue_sim(embedder: Embedder, cues: tuple[str, ...], vectors: np.ndarray) -> float:
    if not cues:
        return 0.0
    return float((vectors @ _fixed_vectors(embedder, cues).T).max())


@lru_cache(maxsize=4096)
def _fixed_vectors(embedder: Embedder, texts: tuple[str, ...]) -> np.ndarray:
    """Vectors of a claim's statements or cues: the same for every passage, so looked up
    once per process, not hashed and copied again for each passage (read-only)."""
    vectors = embedder.embed(list(texts))
    vectors.flags.writeable = False
    return vectors


# -- the model ----------------------------------------------------------------------


@dataclass(frozen=True)
class Linear:
    """Standardized features times weights plus bias (one row per output)."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # (outputs, features)
    bias: np.ndarray  # (outputs,)

    def scores(self, x: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(x) - self.mean) / self.scale
        return np.asarray(z @ self.weights.T + self.bias)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale],
            "weights": [[round(float(v), 6) for v in row] for row in self.weights],
            "bias": [round(float(v), 6) for v in self.bias],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Linear:
        return cls(
            np.asarray(d["mean"], np.float64),
            np.asarray(d["scale"], np.float64),
            np.asarray(d["weights"], np.float64),
            np.asarray(d["bias"], np.float64),
        )


@dataclass(frozen=True)
class ClaimModel:
    """The two scorers and the bears-on threshold, as trained (see ``training``)."""

    bears: Linear
    stance: Linear
    threshold: float  # bears on the claim at this probability, when it has examples
    embedder: str
    info: dict[str, Any] = field(default_factory=dict, compare=False)
    threshold_no_examples: float = 0.5  # ... and when it has only its statements

    def bears_probability(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(1 / (1 + np.exp(-self.bears.scores(x)[:, 0])))

    def stance_of(self, x: np.ndarray) -> tuple[str, float]:
        s = self.stance.scores(x)[0]
        p = np.exp(s - s.max())
        p /= p.sum()
        k = int(p.argmax())
        return STANCES[k], float(p[k])

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "embedder": self.embedder,
            "threshold": round(self.threshold, 6),
            "threshold_no_examples": round(self.threshold_no_examples, 6),
            "bears": {"features": list(BEARS_FEATURES), **self.bears.to_dict()},
            "stance": {
                "classes": list(STANCES),
                "features": list(STANCE_FEATURES),
                **self.stance.to_dict(),
            },
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "model") -> ClaimModel:
        try:
            if (
                d["format"] != FORMAT
                or d["bears"]["features"] != list(BEARS_FEATURES)
                or d["stance"]["features"] != list(STANCE_FEATURES)
            ):
                raise ValueError("made for another version of claimwatch")
            return cls(
                Linear.from_dict(d["bears"]),
                Linear.from_dict(d["stance"]),
                float(d["threshold"]),
                str(d["embedder"]),
                dict(d.get("info", {})),
                float(d["threshold_no_examples"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                where, f"is not a claims model this claimwatch can use ({exc}); retrain it"
            ) from None


DEFAULT_MODEL = "claims-model.json"
# Format 3 adds the probe features (archiver.claims.probes).
# Format 2: the stance model reads STANCE_FEATURES only. Format 1 also read the product of
# the passage and statement vectors, which cross-validation showed hurt stance (0.65 vs
# 0.71 on the seed corpus; 0.50 vs 0.63 for claims left out of training).


@lru_cache(maxsize=4)
def load_model(path: str | None = None) -> ClaimModel:
    """The model at ``path``, or the one shipped in the package."""
    if path is None:
        text = resources.files("archiver").joinpath("data", DEFAULT_MODEL).read_text("utf-8")
        return ClaimModel.from_dict(json.loads(text), f"archiver/data/{DEFAULT_MODEL}")
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(path, f"cannot be read as a claims model ({exc})") from None
    return ClaimModel.from_dict(data, path)


# -- matching ------------------------------------------------------------------------


@dataclass(frozen=True)
class Matcher:
    """What ``match`` needs besides the passage: the rules' options, and the semantic
    layer with its model (both None: lexical rules only)."""

    options: MatchOptions = field(default_factory=MatchOptions)
    embedder: Embedder | None = field(default=None, compare=False)
    model: ClaimModel | None = field(default=None, compare=False)
    bank: Bank | None = field(default=None, compare=False)


def match(
    passage: str,
    claims: Sequence[Claim],
    matcher: Matcher | None = None,
    focus: str | None = None,
) -> list[Flag]:
    """Flags for every claim the passage bears on, strongest first. With ``focus``, the
    evidence can only be that sentence of the passage (the rest is context)."""
    matcher = matcher or Matcher()
    if matcher.embedder is None:
        return lexical.match(passage, claims, matcher.options)
    model = matcher.model or load_model()
    texts, pairs = describe(
        passage, claims, matcher.embedder, matcher.options, matcher.bank, focus=focus
    )
    if not pairs:
        return []
    probs = model.bears_probability(np.vstack([p.bears for p in pairs]))
    flags = []
    for pair, prob in zip(pairs, probs, strict=True):
        has_examples = pair.bears[0] > 0.5
        if prob < (model.threshold if has_examples else model.threshold_no_examples):
            continue
        stance, confidence = model.stance_of(pair.stance)
        flags.append(
            Flag(
                pair.claim.id,
                stance,
                round(float(prob), 3),
                texts[pair.best].strip(),
                (
                    f"bears on the claim: p={prob:.2f}",
                    f"{stance}: p={confidence:.2f}",
                    *pair.reasons,
                ),
            )
        )
    return sorted(flags, key=lambda f: -f.score)


@dataclass(frozen=True)
class MatchSpec:
    """How to build a ``Matcher`` in another process: plain, picklable data. The bank
    (examples, and the vectors of every text the pipeline already embedded) travels as
    a file, read once per process, not with every job."""

    semantic: bool = True
    model: str | None = None  # path of a trained model; None: the shipped one
    bank_file: str | None = None  # written by ``write_bank``
    bank_key: str = ""  # digest of the bank file's content


def write_bank(path: Path, bank: Bank, vectors: dict[str, bytes]) -> str:
    """Write the bank and known vectors to ``path`` (npz); returns its content digest."""
    rows = [[e.claim, e.stance, e.text, e.group] for e in bank.examples]
    keys = sorted(vectors)
    matrix = (
        np.vstack([np.frombuffer(vectors[k], np.float32) for k in keys])
        if keys
        else np.zeros((0, 384), np.float32)
    )
    blob = json.dumps(rows, ensure_ascii=False).encode("utf-8")
    key = hashlib.sha256(blob + "".join(keys).encode()).hexdigest()[:16]
    with path.open("wb") as f:
        np.savez(f, examples=np.frombuffer(blob, np.uint8), keys=np.asarray(keys), vectors=matrix)
    return key


def read_bank(path: str) -> tuple[Bank, dict[str, bytes]]:
    with np.load(path) as data:
        rows = json.loads(data["examples"].tobytes().decode("utf-8"))
        vectors = {str(k): v.tobytes() for k, v in zip(data["keys"], data["vectors"], strict=True)}
    return Bank(tuple(Example(*row) for row in rows)), vectors


def make_matcher(
    spec: MatchSpec, options: MatchOptions | None = None, cache: Any = None
) -> Matcher:
    """The matcher a spec describes (the embedding model loads here, once)."""
    options = options or MatchOptions()
    if not spec.semantic:
        return Matcher(options)
    from archiver.claims.semantic import E5Embedder

    embedder = E5Embedder(cache=cache)
    bank = None
    if spec.bank_file:
        bank, vectors = read_bank(spec.bank_file)
        embedder.seed(vectors)
    return Matcher(options, embedder, load_model(spec.model), bank)
