"""The learned claims matcher: a passage and the claims in, flags out.

``match`` is the one entry point. With an embedder (the semantic layer, on by
default) each (passage, claim) pair is described by claim-agnostic features
(``archiver.claims.features``), among them the story's labelled examples and the
probes learned from them (``archiver.claims.bank``, ``archiver.claims.probes``),
and scored by a small model shipped with the package (``archiver.claims.model``,
retrained from the corpus by ``claimwatch claims train``).

One logistic model decides whether the passage bears on the claim; a second
(one-vs-rest over the three stances) gives supports, contradicts or mentions.
No feature names a claim, so a new story's claims work without retraining.
Without an embedder, matching falls back to the lexical rules in
``archiver.claims.rules``. Every flag carries its evidence sentence and reasons.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from archiver.claims import rules as lexical
from archiver.claims.rules import Claim, Flag, MatchOptions

if TYPE_CHECKING:  # numpy, the model and the bank load on first use (below): a run
    # without claims imports this module for MatchSpec and never pays for them.
    from archiver.claims.bank import Bank
    from archiver.claims.features import Pair
    from archiver.claims.model import ClaimModel
    from archiver.claims.semantic import E5Embedder, Embedder

T = TypeVar("T")


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
    return _flags(*_scored(passage, claims, matcher, focus))


def _flags(
    model: ClaimModel, texts: list[str], scored: list[tuple[Pair, float, float]]
) -> list[Flag]:
    """The flags of the claims whose probability reached their threshold, strongest first."""
    flags = []
    for pair, prob, threshold in scored:
        if prob < threshold:
            continue
        has_examples = pair.bears[0] > 0.5
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
                    *(() if has_examples else (UNSURE,)),
                    *pair.reasons,
                ),
            )
        )
    return sorted(flags, key=lambda f: -f.score)


@dataclass(frozen=True)
class Weighed:
    """How close one claim came to a flag: its bears-on probability, the threshold it
    had to reach (which depends on how many examples the claim has), and the sentence
    it was weighed on."""

    claim: str
    probability: float
    threshold: float
    evidence: str
    flagged: bool  # the probability reached the threshold (before either was rounded)


def explain(
    passage: str, claims: Sequence[Claim], matcher: Matcher
) -> tuple[list[Flag], list[Weighed]]:
    """The passage's flags, as ``match`` gives them, and every claim's bears-on
    probability against its threshold, strongest first: why a claim was flagged or not
    (``claims match --explain``). One scoring serves both. Needs the semantic layer; the
    lexical rules have no score below their cut."""
    model, texts, scored = _scored(passage, claims, matcher, None)
    weighed = [
        Weighed(pair.claim.id, round(p, 3), round(t, 3), texts[pair.best].strip(), p >= t)
        for pair, p, t in scored
    ]
    return _flags(model, texts, scored), sorted(weighed, key=lambda w: -w.probability)


def _scored(
    passage: str, claims: Sequence[Claim], matcher: Matcher, focus: str | None
) -> tuple[ClaimModel, list[str], list[tuple[Pair, float, float]]]:
    """The model, the passage's sentences, and (pair, bears-on probability, threshold)
    for each claim the features describe."""
    import numpy as np

    from archiver.claims.features import describe, example_count
    from archiver.claims.model import load_model

    embedder = matcher.embedder
    if embedder is None:
        raise ValueError("scoring needs the semantic layer")
    model = matcher.model or load_model()
    texts, pairs = describe(passage, claims, embedder, matcher.options, matcher.bank, focus=focus)
    if not pairs:
        return model, texts, []
    probs = model.bears_probability(np.vstack([p.bears for p in pairs]))
    return (
        model,
        texts,
        [
            (pair, float(prob), model.threshold_for(int(example_count(pair.bears))))
            for pair, prob in zip(pairs, probs, strict=True)
        ],
    )


# A claim without labelled examples: out of fold on the training split, the model then
# got 3% of 215 contradicting pairs right (none as bare statements, 14% with cue
# phrases) and none of 411 "mentions" ones; with the story's examples, 57% and 31%
# (benchmarks/claims_stance_by_view.py, docs/benchmarks.md).
UNSURE = (
    "stance unsure: the claim has no labelled examples, and without them the matcher "
    "seldom tells supports from contradicts"
)


def stance_unsure(reasons: Sequence[str], verdict: str | None) -> bool:
    """Whether a stored flag's stance is the matcher's guess (its claim had no examples)
    and no reviewer has settled it: the digest, the alerts and the web view say so."""
    return verdict is None and UNSURE in reasons


BATCH = 32  # passages whose sentences ``prefetch`` is given at once by its callers


def prefetch(passages: Sequence[str], embedder: Embedder | None) -> None:
    """Embed the sentences of many passages in one call, ahead of matching them one at
    a time: the engine is faster on a batch, and ``match`` then finds every vector in
    the embedder's cache (its LRU holds far more than a batch)."""
    if embedder is None:
        return
    texts = sentences_of(passages)
    if texts:
        embedder.embed(texts)


def sentences_of(passages: Sequence[str]) -> list[str]:
    """The distinct sentences of the passages: what matching them embeds (query form)."""
    return list(dict.fromkeys(s.text for p in passages for s in lexical.parse(p)))


def match_all(texts: Sequence[str], claims: Sequence[Claim], matcher: Matcher) -> list[list[Flag]]:
    """The flags of each passage, their sentences embedded in one call first."""
    prefetch(texts, matcher.embedder)
    return [match(t, claims, matcher) for t in texts]


def match_each(
    items: Iterable[tuple[Any, str]],
    claims: Sequence[Claim],
    matcher: Matcher,
    size: int = BATCH,
) -> Iterator[tuple[Any, list[Flag]]]:
    """(id, flags) for each (id, passage) of ``items``, in order, ``size`` passages
    embedded at a time. If ``items`` fails part way, every passage read before the
    failure is answered first, then the failure is raised."""
    for batch in batches(items, size):
        found = match_all([text for _id, text in batch], claims, matcher)
        yield from zip([i for i, _t in batch], found, strict=True)


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size``. If ``items`` fails, the items read before the
    failure come first, as a last short list; the failure is raised after it."""
    batch: list[T] = []
    try:
        for item in items:
            batch.append(item)
            if len(batch) >= size:
                yield batch
                batch = []
    except Exception:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


@dataclass(frozen=True)
class MatchSpec:
    """How to build a ``Matcher`` in another process: plain, picklable data. The bank
    (examples, and the vectors of every text the pipeline already embedded) travels as
    a file, read once per process, not with every job."""

    semantic: bool = True
    model: str | None = None  # path of a trained model; None: the shipped one
    bank_file: str | None = None  # written by ``write_bank``
    bank_key: str = ""  # digest of the bank file's content


def write_spec(
    bank: Bank,
    claims: Sequence[Claim],
    embedder: Embedder,
    path: Path,
    model: str | None = None,
    probes: bytes | None = None,
) -> MatchSpec:
    """The spec of a matcher for ``claims`` with ``bank``, for other processes: the bank
    file at ``path`` holds the examples, the vectors of every text the matcher compares
    with (the examples, the claims' statements in both of e5's forms, their cues) and
    the probes (``probes``: fitted elsewhere, as ``probes_to_bytes``; else fitted here),
    so that no worker computes them again. ``embedder`` computes what it lacks."""
    from archiver.claims.bank import write_bank
    from archiver.claims.probes import probes_to_bytes
    from archiver.claims.semantic import digest, passage_digest

    texts = [e.text for e in bank.examples]
    for claim in claims:
        texts += [*claim.texts, *claim.supports, *claim.contradicts]
    texts = list(dict.fromkeys(texts))
    statements = list(dict.fromkeys(t for claim in claims for t in claim.texts))
    vectors = {digest(t): v.tobytes() for t, v in zip(texts, embedder.embed(texts), strict=True)}
    forms = zip(statements, embedder.embed(statements, passage=True), strict=True)
    vectors.update({passage_digest(t): v.tobytes() for t, v in forms})
    if probes is None and bank.examples:
        probes = probes_to_bytes(bank.probes(embedder))
    return MatchSpec(True, model, str(path), write_bank(path, bank, vectors, probes))


def make_matcher(
    spec: MatchSpec,
    options: MatchOptions | None = None,
    cache: Any = None,
    embedder: E5Embedder | None = None,
) -> Matcher:
    """The matcher a spec describes. The embedding model loads here, once, to run on one
    thread (one worker per core), unless ``embedder`` is given."""
    options = options or MatchOptions()
    if not spec.semantic:
        return Matcher(options)
    from archiver.claims.bank import read_bank
    from archiver.claims.model import load_model
    from archiver.claims.semantic import E5Embedder

    if embedder is None:
        embedder = E5Embedder(cache=cache, threads=1)
    bank = None
    if spec.bank_file:
        bank, vectors = read_bank(spec.bank_file, embedder.name)
        embedder.seed(vectors)
    return Matcher(options, embedder, load_model(spec.model), bank)
