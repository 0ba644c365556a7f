"""A cheap proof that a page's article did not change: hash only the article element.

Most re-checks of a page find new bytes (a clock, a reader count, a rotated ad)
around the same article. A full extraction costs about 30 times a parse, so after
each full extraction we remember *where* the article was: the one element that
holds every line of the extracted text (``locate``). At the next check we parse
the page, find the element at that path and hash its bytes with the page title
(``fingerprint``). The same hash means the same article element, byte for byte,
so extraction would read the same article: the check ends without extracting.

Anything in doubt means a full extraction: no element holds all the text (then
there is no hint), the path finds nothing or the hash differs. The element's
serialized bytes include everything in it, markup too, so an edit anywhere in
the article changes the hash. tests/test_fingerprint.py checks over many pages
and edits that whenever the fingerprint says "same", full extraction agrees.
"""

from __future__ import annotations

import hashlib
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

import lxml.etree
import lxml.html


@dataclass(frozen=True)
class BodyHint:
    path: str  # the article element's path in the parsed tree, e.g. /html/body/main/article
    digest: str  # SHA-256 of the element's bytes and the page title

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "digest": self.digest}

    @staticmethod
    def from_dict(d: dict[str, Any] | None) -> BodyHint | None:
        if not d or "path" not in d or "digest" not in d:
            return None
        return BodyHint(str(d["path"]), str(d["digest"]))


def _parse(body: bytes) -> Any | None:
    try:
        return lxml.html.fromstring(body)
    except (lxml.etree.ParserError, ValueError):
        return None


def _squash(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _title(doc: Any) -> str:
    found = doc.find(".//title")
    return found.text_content() if found is not None else ""


def _digest(doc: Any, node: Any) -> str:
    h = hashlib.sha256(lxml.html.tostring(node, encoding="unicode").encode("utf-8"))
    h.update(b"\0" + _title(doc).encode("utf-8"))
    return h.hexdigest()


def locate(body: bytes, text: str) -> BodyHint | None:
    """The smallest element that holds every line of ``text`` (the extracted, normalized
    article), as a hint for later checks; None when no single element holds it all, or
    when separate elements each hold it (which one extraction reads is unclear).

    Close to linear in the page: the document's text is laid out once, whitespace
    folded, with each element's span in it. Every holder contains an occurrence of
    the longest line, so from each occurrence's element we search up its ancestors
    (holding is monotone upwards: a binary search) for the lowest holder."""
    doc = _parse(body)
    if doc is None:
        return None
    lines = [line for line in map(_squash, text.split("\n")) if line]  # every one must be held
    if not lines:
        return None
    page = _layout(doc)
    longest = max(lines, key=len)
    lowest: list[Any] = []
    for at in _occurrences(page.flat, longest, limit=20):
        if at < 0:
            return None  # too many places to choose from
        chain = [page.owner(at), *page.owner(at).iterancestors()]
        k = _first_true(len(chain), lambda i, chain=chain: page.holds(chain[i], lines))
        if k is not None and not any(chain[k] is h for h in lowest):
            lowest.append(chain[k])
    if not lowest:
        return None
    best = max(lowest, key=lambda e: sum(1 for _ in e.iterancestors()))
    above = [best, *best.iterancestors()]
    if any(not any(h is a for a in above) for h in lowest):
        return None  # held in two places that do not nest
    path = doc.getroottree().getpath(best)
    return BodyHint(path, _digest(doc, best))


def _occurrences(flat: str, line: str, limit: int) -> list[int]:
    """Where ``line`` starts in ``flat``; [-1] at the end when there are over ``limit``."""
    found: list[int] = []
    at = flat.find(line)
    while at >= 0:
        if len(found) == limit:
            return [*found, -1]
        found.append(at)
        at = flat.find(line, at + 1)
    return found


def _first_true(n: int, test: Any) -> int | None:
    """The smallest i in range(n) with test(i), for a test that stays true once true."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if test(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo if lo < n else None


@dataclass
class _Layout:
    flat: str  # the text as text_content() reads it, whitespace runs folded to one space
    starts: list[int]  # starts[i]: where the piece owned by owners[i] begins
    owners: list[Any]
    spans: dict[Any, tuple[int, int]]  # element -> its text's [start, end) in flat

    def owner(self, at: int) -> Any:
        return self.owners[bisect_right(self.starts, at) - 1]

    def holds(self, element: Any, lines: list[str]) -> bool:
        """Whether the element's text has every line: in order, one pass over its span;
        a line out of order is looked for in the whole span."""
        start, end = self.spans[element]
        at = start
        for line in lines:
            found = self.flat.find(line, at, end)
            if found >= 0:
                at = found + len(line)
            elif self.flat.find(line, start, end) < 0:
                return False
        return True


def _layout(doc: Any) -> _Layout:
    out: list[str] = []
    layout = _Layout("", [], [], {})
    size = 0
    space = True  # no leading space

    def add(piece: str | None, owner: Any) -> None:
        nonlocal size, space
        if not piece:
            return
        folded = " ".join(unicodedata.normalize("NFC", piece).split())
        if piece[:1].isspace() and not space:
            out.append(" ")
            size, space = size + 1, True
        if folded:
            layout.starts.append(size)
            layout.owners.append(owner)
            out.append(folded)
            size, space = size + len(folded), False
            if piece[-1:].isspace():
                out.append(" ")
                size, space = size + 1, True

    # An explicit stack: pages nest tens of thousands of elements deep.
    stack: list[tuple[Any, int]] = [(doc, -1)]
    while stack:
        element, began = stack.pop()
        if began >= 0:  # after its children: the span ends, the tail is the parent's
            layout.spans[element] = (began, size)
            parent = element.getparent()
            if element is not doc and parent is not None:
                add(element.tail, parent)
            continue
        stack.append((element, size))
        if isinstance(element.tag, str):
            add(element.text, element)
            stack.extend((c, -1) for c in reversed(element))
    layout.flat = "".join(out)
    return layout


def fingerprint(body: bytes, path: str) -> str | None:
    """The hash of the element at ``path`` in this page, or None if it is not there once."""
    doc = _parse(body)
    if doc is None:
        return None
    try:
        found = doc.getroottree().xpath(path)
    except lxml.etree.XPathError:
        return None
    if len(found) != 1 or not isinstance(getattr(found[0], "tag", None), str):
        return None
    return _digest(doc, found[0])


def same_article(body: bytes, hint: BodyHint) -> bool:
    """True only when the page's article element is byte-identical to the hinted one."""
    return fingerprint(body, hint.path) == hint.digest
