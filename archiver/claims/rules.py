"""Claims and the rule (lexical) matcher: a passage and the claims in, flags out (pure).

The default matcher is the learned one in ``archiver/claims/matcher.py``; it reads this
module's lexical evidence as some of its features, and falls back to ``match`` here
when sentence vectors are off (``--no-semantic``). For each claim, each sentence of
the passage is scored lexically:

* entities: an actor or object of the claim is named (any alias, both languages);
* terms: the claim's topic terms, weighted BM25-style by their inverse document
  frequency over all the claims (a term every claim shares weighs little) with
  saturating term frequency;
* cues: phrases that count as evidence for (``supports``) or against
  (``contradicts``) the claim. A negation shortly before a cue ("will not keep
  it closed") flips its side. Cue words may have up to two words between them.

A passage bears on a claim when it names one of the claim's entities and has
claim-specific evidence: a cue, a distinctive term, or enough term weight.
Its stance is the side with more cue weight, else ``mentions``. Every flag carries
its evidence sentence and the reasons it fired.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from archiver.claims.textkeys import fold, keys, raw_words, words
from archiver.text.segment import sentences

STANCES = ("supports", "contradicts", "mentions")
NEGATIONS = frozenset(
    "not no never cannot without nor neither none nobody nothing".split()
    + [fold(w) for w in "لا لن لم ليس ليست لست غير عدم بدون دون".split()]
)
# Words that end what follows them: "stop releasing the weights" flips the cue
# "releasing the weights" just as "not" would. English ones match in any form
# (by stem); Arabic ones only as written, since stems of short Arabic words
# collide ("إنها", "that it", would stem like "أنهى", "ended").
_CESSATION = "stop halt end abandon cease scrap drop".split()
_CESSATION_AR = frozenset(
    fold(w)
    for w in "توقف توقفت يتوقف تتوقف ستتوقف أوقف أوقفت توقفها تخلى تخلت تتخلى ستتخلى أنهت".split()
)


def _negator(word: str) -> bool:
    if word in NEGATIONS or word.endswith("n't") or word in _CESSATION_AR:
        return True
    return not _is_arabic(word) and any(keys(word) & keys(c) for c in _CESSATION)


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
    statements: tuple[tuple[str, str], ...]  # (language, text): the claim in any languages
    actors: tuple[Entity, ...] = ()
    objects: tuple[Entity, ...] = ()
    terms: tuple[str, ...] = ()
    supports: tuple[str, ...] = ()
    contradicts: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The claim in its first language, for display."""
        return self.statements[0][1]

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(text for _lang, text in self.statements)


@dataclass(frozen=True)
class Flag:
    claim: str
    stance: str  # supports | contradicts | mentions
    score: float  # 0..1
    evidence: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class MatchOptions:
    negation_window: int = 4  # words before a cue in which a negation flips it
    slop: int = 3  # words allowed between the words of a cue (never after or over a negation)
    min_terms: int = 2  # without a cue: distinct topic words needed ...
    min_term_weight: float = 2.5  # ... and their total weight
    mention_ratio: float = 0.75  # a flag without cues must be this close to the passage's best


# -- compiled form of the claims -------------------------------------------------

Phrase = tuple[frozenset[str], ...]


@dataclass(frozen=True)
class _Compiled:
    claim: Claim
    actors: tuple[tuple[str, tuple[Phrase, ...], bool], ...]
    objects: tuple[tuple[str, tuple[Phrase, ...], bool], ...]
    terms: tuple[tuple[str, Phrase, float], ...]
    cues: tuple[tuple[str, Phrase, str], ...]  # (text, phrase, side)
    # Every phrase above by each key of its first word: a passage is scanned only for
    # the phrases whose words it has (most of a story's phrases are in no sentence).
    first: dict[str, frozenset[Phrase]] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        phrases = [p for _n, ps, _e in (*self.actors, *self.objects) for p in ps]
        phrases += [p for _t, p, _x in (*self.terms, *self.cues)]
        index: dict[str, set[Phrase]] = {}
        for phrase in phrases:
            for key in phrase[0] if phrase else ():
                index.setdefault(key, set()).add(phrase)
        self.first.update({k: frozenset(v) for k, v in index.items()})

    def present(self, vocab: frozenset[str]) -> set[Phrase]:
        """The phrases each of whose words is in ``vocab`` (they may occur)."""
        maybe = {p for k in vocab & self.first.keys() for p in self.first[k]}
        return {p for p in maybe if not any(vocab.isdisjoint(part) for part in p[1:])}


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
    vocab: frozenset[str]  # every key of every word, and every word as written

    def spans(self, phrase: Phrase, exact: bool = False, slop: int = 0) -> list[tuple[int, int]]:
        """Where ``phrase`` occurs (``_find``). A phrase with a word the sentence lacks
        is answered from the sentence's vocabulary, without a scan: most of a story's
        names, terms and cues are absent from most sentences."""
        if any(self.vocab.isdisjoint(part) for part in phrase):
            return []
        return _find(phrase, self.exact if exact else self.keyed, slop)


_CLAUSE = re.compile(r"[,،;؛:]")


def _sentence(text: str) -> _Sentence:
    raw, clause = [], []
    for n, part in enumerate(_CLAUSE.split(text)):
        words_here = raw_words(part)
        raw += words_here
        clause += [n] * len(words_here)
    folded = [fold(w) for w in raw]
    keyed = [keys(w) for w in folded]
    exact = [frozenset({w}) for w in raw]
    vocab = frozenset(raw).union(*keyed)
    return _Sentence(text.strip(), folded, raw, keyed, clause, exact, vocab)


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


def parse(passage: str) -> list[_Sentence]:
    """The passage's sentences, tokenized for the lexical matcher (empty ones dropped)."""
    return [sent for s in sentences(passage) if (sent := _sentence(s.text)).folded]


def match(passage: str, claims: Sequence[Claim], options: MatchOptions | None = None) -> list[Flag]:
    """Flags for every claim the passage bears on, strongest first (lexical rules only;
    ``archiver.claims.matcher.match`` adds the learned, multilingual scorer)."""
    options = options or MatchOptions()
    sents = parse(passage)
    if not sents:
        return []
    found = []
    for c in compile_claims(tuple(claims)):
        ev = evidence(c, sents, options)
        if ev.named and ev.found(options):
            found.append(_rule_flag(c.claim, ev, sents))
    best = max((raw for _flag, raw in found), default=0.0)
    # A flag without stance cues is kept only when it is nearly as strong as the best:
    # a passage that is evidence for one claim does not thereby bear on its neighbours.
    flags = [
        flag
        for flag, raw in found
        if flag.stance != "mentions" or raw >= options.mention_ratio * best
    ]
    return sorted(flags, key=lambda f: -f.score)


@dataclass
class Evidence:
    """What the lexical matcher found for one claim in one passage."""

    actors: list[str]
    objects: list[str]
    term_weight: float
    term_names: list[str]
    side_weight: dict[str, float]
    cue_sentence: dict[str, int]  # side -> first sentence with a cue for it
    per_sentence: list[float]  # lexical weight of each sentence
    reasons: list[str]
    term_positions: int  # distinct (sentence, word) positions of topic terms

    @property
    def named(self) -> bool:
        return bool(self.actors or self.objects)

    @property
    def cues(self) -> float:
        return self.side_weight["supports"] + self.side_weight["contradicts"]

    def found(self, options: MatchOptions) -> bool:
        """Claim-specific evidence: a cue, or enough distinct, weighty topic terms."""
        return self.cues > 0 or (
            self.term_positions >= options.min_terms and self.term_weight >= options.min_term_weight
        )

    @property
    def raw(self) -> float:
        return (
            (1.0 if self.actors else 0.0)
            + (1.2 if self.objects else 0.0)
            + 0.5 * self.term_weight
            + self.cues
        )

    def head(self) -> list[str]:
        """Human-readable reasons: what was named, which topic terms, then the cues."""
        out = []
        if self.actors:
            out.append("actors: " + ", ".join(self.actors))
        if self.objects:
            out.append("objects: " + ", ".join(self.objects))
        if self.term_names:
            out.append(f"terms: {', '.join(self.term_names[:6])} (weight {self.term_weight:.1f})")
        return out + self.reasons


def evidence(c: _Compiled, sents: list[_Sentence], options: MatchOptions) -> Evidence:
    """Entity, topic-term and cue hits of one claim in the passage's sentences."""
    reasons: list[str] = []
    per_sentence = [0.0] * len(sents)
    present = c.present(frozenset().union(*(s.vocab for s in sents)))

    def entity_hits(group: tuple[tuple[str, tuple[Phrase, ...], bool], ...]) -> list[str]:
        hit = []
        for name, every, exact in group:
            phrases = [p for p in every if p in present]
            for n, s in enumerate(sents):
                if phrases and any(s.spans(p, exact) for p in phrases):
                    hit.append(name)
                    per_sentence[n] += 1.0
                    break
        return hit

    actors, objects = entity_hits(c.actors), entity_hits(c.objects)
    term_weight, term_names = 0.0, []
    term_positions: set[tuple[int, int]] = set()  # (sentence, word): "recruit"/"recruiting" once
    for text, phrase, idf in c.terms:
        if phrase not in present:
            continue
        spans = [(n, span) for n, s in enumerate(sents) for span in s.spans(phrase)]
        if spans:
            term_weight += idf * _saturate(len(spans))
            term_names.append(text)
            for n, (start, _end) in spans:
                per_sentence[n] += idf * 0.5
                term_positions.add((n, start))
    side_weight = {"supports": 0.0, "contradicts": 0.0}
    cue_sentence: dict[str, int] = {}
    for text, phrase, side in c.cues:
        if phrase not in present:
            continue
        for n, s in enumerate(sents):
            for start, _end in s.spans(phrase, slop=options.slop):
                negation = _negated(s, start, options.negation_window)
                # Each occurrence on its own: a negated one flips only itself.
                found = side
                if negation:
                    found = "contradicts" if side == "supports" else "supports"
                    reasons.append(f"{found} (negated cue '{text}' after '{negation}')")
                else:
                    reasons.append(f"{found} cue '{text}'")
                weight = 1.5 + 0.1 * len(phrase)
                side_weight[found] += weight
                per_sentence[n] += 2 * weight
                cue_sentence.setdefault(found, n)  # the first sentence with evidence for it
    return Evidence(
        actors,
        objects,
        term_weight,
        term_names,
        side_weight,
        cue_sentence,
        per_sentence,
        reasons,
        len(term_positions),
    )


def _rule_flag(claim: Claim, ev: Evidence, sents: list[_Sentence]) -> tuple[Flag, float]:
    if ev.side_weight["supports"] > ev.side_weight["contradicts"]:
        stance = "supports"
    elif ev.side_weight["contradicts"] > ev.side_weight["supports"]:
        stance = "contradicts"
    else:
        stance = "mentions"
    score = round(1 - math.exp(-ev.raw / 4), 3)
    if stance in ev.cue_sentence:
        best = ev.cue_sentence[stance]
    else:
        best = max(range(len(sents)), key=lambda n: ev.per_sentence[n])
    return Flag(claim.id, stance, score, sents[best].text, tuple(ev.head())), ev.raw


# -- plain-data form (stored in the claims table) -----------------------------------


def claim_to_dict(claim: Claim) -> dict[str, object]:
    def entity(e: Entity) -> dict[str, object]:
        return {"name": e.name, "aliases": list(e.aliases), "case_sensitive": e.case_sensitive}

    return {
        "id": claim.id,
        "statements": [[lang, text] for lang, text in claim.statements],
        "actors": [entity(e) for e in claim.actors],
        "objects": [entity(e) for e in claim.objects],
        "terms": list(claim.terms),
        "supports": list(claim.supports),
        "contradicts": list(claim.contradicts),
    }


def claim_from_dict(d: dict[str, Any]) -> Claim:
    """The claim from its plain form (also the form stored before statements existed,
    which had an ``en`` and an ``ar`` text)."""

    def entity(e: dict[str, Any]) -> Entity:
        return Entity(e["name"], tuple(e["aliases"]), bool(e.get("case_sensitive", False)))

    if "statements" in d:
        statements = tuple((str(lang), str(text)) for lang, text in d["statements"])
    else:
        statements = tuple((lang, d[lang]) for lang in ("en", "ar") if d.get(lang))
    return Claim(
        id=d["id"],
        statements=statements,
        actors=tuple(entity(e) for e in d.get("actors", [])),
        objects=tuple(entity(e) for e in d.get("objects", [])),
        terms=tuple(d.get("terms", [])),
        supports=tuple(d.get("supports", [])),
        contradicts=tuple(d.get("contradicts", [])),
    )
