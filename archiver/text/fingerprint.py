"""A cheap proof that a page's article did not change: hash only what the article is made of.

Most re-checks of a page find new bytes (a clock, a reader count, a rotated ad)
around the same article. A full extraction costs about 30 times a parse, so after
each full extraction we remember *where* the article was (``locate``): the one
element that holds every line of the extracted text, and, inside it, the elements
that gave the article nothing and are volatile by nature:

- **kind**: an element trafilatura drops for what it is, whatever its text (its tag,
  such as ``aside``, ``footer`` or ``time``, or a class or id such as an ad slot,
  "related" or "share" box), and whose text is not in the article;
- **volatile**: an element whose whole text normalization removes ("updated 5
  minutes ago", "1,204 comments") and which is not in the article.

At the next check we parse the page, find the element at that path and hash its
bytes with the page title (``fingerprint``), each skipped element reduced to a
marker: its tag and the attributes extraction reads (id, class, role, style...),
with its tail text kept. The same hash means the same article element, byte for
byte, apart from skipped elements that are still the same kind of element in the
same place, so extraction reads the same article: the check ends without
extracting.

The hint also records how many bytes a parse needed to close the article
element (``end``). The next check parses only that prefix and a slack (an eighth
more, to the next ``>``): whatever follows a closed element cannot change it, and
the chrome after the article (menus, "most read", footers, scripts) is often half
the page. The prefix is used only when it proves itself: the article element and
the title are closed, each followed by a node the parser saw after it. Otherwise
the whole page is parsed, as without ``end``.

Anything in doubt means a full extraction: no element holds all the text (then
there is no hint), the path finds nothing, a skipped element is missing, has
become a different kind of element, holds text normalization now keeps, or has
grown longer than the rest of the article (trafilatura keeps boilerplate that
would remove most of a page), or the hash differs. A new element anywhere in the
article changes the hash. tests/test_fingerprint.py checks over many pages and
edits, including ads, asides, counters and "updated N minutes ago" lines inside
the article, that whenever the fingerprint says "same", full extraction agrees.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice
from typing import Any, Literal, get_args

import lxml.etree

from archiver.text.normalize import NormalizeOptions, normalize

try:  # what trafilatura removes for its kind, whatever its text
    from trafilatura.settings import MANUALLY_CLEANED as _CLEANED_TAGS
    from trafilatura.xpaths import OVERALL_DISCARD_XPATH as _DISCARD_XPATHS
except ImportError:  # pragma: no cover - a trafilatura without these: tags alone
    _CLEANED_TAGS, _DISCARD_XPATHS = ["aside", "footer", "nav", "script", "style", "time"], []

Skip = Literal["kind", "volatile"]
SKIPS: tuple[Skip, ...] = get_args(Skip)
MAX_SKIPS = 64  # more volatile parts than this: the rest are hashed as they are
# The attributes trafilatura's discard rules read: a marker keeps them, so an element
# that changes what it is changes the hash.
KIND_ATTRIBUTES = (
    "id",
    "class",
    "role",
    "style",
    "aria-hidden",
    "hidden",
    "data-component",
    "data-lp-replacement-content",
)


@dataclass(frozen=True)
class BodyHint:
    path: str  # the article element's path in the parsed tree, e.g. /html/body/main/article
    digest: str  # SHA-256 of the element's bytes (skipped parts as markers) and the page title
    skip: tuple[tuple[str, Skip], ...] = field(default=())  # (path, why) inside the article
    end: int | None = None  # bytes a parse needed to close the article element

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "digest": self.digest}
        if self.skip:
            out["skip"] = [[path, why] for path, why in self.skip]
        if self.end is not None:
            out["end"] = self.end
        return out

    @staticmethod
    def from_dict(d: dict[str, Any] | None) -> BodyHint | None:
        if not d or "path" not in d or "digest" not in d:
            return None
        path, raw = str(d["path"]), d.get("skip") or []
        skip: list[tuple[str, Skip]] = []
        for item in raw if isinstance(raw, list) else [None]:
            if not (isinstance(item, list) and len(item) == 2 and item[1] in SKIPS):
                return None  # not a hint this code wrote: no shortcut
            if not str(item[0]).startswith(path + "/"):
                return None
            skip.append((str(item[0]), item[1]))
        end = d.get("end")
        end = end if isinstance(end, int) and not isinstance(end, bool) and end > 0 else None
        return BodyHint(path, str(d["digest"]), tuple(skip), end)


# A plain libxml2 HTML parse: lxml.html's element classes cost a Python lookup per
# element, a third of the time on a page with a large menu.
_PARSER = lxml.etree.HTMLParser(remove_comments=False)
_text = lxml.etree.XPath("string()")  # an element's text, as text_content() reads it


def _parse(body: bytes) -> Any | None:
    try:
        return lxml.etree.fromstring(body, _PARSER)
    except (lxml.etree.LxmlError, ValueError):
        return None


def _squash(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _title(doc: Any) -> str:
    return _title_text(doc.find(".//title"))


def _title_text(found: Any | None) -> str:
    return str(_text(found)) if found is not None else ""


def _closed(element: Any) -> bool:
    """Whether the parser saw a node after ``element`` and its tail: then the element
    was closed before it, and nothing later in the page can change either."""
    return element.getnext() is not None or any(
        a.getnext() is not None for a in element.iterancestors()
    )


_FIRST = re.compile(r"\[1\]")


def _end_of(body: bytes, path: str, step: int = 512) -> int | None:
    """How many bytes of ``body`` a parse reads before it closes the element at
    ``path``: fed a chunk at a time, the first chunk end after the element's end
    event. None when the parse never closes it (or fails)."""
    tag = path.rsplit("/", 1)[-1].split("[", 1)[0]
    want = _FIRST.sub("", path)  # while parsing, a first child has no later twin yet
    try:
        parser = lxml.etree.HTMLPullParser(events=("end",), tag=tag, remove_comments=False)
        for at in range(0, len(body), step):
            parser.feed(body[at : at + step])
            for _, element in parser.read_events():
                if _FIRST.sub("", element.getroottree().getpath(element)) == want:
                    return min(at + step, len(body))
    except (lxml.etree.LxmlError, ValueError):
        return None
    return None


def _parse_for(body: bytes, hint: BodyHint) -> tuple[Any, Any, str] | None:
    """The page parsed as far as the hint's article element needs, that element and the
    page title: a prefix when it proves enough (see the module docstring), else the
    whole page."""
    if hint.end is not None:
        cut = body.find(b">", hint.end + max(256, hint.end // 8)) + 1
        if 0 < cut < len(body):
            doc = _parse(body[:cut])
            if doc is not None:
                node = _element_at(doc, hint.path)
                title = doc.find(".//title")
                if node is not None and _closed(node) and title is not None and _closed(title):
                    return doc, node, _title_text(title)
    doc = _parse(body)
    if doc is None:
        return None
    node = _element_at(doc, hint.path)
    return None if node is None else (doc, node, _title(doc))


def _digest(title: str, node: Any) -> str:
    h = hashlib.sha256(lxml.etree.tostring(node, encoding="unicode", method="html").encode("utf-8"))
    h.update(b"\0" + title.encode("utf-8"))
    return h.hexdigest()


def _mark(element: Any, why: Skip) -> None:
    """Reduce a skipped element to its kind: tag and kind attributes; its tail stays."""
    kept = [(k, element.get(k)) for k in KIND_ATTRIBUTES if element.get(k) is not None]
    element.clear(keep_tail=True)
    for k, v in kept:
        element.set(k, v)
    element.text = why


@lru_cache(maxsize=4096)  # a site's pages share their paths
def _compiled(path: str) -> Any | None:
    try:
        return lxml.etree.XPath(path)
    except lxml.etree.XPathError:
        return None


def _element_at(doc: Any, path: str) -> Any | None:
    xpath = _compiled(path)
    if xpath is None:
        return None
    try:
        found = xpath(doc)
    except lxml.etree.XPathError:
        return None
    if not isinstance(found, list) or len(found) != 1:
        return None
    if not isinstance(getattr(found[0], "tag", None), str):
        return None
    return found[0]


def _skippable(node: Any, article: str, options: NormalizeOptions) -> Iterator[tuple[Any, Skip]]:
    """The outermost elements inside ``node`` that gave the article nothing and are
    volatile by nature (see the module docstring), in document order."""
    dropped = {e for xp in _DISCARD_XPATHS for e in xp(node)}  # held: stable proxies
    stack = list(reversed(node))
    while stack:
        element = stack.pop()
        if not isinstance(element.tag, str):
            continue
        text = _squash(str(_text(element)))
        if text and text in article:
            stack.extend(reversed(element))  # it (or part of it) is article text
            continue
        if element.tag.lower() in _CLEANED_TAGS or element in dropped:
            yield element, "kind"
        elif text and not normalize(text, options):
            yield element, "volatile"
        else:
            stack.extend(reversed(element))


def locate(body: bytes, text: str, options: NormalizeOptions | None = None) -> BodyHint | None:
    """The smallest element that holds every line of ``text`` (the extracted article,
    normalized with ``options``), with the volatile parts inside it to skip, as a hint
    for later checks; None when no single element holds it all, or when separate
    elements each hold it (which one extraction reads is unclear).

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
    tree = doc.getroottree()
    title = _title(doc)
    found = _skippable(best, " ".join(lines), options or NormalizeOptions())
    skip = list(islice(found, MAX_SKIPS))
    paths = tuple((tree.getpath(e), why) for e, why in skip)
    if _skipped_too_much(best, [e for e, _ in skip]):
        paths = ()
    for e, why in skip if paths else ():
        _mark(e, why)
    path = tree.getpath(best)
    return BodyHint(path, _digest(title, best), paths, _end_of(body, path))


def _skipped_too_much(node: Any, skipped: list[Any]) -> bool:
    """Whether the skipped parts hold more text than the rest of the article element:
    then trafilatura may keep them (it keeps boilerplate that would remove most of a
    page), so they are not safe to skip."""
    if not skipped:
        return False
    gone = sum(len(_text(e)) for e in skipped)
    return gone > len(_text(node)) - gone


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
    flat: str  # the text as _text() reads it, whitespace runs folded to one space
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
    starts: list[int] = []
    owners: list[Any] = []
    spans: dict[Any, tuple[int, int]] = {}
    open_: list[tuple[Any, int]] = []  # the elements started and not yet ended, and where
    size = 0
    space = True  # no leading space

    def add(piece: str, owner: Any) -> None:
        nonlocal size, space
        if not piece.isascii():
            piece = unicodedata.normalize("NFC", piece)
        folded = " ".join(piece.split())
        if piece[0].isspace() and not space:
            out.append(" ")
            size, space = size + 1, True
        if folded:
            starts.append(size)
            owners.append(owner)
            out.append(folded)
            size, space = size + len(folded), False
            if piece[-1].isspace():
                out.append(" ")
                size, space = size + 1, True

    # lxml walks the tree in C (no recursion: pages nest tens of thousands deep); the
    # stack of open elements gives each tail its parent without asking lxml
    for event, element in lxml.etree.iterwalk(doc, events=("start", "end", "comment", "pi")):
        if event == "start":
            open_.append((element, size))
            text = element.text
            if text:
                add(text, element)
            continue
        # an end; or a comment or PI: one event, no text of its own
        spans[element] = (open_.pop()[1] if event == "end" else size, size)
        if open_:  # not the root: its tail belongs to the element it is in
            tail = element.tail
            if tail:
                add(tail, open_[-1][0])
    return _Layout("".join(out), starts, owners, spans)


def fingerprint(body: bytes, hint: BodyHint, options: NormalizeOptions | None = None) -> str | None:
    """The hash of the article element at ``hint.path`` in this page, its skipped parts
    reduced to markers; None when anything is in doubt (see the module docstring)."""
    parsed = _parse_for(body, hint)
    if parsed is None:
        return None
    doc, node, title = parsed
    options = options or NormalizeOptions()
    skipped = []
    for path, why in hint.skip:
        element = _element_at(doc, path)
        if element is None or not any(a is node for a in element.iterancestors()):
            return None  # a skipped part is gone, or moved out of the article
        if why == "volatile":
            text = _squash(str(_text(element)))
            if not text or normalize(text, options):
                return None  # it now holds text the article would keep
        skipped.append(element)
    if _skipped_too_much(node, skipped):
        return None
    for element, (_, why) in zip(skipped, hint.skip, strict=True):
        _mark(element, why)
    return _digest(title, node)


def same_article(body: bytes, hint: BodyHint, options: NormalizeOptions | None = None) -> bool:
    """True only when the page's article element is byte-identical to the hinted one,
    apart from skipped parts that are still the same kind of element in the same place."""
    return fingerprint(body, hint, options) == hint.digest
