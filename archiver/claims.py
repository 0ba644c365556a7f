"""Claims matching: a passage and the claims in, flags out (pure).

For each claim, each sentence of the passage is scored lexically:

* entities: an actor or object of the claim is named (any alias, both languages);
* terms: the claim's topic terms, weighted BM25-style by their inverse document
  frequency over all the claims (a term every claim shares weighs little) with
  saturating term frequency;
* cues: phrases that count as evidence for (``supports``) or against
  (``contradicts``) the claim. A negation shortly before a cue ("will not keep
  it closed") flips its side. Cue words may have up to two words between them.

A passage bears on a claim when it names one of the claim's entities and has
claim-specific evidence: a cue, a distinctive term, or enough term weight.
Its stance is the side with more cue weight, else ``mentions``. An optional
semantic layer (``MatchOptions.semantic``) adds sentence-embedding similarity.
Every flag carries its evidence sentence and the reasons it fired.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from archiver.segment import sentences
from archiver.textkeys import fold, keys, raw_words, words

STANCES = ("supports", "contradicts", "mentions")
NEGATIONS = frozenset(
    "not no never cannot without nor neither none nobody nothing".split()
    + [fold(w) for w in "لا لن لم ليس ليست لست غير عدم بدون دون".split()]
)
# Words that end what follows them: "stop releasing the weights" flips the cue
# "releasing the weights" just as "not" would. English ones match in any form
# (by stem); Arabic ones only as written, since stems of short Arabic words
# collide ("إنها", "that it", would stem like "أنهى", "ended").
_CESSATION_STEMS = tuple(keys(w) for w in "stop halt end abandon cease scrap drop".split())
_CESSATION_AR = frozenset(
    fold(w)
    for w in "توقف توقفت يتوقف تتوقف ستتوقف أوقف أوقفت توقفها تخلى تخلت تتخلى ستتخلى أنهت".split()
)


def _negator(word: str) -> bool:
    if word in NEGATIONS or word.endswith("n't") or word in _CESSATION_AR:
        return True
    return not _is_arabic(word) and any(keys(word) & c for c in _CESSATION_STEMS)


def _is_arabic(word: str) -> bool:
    return any("\u0600" <= ch <= "\u06ff" for ch in word)


@dataclass(frozen=True)
class Entity:
    name: str
    aliases: tuple[str, ...]
    case_sensitive: bool = False


@dataclass(frozen=True)
class Claim:
    id: str
    en: str
    ar: str
    actors: tuple[Entity, ...] = ()
    objects: tuple[Entity, ...] = ()
    terms: tuple[str, ...] = ()
    supports: tuple[str, ...] = ()
    contradicts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Flag:
    claim: str
    stance: str  # supports | contradicts | mentions
    score: float  # 0..1
    evidence: str
    reasons: tuple[str, ...]


class Semantic(Protocol):
    """Sentence-embedding similarity between passage sentences and claims."""

    def best(
        self, sentences: Sequence[str], claims: Sequence[Claim]
    ) -> dict[str, tuple[float, int]]:
        """For each claim id: the highest similarity and the index of that sentence."""
        ...

    def stance(self, sentences: Sequence[str], claim: Claim) -> tuple[str, float]:
        """``supports`` or ``contradicts``, and the margin between the two sides."""
        ...


@dataclass(frozen=True)
class MatchOptions:
    negation_window: int = 4  # words before a cue in which a negation flips it
    slop: int = 3  # words allowed between the words of a cue (never after or over a negation)
    min_terms: int = 2  # without a cue: distinct topic words needed ...
    min_term_weight: float = 2.5  # ... and their total weight
    mention_ratio: float = 0.75  # a flag without cues must be this close to the passage's best
    semantic: Semantic | None = field(default=None, compare=False)
    # Semantic relevance is relative: a claim's similarity minus the median over all
    # claims for this passage (claims of one story are all alike in absolute terms).
    semantic_gate: float = 0.07  # with an entity named, this lead alone bears on the claim
    semantic_stance_margin: float = 0.01  # prototype stance needs at least this margin


# -- compiled form of the claims -------------------------------------------------

Phrase = tuple[frozenset[str], ...]


@dataclass(frozen=True)
class _Compiled:
    claim: Claim
    actors: tuple[tuple[str, tuple[Phrase, ...], bool], ...]
    objects: tuple[tuple[str, tuple[Phrase, ...], bool], ...]
    terms: tuple[tuple[str, Phrase, float], ...]
    cues: tuple[tuple[str, Phrase, str], ...]  # (text, phrase, side)


def _phrase(text: str) -> Phrase:
    return tuple(keys(w) for w in words(text))


def _exact(text: str) -> Phrase:
    return tuple(frozenset({w}) for w in raw_words(text))


@lru_cache(maxsize=16)
def compile_claims(claims: tuple[Claim, ...]) -> tuple[_Compiled, ...]:
    df: Counter[frozenset[str]] = Counter()
    for c in claims:
        df.update({frozenset().union(*_phrase(t)) for t in (*c.terms, *c.supports, *c.contradicts)})
    n = len(claims)

    def idf(text: str) -> float:
        seen = df[frozenset().union(*_phrase(text))] or 1
        return math.log(1 + (n - seen + 0.5) / (seen + 0.5))

    def entities(es: tuple[Entity, ...]) -> tuple[tuple[str, tuple[Phrase, ...], bool], ...]:
        return tuple(
            (
                e.name,
                tuple((_exact if e.case_sensitive else _phrase)(a) for a in e.aliases),
                e.case_sensitive,
            )
            for e in es
        )

    return tuple(
        _Compiled(
            claim=c,
            actors=entities(c.actors),
            objects=entities(c.objects),
            terms=tuple((t, _phrase(t), idf(t)) for t in c.terms if words(t)),
            cues=tuple(
                [(t, _phrase(t), "supports") for t in c.supports if words(t)]
                + [(t, _phrase(t), "contradicts") for t in c.contradicts if words(t)]
            ),
        )
        for c in claims
    )


# -- matching ----------------------------------------------------------------------


@dataclass
class _Sentence:
    text: str
    folded: list[str]
    raw: list[str]
    keyed: list[frozenset[str]]
    clause: list[int]  # clause number of each word (commas, semicolons and colons split)
    exact: list[frozenset[str]]  # each word as written, for case-sensitive names


_CLAUSE = re.compile(r"[,،;؛:]")


def _sentence(text: str) -> _Sentence:
    raw, clause = [], []
    for n, part in enumerate(_CLAUSE.split(text)):
        words_here = raw_words(part)
        raw += words_here
        clause += [n] * len(words_here)
    folded = [fold(w) for w in raw]
    keyed = [keys(w) for w in folded]
    return _Sentence(text.strip(), folded, raw, keyed, clause, [frozenset({w}) for w in raw])


def _find(phrase: Phrase, toks: list[frozenset[str]], slop: int = 0) -> list[tuple[int, int]]:
    """Spans (start, end) where the phrase occurs, allowing ``slop`` words between its
    words, except right after a negation ("not open source" is not "not dogmatic about
    open source")."""
    if not phrase:
        return []
    found = []
    for start, tok in enumerate(toks):
        if not tok & phrase[0]:
            continue
        pos, ok = start, True
        for k, part in enumerate(phrase[1:]):
            gap = 0 if phrase[k] & NEGATIONS else slop
            nxt = None
            for p in range(pos + 1, min(len(toks), pos + 2 + gap)):
                if toks[p] & part:
                    nxt = p
                    break
                if toks[p] & NEGATIONS:  # never skip over a negation
                    break
            if nxt is None:
                ok = False
                break
            pos = nxt
        if ok:
            found.append((start, pos + 1))
    return found


def _negated(s: _Sentence, start: int, window: int) -> str | None:
    """The negating words shortly before a cue, when they flip it: an odd number of
    them ("will not stop releasing" flips "stop releasing"; "will not stop releasing
    the weights" leaves "releasing the weights" as it is)."""
    lo = max(0, start - window)
    found = [
        w
        for w, clause in zip(s.folded[lo:start], s.clause[lo:start], strict=True)
        if _negator(w) and clause == s.clause[start]
    ]
    return " ".join(found) if len(found) % 2 else None


def _saturate(tf: int, k1: float = 1.2) -> float:
    return tf * (k1 + 1) / (tf + k1)


def match(passage: str, claims: Sequence[Claim], options: MatchOptions | None = None) -> list[Flag]:
    """Flags for every claim the passage bears on, strongest first."""
    options = options or MatchOptions()
    compiled = compile_claims(tuple(claims))
    sents = [sent for s in sentences(passage) if (sent := _sentence(s.text)).folded]
    if not sents:
        return []
    semantic: dict[str, tuple[float, int]] = {}
    if options.semantic is not None:
        sims = options.semantic.best([s.text for s in sents], claims)
        middle = sorted(v[0] for v in sims.values())[len(sims) // 2]
        semantic = {cid: (sim - middle, i) for cid, (sim, i) in sims.items()}
    found = [
        r for c in compiled if (r := _match_claim(c, sents, options, semantic.get(c.claim.id)))
    ]
    best = max((raw for _flag, raw in found), default=0.0)
    # A flag without stance cues is kept only when it is nearly as strong as the best:
    # a passage that is evidence for one claim does not thereby bear on its neighbours.
    flags = [
        flag
        for flag, raw in found
        if flag.stance != "mentions" or raw >= options.mention_ratio * best
    ]
    return sorted(flags, key=lambda f: -f.score)


def _match_claim(
    c: _Compiled, sents: list[_Sentence], options: MatchOptions, semantic: tuple[float, int] | None
) -> tuple[Flag, float] | None:
    reasons: list[str] = []
    per_sentence = [0.0] * len(sents)

    def entity_hits(group: tuple[tuple[str, tuple[Phrase, ...], bool], ...]) -> list[str]:
        hit = []
        for name, phrases, exact in group:
            for n, s in enumerate(sents):
                toks = s.exact if exact else s.keyed
                if any(_find(p, toks) for p in phrases):
                    hit.append(name)
                    per_sentence[n] += 1.0
                    break
        return hit

    actors, objects = entity_hits(c.actors), entity_hits(c.objects)
    term_weight, term_names = 0.0, []
    term_positions: set[tuple[int, int]] = set()  # (sentence, word): "recruit"/"recruiting" once
    for text, phrase, idf in c.terms:
        spans = [(n, span) for n, s in enumerate(sents) for span in _find(phrase, s.keyed)]
        if spans:
            term_weight += idf * _saturate(len(spans))
            term_names.append(text)
            for n, (start, _end) in spans:
                per_sentence[n] += idf * 0.5
                term_positions.add((n, start))
    side_weight = {"supports": 0.0, "contradicts": 0.0}
    cue_sentence: dict[str, int] = {}
    for text, phrase, side in c.cues:
        for n, s in enumerate(sents):
            for start, _end in _find(phrase, s.keyed, options.slop):
                negation = _negated(s, start, options.negation_window)
                if negation:
                    side = "contradicts" if side == "supports" else "supports"
                    reasons.append(f"{side} (negated cue '{text}' after '{negation}')")
                else:
                    reasons.append(f"{side} cue '{text}'")
                weight = 1.5 + 0.1 * len(phrase)
                side_weight[side] += weight
                per_sentence[n] += 2 * weight
                cue_sentence.setdefault(side, n)  # the first sentence with evidence for the side
    cues = side_weight["supports"] + side_weight["contradicts"]
    sim_bonus = 0.0
    if semantic is not None and semantic[0] > 0.02:
        sim_bonus = 5 * (semantic[0] - 0.02)
        per_sentence[semantic[1]] += sim_bonus
        reasons.append(f"semantic lead {semantic[0]:+.3f} over the median claim")
    named = bool(actors or objects)
    evidence_found = cues > 0 or (
        len(term_positions) >= options.min_terms and term_weight >= options.min_term_weight
    )
    semantic_ok = semantic is not None and semantic[0] >= options.semantic_gate
    if not (named and (evidence_found or semantic_ok)):
        return None
    if side_weight["supports"] > side_weight["contradicts"]:
        stance = "supports"
    elif side_weight["contradicts"] > side_weight["supports"]:
        stance = "contradicts"
    else:
        stance = "mentions"
        if options.semantic is not None:
            side, margin = options.semantic.stance([s.text for s in sents], c.claim)
            if margin >= options.semantic_stance_margin:
                stance = side
                reasons.append(f"{side} (semantic, margin {margin:.3f})")
    raw = (
        (1.0 if actors else 0.0) + (1.2 if objects else 0.0) + 0.5 * term_weight + cues + sim_bonus
    )
    score = round(1 - math.exp(-raw / 4), 3)
    if stance in cue_sentence:
        best = cue_sentence[stance]
    else:
        best = max(range(len(sents)), key=lambda n: per_sentence[n])
    head = []
    if actors:
        head.append("actors: " + ", ".join(actors))
    if objects:
        head.append("objects: " + ", ".join(objects))
    if term_names:
        head.append(f"terms: {', '.join(term_names[:6])} (weight {term_weight:.1f})")
    return Flag(c.claim.id, stance, score, sents[best].text, tuple(head + reasons)), raw


# -- plain-data form (stored in the claims table) -----------------------------------


def claim_to_dict(claim: Claim) -> dict[str, object]:
    def entity(e: Entity) -> dict[str, object]:
        return {"name": e.name, "aliases": list(e.aliases), "case_sensitive": e.case_sensitive}

    return {
        "id": claim.id,
        "en": claim.en,
        "ar": claim.ar,
        "actors": [entity(e) for e in claim.actors],
        "objects": [entity(e) for e in claim.objects],
        "terms": list(claim.terms),
        "supports": list(claim.supports),
        "contradicts": list(claim.contradicts),
    }


def claim_from_dict(d: dict[str, Any]) -> Claim:
    def entity(e: dict[str, Any]) -> Entity:
        return Entity(e["name"], tuple(e["aliases"]), bool(e.get("case_sensitive", False)))

    return Claim(
        id=d["id"],
        en=d["en"],
        ar=d["ar"],
        actors=tuple(entity(e) for e in d.get("actors", [])),
        objects=tuple(entity(e) for e in d.get("objects", [])),
        terms=tuple(d.get("terms", [])),
        supports=tuple(d.get("supports", [])),
        contradicts=tuple(d.get("contradicts", [])),
    )
