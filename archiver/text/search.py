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


def folded(phrase: str) -> str:
    """The phrase as it is matched: case-folded, its words one space apart."""
    return " ".join(phrase.casefold().split())


def find(text: str, phrase: str, limit: int = 3, context: int = CONTEXT) -> list[Hit]:
    """The first ``limit`` places ``text`` says ``phrase`` (see the module)."""
    wanted = folded(phrase)
    if len(wanted) < MIN_PHRASE:
        return []
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


def moves(old: str, new: str, phrases: Sequence[str]) -> list[tuple[str, bool]]:
    """The phrases an edit from ``old`` to ``new`` made a text start (True) or stop
    (False) saying, in the order given."""
    return [(p, now) for p in phrases if (now := says(new, p)) != says(old, p)]


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
