"""Segmentation: text into paragraphs and sentences, sentences into word tokens.

Spans are exact: joining a text's sentences gives the text back, byte for
byte, and joining a sentence's tokens gives the sentence back. That is what
lets a diff be applied to reproduce the new text. Works for Latin and Arabic
script (Arabic question mark, no letter case).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# A sentence ends at . ! ? ؟ … (possibly repeated), then closing quotes or
# brackets, then whitespace, before the next non-space character.
_END = re.compile(r"[.!?؟…]+[\"'”’»)\]]*\s+(?=\S)")
_ABBREVIATIONS = frozenset(
    {
        *("mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "inc", "ltd", "co", "corp"),
        *("vs", "etc", "no", "fig", "gen", "gov", "sen", "rep", "u.s", "u.k", "e.g", "i.e"),
        *("jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"),
    }
)
_LAST_WORD = re.compile(r"(\S+)$")
# A numbered list item's marker, alone before its full stop: "1. The licence..." is one
# sentence, not "1." and the rest.
_MARKER = re.compile(r"\s*\(?\d{1,3}(?:\.\d{1,3}){0,3}")
# German writes a day as an ordinal, "am 9. Januar": the full stop after the day ends
# no sentence when a month follows.
_DAY = re.compile(r"(?:^|\s)\(?\d{1,2}$")
_MONTH = re.compile(
    r"(?:Januar|Jänner|Februar|Feber|März|April|Mai|Juni|Juli|August|September|Oktober"
    r"|November|Dezember)\b"
)
# Words: letters, digits and combining marks (Arabic diacritics stay inside
# their word); every other non-space character is a token of its own.
_TOKEN = re.compile(
    r"(?:[\w\u0300-\u036f\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed])+|\s+|[^\w\s]"
)
_WORD = re.compile(r"[\w\u0300-\u036f\u064b-\u065f\u0670]+")


@dataclass(frozen=True)
class Sentence:
    text: str  # exact span, including trailing whitespace and the line's newline
    paragraph: int  # 1-based
    number: int  # 1-based within the paragraph
    index: int  # 0-based over the whole text


def sentences(text: str) -> list[Sentence]:
    """Split ``text`` into sentences; ``"".join(s.text for s in result) == text``."""
    out: list[Sentence] = []
    for p, line in enumerate(text.splitlines(keepends=True), start=1):
        for n, span in enumerate(_split_line(line), start=1):
            out.append(Sentence(span, p, n, len(out)))
    return out


def _split_line(line: str) -> list[str]:
    spans, start = [], 0
    for match in _END.finditer(line):
        end = match.end()
        if line[end].islower():  # "e.g. something", "3 p.m. today": not a boundary
            continue
        if match.group().startswith(".") and _is_abbreviation(line[start : match.start()]):
            continue
        before = line[start : match.start()]
        if match.group().startswith(".") and _MARKER.fullmatch(before):
            continue
        if match.group() == ". " and _DAY.search(before) and _MONTH.match(line, end):
            continue
        spans.append(line[start:end])
        start = end
    if start < len(line):
        spans.append(line[start:])
    return spans


def _is_abbreviation(before: str) -> bool:
    last = _LAST_WORD.search(before)
    if not last:
        return False
    word = last.group(1).lower().strip("\"'“‘«(")
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def tokens(sentence: str) -> list[str]:
    """Word, space and punctuation tokens; ``"".join(tokens(s)) == s``."""
    return _TOKEN.findall(sentence)


def words(text: str) -> list[str]:
    """The words of ``text`` (no spaces or punctuation)."""
    return _WORD.findall(text)


def sentences_containing(text: str, fragment: str) -> list[str]:
    """The distinct sentences of ``text`` (stripped, in order) that contain ``fragment``,
    whatever its case and spacing: how a reader names a sentence by quoting part of it."""
    wanted = _loose(fragment)
    if not wanted:
        return []
    found: dict[str, None] = {}
    for s in sentences(text):
        if wanted in _loose(s.text):
            found.setdefault(s.text.strip())
    return list(found)


def contains_loosely(text: str, fragment: str) -> bool:
    """Whether ``text`` contains ``fragment`` whatever its case and spacing (across
    sentences too)."""
    wanted = _loose(fragment)
    return bool(wanted) and wanted in _loose(text)


def _loose(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split()).casefold()
