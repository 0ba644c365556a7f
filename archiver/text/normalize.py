"""Normalization: the stable form of a text, so one article always has one digest.

``normalize`` applies Unicode NFC, drops control and invisible formatting
characters, removes volatile snippets (built-in patterns such as "updated 3
minutes ago", plus a source's own ignore patterns), and folds whitespace:
runs of spaces become one, lines are stripped, blank lines are dropped, and
paragraphs are joined by a single newline. It is pure and idempotent.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from store.errors import UsageError

# Relative times, counters and similar text that changes without the article changing.
VOLATILE_PATTERNS: tuple[str, ...] = (
    r"(?i)\b(?:updated|posted|published|edited)?\s*(?:about\s+)?\d+\s+"
    r"(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|days?)\s+ago\b",
    r"(?i)\b(?:updated|posted)\s+(?:just now|moments? ago|today|yesterday)\b",
    r"(?i)\b\d[\d,.]*\s*[km]?\s+(?:views|reads|shares|comments)\b",
    r"(?:(?:تم\s+)?(?:التحديث|تحديث|نشر)\s+)?منذ\s+\d+\s+(?:ثوانٍ|ثانية|ثوان|دقيقة|دقائق|ساعة|ساعات|يوم|أيام)",
    r"\d[\d,.٬٫]*\s+(?:مشاهدة|مشاهدات|قراءة|تعليق|تعليقات)",
    # Whole lines of rotating teasers and "most read" boxes that leak into article text.
    r"(?im)^\s*(?:most read|most popular|trending now|trending|popular now|editor'?s picks)"
    r"\s*:?\s*$",
    r"(?im)^\s*(?:read more|read also|also read|related|see also|recommended)\s*:.*$",
    r"(?m)^\s*(?:الأكثر قراءة|الأكثر مشاهدة|الأكثر تداولا|الأكثر تداولاً)\s*:?\s*$",
    r"(?m)^\s*(?:اقرأ أيضا|اقرأ أيضًا|اقرأ أيضاً|اقرأ المزيد|مواضيع ذات صلة)\s*:.*$",
)

_INVISIBLE = dict.fromkeys(
    map(ord, "\u200b\u200e\u200f\u2060\ufeff\u00ad\u202a\u202b\u202c\u202d\u202e")
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[^\S\n]+")


@dataclass(frozen=True)
class NormalizeOptions:
    ignore: tuple[str, ...] = ()  # a source's own regexes
    volatile: bool = True  # also remove the built-in VOLATILE_PATTERNS


def compile_patterns(
    patterns: Iterable[str], what: str = "ignore pattern"
) -> tuple[re.Pattern[str], ...]:
    """Compile regexes (multi-line mode); a bad one is a ``UsageError`` naming it."""
    return tuple(_compile(p, what) for p in patterns)


@lru_cache(maxsize=1024)
def _compile(pattern: str, what: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.MULTILINE)
    except re.error as exc:
        raise UsageError(f"{what} {pattern!r} is not a valid regular expression: {exc}") from None


def normalize(text: str, options: NormalizeOptions | None = None) -> str:
    options = options or NormalizeOptions()
    text = unicodedata.normalize("NFC", text)
    text = (
        text.replace("\r\n", "\n")
        .replace("\r", "\n")
        .replace("\u2028", "\n")
        .replace("\u2029", "\n")
    )
    text = text.translate(_INVISIBLE)
    text = _CONTROL.sub(" ", text.replace("\t", " "))
    patterns = (VOLATILE_PATTERNS if options.volatile else ()) + tuple(options.ignore)
    for pattern in compile_patterns(patterns):
        text = pattern.sub(" ", text)
    # One pass over the whole text: _SPACES never matches a newline, so this is the
    # same as folding each line (and a tenth of the regex calls on a long page).
    lines = (line.strip() for line in _SPACES.sub(" ", text).split("\n"))
    return "\n".join(line for line in lines if line)


def ascii_digits(text: str) -> str:
    """``text`` with every Unicode decimal digit as its ASCII digit: Arabic-Indic "٦٥",
    Persian "۶۵" and full-width "６５" are all "65". Other characters are kept."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
