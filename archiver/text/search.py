"""Finding a phrase in archived text: where a text says it, with the words around it,
and over a source's versions, from when to when it said it and which version's edit
took it away (``claimwatch search``).

A phrase matches regardless of case (Unicode case folding, so "STRASSE" finds
"Straße") and of how many spaces separate its words; it never runs across two
paragraphs. Pure functions over plain data: the CLI reads the texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

CONTEXT = 60  # characters shown either side of a match, at most
MIN_PHRASE = 2  # characters: a single letter matches nearly everything


@dataclass(frozen=True)
class Hit:
    """One place a text says the phrase: the match as the text writes it, and the
    words before and after it on its paragraph (cut at a word, "…" where cut)."""

    before: str
    match: str
    after: str


@dataclass(frozen=True)
class Span:
    """Consecutive versions that said the phrase: the first and the last, and the
    version whose edit took it away (None while the current text still says it)."""

    first: tuple[int, datetime]
    last: tuple[int, datetime]
    gone: tuple[int, datetime] | None


@dataclass(frozen=True)
class Moved:
    """A phrase an edit made a text start (``said``) or stop saying, with the words
    around it in the text that says it: the new one, or the old."""

    phrase: str
    said: bool
    hit: Hit


def folded(phrase: str) -> str:
    """The phrase as it is matched: case-folded, its words one space apart."""
    return " ".join(phrase.casefold().split())


def too_short(phrase: str) -> bool:
    """Whether the phrase, as matched, is under ``MIN_PHRASE`` characters: a single
    letter matches nearly everything, so it is refused (search, [watch] phrases)."""
    return len(folded(phrase)) < MIN_PHRASE


def find(text: str, phrase: str, limit: int = 3, context: int = CONTEXT) -> list[Hit]:
    """The first ``limit`` places ``text`` says ``phrase`` (see the module)."""
    if too_short(phrase):
        return []
    wanted = folded(phrase)
    # Most texts do not say it: one fold of the whole text, in C, tells them apart
    # eight times faster than the paragraphs' character maps below (a text that says
    # it always passes; a match across two paragraphs is weeded out below).
    if wanted not in " ".join(text.casefold().split()):
        return []
    return _found(text, wanted, limit, context)


def _found(text: str, wanted: str, limit: int, context: int) -> list[Hit]:
    """``find`` without its shortcut: ``wanted`` is already folded."""
    hits: list[Hit] = []
    for paragraph in text.split("\n"):
        folded_text, where = _fold(paragraph)
        start = folded_text.find(wanted)
        while start != -1 and len(hits) < limit:
            end = start + len(wanted)
            a, b = where[start], where[end - 1] + 1  # back to the paragraph's characters
            before, after = _before(paragraph[:a], context), _after(paragraph[b:], context)
            hits.append(Hit(before, paragraph[a:b], after))
            start = folded_text.find(wanted, end)
        if len(hits) >= limit:
            break
    return hits


def says(text: str, phrase: str) -> bool:
    return bool(find(text, phrase, limit=1))


def moves(old: str, new: str, phrases: Sequence[str]) -> list[Moved]:
    """The phrases an edit from ``old`` to ``new`` made a text start or stop saying, in
    the order given."""
    out = []
    for phrase in phrases:
        now, before = find(new, phrase, limit=1), find(old, phrase, limit=1)
        if bool(now) != bool(before):
            out.append(Moved(phrase, bool(now), (now or before)[0]))
    return out


def spans(presence: Sequence[tuple[int, datetime, bool]]) -> list[Span]:
    """From (version number, captured at, says it) in version order, the runs of
    versions that said the phrase."""
    out: list[Span] = []
    first: tuple[int, datetime] | None = None
    last: tuple[int, datetime] | None = None
    for number, at, present in presence:
        if present:
            first = first or (number, at)
            last = (number, at)
        elif first is not None and last is not None:
            out.append(Span(first, last, (number, at)))
            first = last = None
    if first is not None and last is not None:
        out.append(Span(first, last, None))
    return out


def _fold(paragraph: str) -> tuple[str, list[int]]:
    """The paragraph case-folded with its whitespace runs made one space, and for each
    character of that, the index of the paragraph's character it came from."""
    chars: list[str] = []
    where: list[int] = []
    for n, ch in enumerate(paragraph):
        if ch.isspace():
            if chars and chars[-1] == " ":
                continue
            chars.append(" ")
            where.append(n)
            continue
        for f in ch.casefold():  # "ß" folds to two characters, both from one
            chars.append(f)
            where.append(n)
    return "".join(chars), where


def _before(text: str, context: int) -> str:
    if len(text) <= context:
        return text
    cut = text[-context:]
    space = cut.find(" ")
    return "…" + (cut[space + 1 :] if 0 <= space < context // 2 else cut)


def _after(text: str, context: int) -> str:
    if len(text) <= context:
        return text
    cut = text[:context]
    space = cut.rfind(" ")
    return (cut[:space] if space > context // 2 else cut) + "…"
