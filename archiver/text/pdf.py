"""PDF documents to archived text: a licence, a filing or a report published as a PDF.

pypdf reads the text of each page as the lines the page draws, with where it draws
them. ``paragraphs`` joins those lines back into paragraphs, because the diff and the
claims matcher work on paragraphs and sentences: a line a page breaks differently must
not read as an edit. Paragraphs part where the page leaves more space than between
its lines, indents a first line, starts a list item, or ends a line short (a
paragraph's last line, a heading). A word hyphenated across two lines is joined.
Page numbers and "Page N of M" lines are page furniture, not text: they move whenever
the text before them grows.

Only the text a PDF carries is read: a scan (page images) has none, and is refused
as empty rather than archived blank. An encrypted PDF is read when it opens with an
empty password (many are "encrypted" only to forbid printing), and refused otherwise.
"""

from __future__ import annotations

import io
import itertools
import logging
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from store.errors import EmptyExtraction, ExtractionError

PDF = "application/pdf"
MAX_PAGES = 2000  # pages read; the worker's CPU limit bounds a slow page

_FURNITURE = re.compile(r"(?:page\s*)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?", re.IGNORECASE)
_ITEM = re.compile(r"(?:[•▪◦‣·\-–—*]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s")
_ENDS = tuple('.!?:;…"”’)»。！？')
SHORT = 0.8  # a line under this share of its page's usual width is a paragraph's last
GAP = 1.3  # a gap over this many times the page's usual line spacing parts paragraphs
INDENT = 6.0  # points past the page's left margin that mark a paragraph's first line


@dataclass(frozen=True)
class PdfText:
    text: str  # paragraphs, one a line
    title: str | None
    pages: int


@dataclass(frozen=True)
class Line:
    """A line a page draws: where it starts (``y`` up from the page's foot, ``x`` from
    its left edge) and its text."""

    y: float
    x: float
    text: str


def pdf_text(body: bytes) -> PdfText:
    """The text of a PDF's pages as paragraphs, and its title from the document's
    information; ``ExtractionError`` for a PDF that cannot be read."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings are per object
    try:
        reader = PdfReader(io.BytesIO(body), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("the PDF is encrypted with a password; it cannot be read")
        pages = [_lines(page) for page in reader.pages[:MAX_PAGES]]
        info = reader.metadata
        title = (info.title or "").strip() if info is not None else ""
    except ExtractionError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        # pypdf's own errors, and what a malformed object breaks inside it
        raise ExtractionError(f"the PDF cannot be read ({type(exc).__name__}: {exc})") from None
    text = "\n".join(paragraphs(pages))
    if not text.strip():
        raise EmptyExtraction("the PDF has no text (a scan of page images?)")
    return PdfText(text, title or None, len(pages))


def _lines(page: Any) -> list[Line]:
    """The page's lines in the order it draws them, each placed where it starts."""
    drawn: list[Line] = []

    def visit(text: str, cm: list[float], tm: list[float], *_: Any) -> None:
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        for n, part in enumerate(text.split("\n")):
            if n and drawn:  # a line break: an empty line, so that nothing drawn next
                # at the same height joins the line before it (dropped when left empty)
                drawn.append(Line(drawn[-1].y, drawn[-1].x, ""))
            if not part:
                continue
            if drawn and abs(drawn[-1].y - y) < 1.0 and not n:  # the same line goes on
                drawn[-1] = Line(drawn[-1].y, drawn[-1].x, drawn[-1].text + part)
            else:
                drawn.append(Line(y, x, part))

    page.extract_text(visitor_text=visit)
    return [Line(ln.y, ln.x, " ".join(ln.text.split())) for ln in drawn if ln.text.strip()]


def paragraphs(pages: list[list[Line]]) -> list[str]:
    """Each page's lines, joined into paragraphs across lines and pages. A paragraph
    ends before a wider gap than the page's usual line spacing, a line indented past
    the usual margin or a list item, and after a line short for its page when the next
    line's first word would have fitted on it. Running heads and feet (a line drawn at
    the same place on several pages) and page numbers are left out."""
    out: list[str] = []
    current = ""
    running = _running(pages)
    for page in pages:
        lines = [
            ln
            for ln in page
            if not _FURNITURE.fullmatch(ln.text) and (round(ln.y), ln.text) not in running
        ]
        # The line spacing: the lower quartile of the gaps, the more part of them the
        # gaps between paragraphs' lines (all of them, where paragraphs have one line).
        spacing = _usual([a.y - b.y for a, b in itertools.pairwise(lines)], 1)
        # The usual left edge: where most lines start (headings may stand out of it).
        margin = Counter(round(ln.x) for ln in lines).most_common(1)[0][0] if lines else 0
        usual = _usual([len(ln.text) for ln in lines], 3)
        if lines and current.endswith(_ENDS) and not lines[0].text[:1].islower():
            current = _end(out, current)  # a page that begins with a new sentence
        for n, line in enumerate(lines):
            if n:
                gap = lines[n - 1].y - line.y
                # An indented line begins a paragraph, unless it goes on with a list
                # item (a hanging indent).
                indented = line.x > margin + INDENT and not _ITEM.match(current)
                if gap > spacing * GAP or gap < 0 or indented:
                    current = _end(out, current)
            if _ITEM.match(line.text):
                current = _end(out, current)
            current = _join(current, line.text)
            following = lines[n + 1].text if n + 1 < len(lines) else ""
            if _ended(line.text, following, usual) or _ITEM.match(following):
                current = _end(out, current)
    _end(out, current)
    return out


def _ended(line: str, following: str, usual: float) -> bool:
    """Whether a paragraph ends with ``line``: it is short for its page, and ends a
    sentence or left room for the next line's first word (which a line wrapped for
    want of room would not)."""
    if len(line) >= SHORT * usual or (line.endswith("-") and following[:1].islower()):
        return False  # a full line, or a word hyphenated across two
    if line.endswith(_ENDS) or not following:
        return True
    word = following.split(" ", 1)[0]
    return len(line) + 1 + len(word) <= usual


def _running(pages: list[list[Line]]) -> set[tuple[int, str]]:
    """Lines drawn with the same text at the same height on several pages: a running
    head or foot (a title, a chapter's name, a notice), not the text."""
    if len(pages) < 2:
        return set()
    counts: Counter[tuple[int, str]] = Counter()
    for page in pages:
        counts.update({(round(ln.y), ln.text) for ln in page})
    return {key for key, n in counts.items() if n >= min(3, len(pages))}


def _usual(values: list[float], quarter: int) -> float:
    """The ``quarter``th quartile of positive values (1: the lower, 3: the upper), 0
    if there are none."""
    kept = sorted(v for v in values if v > 0)
    return kept[min(len(kept) - 1, len(kept) * quarter // 4)] if kept else 0.0


def _join(current: str, line: str) -> str:
    if not current:
        return line
    if current.endswith("-") and current[-2:-1].isalpha() and line[:1].islower():
        return current[:-1] + line  # "distri-" + "bution"
    if _unspaced(current[-1]) and _unspaced(line[0]):
        return current + line  # Chinese and Japanese put no space between words
    return f"{current} {line}"


def _unspaced(ch: str) -> bool:
    return "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef"


def _end(out: list[str], current: str) -> str:
    if current:
        out.append(current)
    return ""
