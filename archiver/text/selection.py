"""Selectors: the part of a page a user chose to watch, minus what they excluded (pure).

A source with a selector skips article extraction: its text is the text of the
elements the selector matches, in document order, with every element an
exclusion matches removed first, then normalized as usual. A selector is CSS
(``div.article p``) unless it starts like XPath (``/``, ``./`` or ``(``).
Title, language and date still come from the page (``<title>``/``og:title``,
``<html lang>``, htmldate), so a selected version looks like any other.

Selecting is an lxml parse and a tree walk, about a millisecond for a news
page: it is also the re-check shortcut for such sources (the pipeline compares
the selected text with the current version before any extraction).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import lxml.html
from cssselect import GenericTranslator, SelectorError
from lxml import etree

from archiver.text.extract import Extracted, decode
from store.errors import EmptyExtraction, SelectorMatchedNothing, UsageError

# Elements whose end is a line break in the selected text.
_BLOCKS = frozenset(
    "address article aside blockquote br dd div dl dt figcaption figure footer form h1 h2 "
    "h3 h4 h5 h6 header hr li main nav ol p pre section table td th tr ul".split()
)
_INVISIBLE = ("script", "style", "noscript", "template", "head")


@dataclass(frozen=True)
class Selector:
    select: str
    exclude: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"select": self.select, "exclude": list(self.exclude)}


def is_xpath(expression: str) -> bool:
    return expression.lstrip().startswith(("/", "./", "("))


@lru_cache(maxsize=256)
def compile_expression(expression: str) -> Callable[[Any], list[Any]]:
    """An XPath evaluator for a CSS or XPath expression; UsageError names a bad one."""
    text = expression.strip()
    if not text:
        raise UsageError("a selector cannot be empty")
    try:
        xpath = text if is_xpath(text) else GenericTranslator().css_to_xpath(text)
        return etree.XPath(xpath)
    except (SelectorError, etree.XPathSyntaxError) as exc:
        if is_xpath(text):
            raise UsageError(f"{text!r} is not a valid XPath ({exc})") from None
        raise UsageError(
            f"{text!r} is not a valid CSS selector ({exc}); an XPath starts with / or ./"
        ) from None


def check(selector: Selector) -> None:
    """Raise UsageError for an expression that can never be evaluated."""
    for expression in (selector.select, *selector.exclude):
        compile_expression(expression)


def select_text(html: str, selector: Selector) -> str:
    """The selected elements' text (lines at block boundaries), exclusions removed.
    ``SelectorMatchedNothing`` when the selector matches no element."""
    tree = _parse(html)
    return _text_of(_select(tree, selector), selector)


def extract_selected(body: bytes, charset: str | None, selector: Selector) -> Extracted:
    """Page bytes to an ``Extracted`` whose text is the selection."""
    text, encoding = decode(body, charset)
    tree = _parse(text)
    title = _first(tree, "//meta[@property='og:title']/@content") or _first(tree, "//title")
    language = _first(tree, "/html/@lang")
    try:
        from htmldate import find_date

        published = find_date(tree, extensive_search=False)
    except Exception:  # htmldate is best effort
        published = None
    selected = _text_of(_select(tree, selector), selector)
    return Extracted(
        text=selected,
        title=title,
        published=published,
        language=language.split("-")[0].lower() if language else None,
        encoding=encoding,
    )


def _parse(html: str) -> Any:
    try:
        tree = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        raise EmptyExtraction("the body is not parseable HTML") from None
    return tree


def _select(tree: Any, selector: Selector) -> list[Any]:
    found = [e for e in compile_expression(selector.select)(tree) if isinstance(e, etree._Element)]
    if not found:
        raise SelectorMatchedNothing(f"the selector {selector.select!r} matched nothing")
    for expression in selector.exclude:
        for element in compile_expression(expression)(tree):
            if isinstance(element, etree._Element) and element.getparent() is not None:
                element.drop_tree()  # its tail text stays
    # An element inside another selected one is already part of its text.
    chosen = set(found)
    return [e for e in found if not any(a in chosen for a in e.iterancestors())]


def _text_of(elements: Sequence[Any], selector: Selector) -> str:
    lines: list[str] = []
    for element in elements:
        if element.getparent() is None and element.tag != "html":
            continue  # dropped by an exclusion
        for node in element.iter(*_INVISIBLE):
            if node is not element and node.getparent() is not None:
                node.drop_tree()
        lines.append(_block_text(element))
    text = "\n".join(line for line in lines if line.strip())
    if not text.strip():
        raise SelectorMatchedNothing(
            f"the selector {selector.select!r} matched only elements without text"
        )
    return text


def _block_text(element: Any) -> str:
    """Text with a line break after each block element; iterative, so a page of
    thousands of nested elements cannot exhaust the stack."""
    parts: list[str] = []
    for event, node in etree.iterwalk(element, events=("start", "end")):
        if event == "start":
            if isinstance(node.tag, str) and node.text:
                parts.append(node.text)
            continue
        if isinstance(node.tag, str) and node.tag in _BLOCKS:
            parts.append("\n")
        if node is not element and node.tail:
            parts.append(node.tail)
    return "\n".join(" ".join(line.split()) for line in "".join(parts).split("\n"))


def _first(tree: Any, xpath: str) -> str | None:
    for found in tree.xpath(xpath):
        value = found if isinstance(found, str) else found.text_content()
        value = " ".join(str(value).split())
        if value:
            return value
    return None
