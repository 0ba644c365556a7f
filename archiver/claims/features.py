"""The claim-agnostic features of a (passage, claim) pair: ``describe``.

No feature names a claim, so one trained model serves any story:

* similarity of each sentence to the claim's statements, in every language the
  claims file gives (each statement read in both of e5's forms:
  ``statement_vectors``), and how far that claim leads the story's other claims
  (absolute similarities shift by language; the lead does not);
* with the story's labelled examples (``archiver.claims.bank``): how close the
  nearest ones come, and the claim's probes, small models of all its examples
  fitted at start-up (``archiver.claims.probes``), with their lift over the claim's
  share of the examples (what a probe answers far from every example);
* similarity to the claim's cue phrases, when the claims file has them;
* lexical hits: entities named, topic terms, cues (a negation flips a cue);
* negation and "change of course" words, shared numbers, the passage's script;
* how many claims the story has. The comparisons across claims (the lead over the
  median claim, over the next one) say little in a story of one or two, and a new
  user's first story may be that small: so in a story of ``SMALL_STORY`` claims or
  fewer every feature appears a second time (``_small``, 0 in larger stories), and
  the model learns a small story's weights beside a large one's (trained on the
  training story's claims dealt into small stories: ``training.small_stories``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from archiver.claims import rules as lexical
from archiver.claims.bank import Bank, bank_view, example_features, neighbours
from archiver.claims.probes import Probes
from archiver.claims.rules import STANCES, Claim, MatchOptions
from archiver.claims.semantic import Embedder
from archiver.claims.textkeys import fold
from archiver.text.normalize import ascii_digits

SCRIPTS = ("latin", "arabic", "cjk", "other")
SMALL_STORY = 3  # claims, at most, in a story whose features are also given as ``_small``

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
_NUMBER = re.compile(r"\d+(?:[.,٫٬]\d+)?")
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
    have = _content_keys(passage)
    return [
        sum(w for k, w in weights.items() if k in have) / total
        for weights, total in _claim_word_weights(tuple(claims))
    ]


@lru_cache(maxsize=256)
def _claim_word_weights(claims: tuple[Claim, ...]) -> tuple[tuple[dict[str, float], float], ...]:
    """For each claim: its content words, each weighted by how rare it is among the
    story's claims, and their total (the same for every passage of a story)."""
    claim_keys = [frozenset().union(*(_content_keys(t) for t in c.texts)) for c in claims]
    df: dict[str, int] = {}
    for ks in claim_keys:
        for k in ks:
            df[k] = df.get(k, 0) + 1
    n = len(claims)
    out = []
    for ks in claim_keys:
        weights = {k: math.log(1 + n / df[k]) for k in ks}
        out.append((weights, sum(weights.values()) or 1.0))
    return tuple(out)


def _numbers(text: str) -> set[str]:
    """The numbers in a text, in ASCII digits with "." between groups: "٦٥" in an Arabic
    sentence and "65" in its claim are one number, as are "1,5" and "1.5"."""
    return {
        "".join(ch if ch.isdecimal() else "." for ch in ascii_digits(n))
        for n in _NUMBER.findall(text)
    }


@lru_cache(maxsize=8192)
def _marks(text: str) -> tuple[int, int]:
    """Negation and change-of-course words in a sentence."""
    folded = [fold(w) for w in re.findall(r"\w+(?:['’]\w+)?", text)]
    neg = sum(w in _NEGATION or w.endswith("n't") for w in folded)
    change = sum(w in _CHANGE for w in folded)
    neg += sum(text.count(m) for m in _CJK_NEGATION)
    change += sum(text.count(m) for m in _CJK_CHANGE)
    return neg, change


_BEARS = (
    "has_examples",
    "ex_sim",
    "ex_top3",
    "ex_other",
    "ex_none",
    "ex_lead",
    "knn_share",
    "ex_rel",
    "ex_is_top",
    "ex_count",
    "probe",
    "probe_rel",
    "probe_is_top",
    "probe_lead",
    "probe_lift",
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
    "inv_claims",
    "sim_max_x_inv_claims",
    "word_overlap_x_inv_claims",
)
BEARS_FEATURES = (*_BEARS, *(f"{name}_small" for name in _BEARS))
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


def example_count(bears: np.ndarray) -> np.ndarray:
    """How many examples each pair's claim has in the bank (0 without), from ``ex_count``
    of its bears-on features (one row, or rows)."""
    return np.rint(np.expm1(bears[..., _BEARS.index("ex_count")]))


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
    statement_vecs = [statement_vectors(embedder, c.texts) for c in claims]
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
    small = float(len(claims) <= SMALL_STORY)
    view = bank_view(bank, vectors, embedder, exclude)
    ex_sims, examples = view.sims, view.examples
    votes = neighbours(ex_sims, examples)
    best_by_claim = {claim: float(ex_sims[at].max()) for claim, at in view.rows.items() if claim}
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
        ex_bears, ex_stance = example_features(c.id, view, votes, best_by_claim)
        bears = [
            *ex_bears,
            *probed.get(c.id, (0.0, 0.0, 0.0, 0.0, 0.0)),
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
            1 / len(claims),
            sim / len(claims),
            overlaps[k] / len(claims),
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
        own = view.rows.get(c.id, np.zeros(0, np.intp))
        if len(own):
            near = int(own[ex_sims[own].argmax()])
            example = examples[near]
            reasons.append(
                f"nearest example ({example.stance}, similarity {ex_sims[near]:.2f}): "
                f"{example.text[:120]}"
            )
        if c.id in probed:
            score, _rel, probe_top, probe_lead, _lift = probed[c.id]
            rank = "the top claim" if probe_top else f"{-probe_lead:.2f} behind the top claim"
            reasons.append(f"learned from the claim's examples: score {score:.2f}, {rank}")
        pairs.append(
            Pair(
                claim=c,
                bears=np.concatenate([bears, np.multiply(bears, small)]),
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
) -> dict[str, tuple[float, float, float, float, float]]:
    """For each claim with a probe: its best score over the candidate sentences, that
    less the median claim's, whether it is the top claim, its lead over the next, and
    its lift: the score less the claim's share of the examples, which is what the probe
    answers for a sentence far from every example (half, in a bank of five examples and
    five near misses; a few percent, in a story of many claims)."""
    if probes is None:
        return {}
    every = probes.bear_scores(vectors)
    scores = {c.id: float(every[c.id].max()) for c in claims if c.id in every}
    if not scores:
        return {}
    values = sorted(scores.values())
    median = values[len(values) // 2]
    out = {}
    for claim, score in scores.items():
        others = [v for k, v in scores.items() if k != claim]
        lead = score - max(others) if others else 0.0
        lift = score - probes.bears[claim].bias
        out[claim] = (score, score - median, float(score >= values[-1]), lead, lift)
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
def statement_vectors(embedder: Embedder, texts: tuple[str, ...]) -> np.ndarray:
    """A claim's statements, each the mean of its e5 query and passage vectors. A new
    story's claims are written only as statements, and on claims the model never saw
    (leave one claim out, training split) the mean ranks their passages better than
    the query form alone: AUC 0.852 against 0.844, F1 0.436 against 0.401
    (docs/benchmarks.md). Looked up once per process (read-only)."""
    vectors = (embedder.embed(list(texts)) + embedder.embed(list(texts), passage=True)) / 2
    vectors.flags.writeable = False
    return vectors


@lru_cache(maxsize=4096)
def _fixed_vectors(embedder: Embedder, texts: tuple[str, ...]) -> np.ndarray:
    """Vectors of a claim's cues (query form): the same for every passage, so looked up
    once per process, not hashed and copied again for each passage (read-only)."""
    vectors = embedder.embed(list(texts))
    vectors.flags.writeable = False
    return vectors
