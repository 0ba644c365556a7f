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
    article), as a hint for later checks; None when no single element holds it all."""
    doc = _parse(body)
    if doc is None:
        return None
    lines = [line for line in map(_squash, text.split("\n")) if line]  # every one must be held
    if not lines:
        return None
    holders = _holders(doc, lines)
    if not holders:
        return None
    best = holders[-1]  # document order: the deepest holder comes last
    if any(h not in best.iterancestors() for h in holders[:-1]):
        return None  # the text is held in two places: which one extraction reads is unclear
    path = doc.getroottree().getpath(best)
    return BodyHint(path, _digest(doc, best))


def _holders(doc: Any, lines: list[str]) -> list[Any]:
    """Elements whose text holds every line, walking down only into holders."""
    found = []
    stack = [doc]
    while stack:
        node = stack.pop()
        content = _squash(node.text_content())
        if not all(line in content for line in lines):
            continue
        found.append(node)
        stack.extend(c for c in reversed(node) if isinstance(c.tag, str))
    return found


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
