"""Significance: how much a change matters to a reader of news edits, 0 to 1.

What moves the score, with the reason recorded on the unit: changed numbers
and amounts, changed quotations, a negation that appears or disappears,
named entities added or removed, a changed headline, and the share of the
text that changed. Whitespace and punctuation churn scores 0.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from archiver.text.normalize import ascii_digits
from archiver.text.segment import words

if TYPE_CHECKING:
    from archiver.text.diff import Unit

_SEPARATORS = str.maketrans("٫٬", ".,")
_NUMBER = re.compile(
    r"[$€£]?\s?\d+(?:[.,٫٬]\d+)*(?:\s?(?:%|percent|per cent|trillion|billion|million|thousand|bn|"
    r"مليار|مليارات|مليون|ملايين|ألف|آلاف|بالمئة|في المئة|٪))?",
    re.IGNORECASE,
)
_QUOTE = re.compile(r"[\"“«„]([^\"”»“]{2,})[\"”»]")
_NEGATION = re.compile(
    r"(?i)\b(?:not|no|never|none|nobody|nothing|neither|nor|cannot|without)\b|n['’]t\b"
    r"|(?<!\w)(?:لا|لن|لم|ليس|ليست|لست|غير|بدون|دون|عدم)(?!\w)"
)
_ENTITY = re.compile(r"\b[A-Z][\w&.-]*(?:\s+[A-Z][\w&.-]*)*")


def numbers(text: str) -> Counter[str]:
    return Counter(
        " ".join(ascii_digits(m.group()).translate(_SEPARATORS).lower().split())
        for m in _NUMBER.finditer(text)
    )


def quotations(text: str) -> set[str]:
    return {" ".join(q.split()) for q in _QUOTE.findall(text)}


def negations(text: str) -> int:
    return len(_NEGATION.findall(text))


def entities(text: str) -> set[str]:
    """Capitalised names not at the start of the sentence (Latin script, also inside Arabic)."""
    found = set()
    for m in _ENTITY.finditer(text):
        before = text[: m.start()].rstrip()
        if not before or before[-1] in '.!?؟:"“«':
            continue  # sentence-initial capital
        found.add(m.group().rstrip("."))
    return found


def _fmt(items: Counter[str] | set[str]) -> str:
    return ", ".join(sorted(items)) or "-"


def score_unit(unit: Unit) -> tuple[float, tuple[str, ...]]:
    old, new = unit.old or "", unit.new or ""
    if unit.kind == "moved":
        return 0.1, (f"moved from paragraph {unit.old_pos[0] if unit.old_pos else '?'}",)
    if words(old) == words(new):
        return 0.0, ("whitespace or punctuation only",)
    reasons: list[str] = []
    if unit.kind == "modified":
        changed = sum(len(words(e.text)) for e in unit.edits if e.op != "equal")
        share = changed / max(1, len(words(old)) + len(words(new)))
        score = 0.15 + 0.35 * min(1.0, 2 * share)
        reasons.append(f"sentence reworded ({changed} words)")
    else:
        n = len(words(old or new))
        score = 0.3 + 0.2 * min(1.0, n / 25)
        reasons.append(f"sentence {unit.kind} ({n} words)")
    nums_old, nums_new = numbers(old), numbers(new)
    if nums_old != nums_new:
        if unit.kind == "modified":
            score += 0.4
            reasons.append(
                f"number changed: {_fmt(nums_old - nums_new)} -> {_fmt(nums_new - nums_old)}"
            )
        else:
            score += 0.15
            reasons.append(f"figures {unit.kind}: {_fmt(nums_old + nums_new)}")
    q_old, q_new = quotations(old), quotations(new)
    if q_old != q_new:
        score += 0.3 if unit.kind == "modified" else 0.15
        reasons.append("quotation changed" if unit.kind == "modified" else f"quotation {unit.kind}")
    if unit.kind == "modified" and negations(old) != negations(new):
        score += 0.4
        direction = "added" if negations(new) > negations(old) else "removed"
        reasons.append(f"negation {direction}")
    if unit.kind == "modified":
        e_old, e_new = entities(old), entities(new)
        if e_old != e_new:
            score += 0.2
            if e_new - e_old:
                reasons.append(f"named entity added: {_fmt(e_new - e_old)}")
            if e_old - e_new:
                reasons.append(f"named entity removed: {_fmt(e_old - e_new)}")
    return round(min(1.0, score), 3), tuple(reasons)


def score_change(
    units: Sequence[Unit], share_changed: float, old_title: str | None, new_title: str | None
) -> tuple[float, list[str]]:
    reasons: list[str] = []
    score = max((u.significance for u in units), default=0.0)
    if old_title != new_title and old_title is not None and new_title is not None:
        score = max(score, 0.6)
        reasons.append(f"headline changed: {old_title!r} -> {new_title!r}")
    if share_changed > 0:
        score = max(score, min(1.0, 1.5 * share_changed))
        reasons.append(f"{share_changed:.0%} of words changed")
    strongest = sorted((u for u in units if u.significance > 0), key=lambda u: -u.significance)
    for u in strongest:
        for r in u.reasons:
            if r not in reasons and not r.startswith("sentence "):
                reasons.append(r)
    return round(min(1.0, score), 3), reasons[:6]
