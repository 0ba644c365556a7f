"""Extraction: page bytes in, article text and metadata out (trafilatura).

``decode`` turns bytes into text even when the declared charset lies.
``extract`` returns an ``Extracted`` or raises ``EmptyExtraction`` with the
reason; it never returns ``None``. Plain-text bodies (a licence file, say)
are taken whole, and a PDF's text is read by ``archiver.text.pdf``. ``markup``
says which content types are parsed as HTML.
"""

from __future__ import annotations

import codecs
import contextlib
import re
from dataclasses import dataclass
from typing import Any

import charset_normalizer
import trafilatura
from htmldate import find_date
from trafilatura.settings import Document, set_date_params, use_config

from archiver.text.pdf import PDF, pdf_text
from store.errors import EmptyExtraction, PageTooLarge

try:  # trafilatura's metadata steps, to run only those whose fields claimwatch keeps
    from trafilatura.metadata import (
        META_URL,
        examine_meta,
        extract_author,
        extract_meta_json,
        extract_sitename,
        extract_title,
        extract_url,
    )

    _LEAN_METADATA = True
except ImportError:  # pragma: no cover - another trafilatura layout: its whole metadata
    _LEAN_METADATA = False

_CONFIG = use_config()
_CONFIG.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")  # signals do not work in pool workers
_CONFIG.set("DEFAULT", "MIN_EXTRACTED_SIZE", "250")  # trafilatura's own; see docs/benchmarks.md
_CONFIG.set("DEFAULT", "MIN_OUTPUT_SIZE", "10")


@dataclass(frozen=True)
class ExtractOptions:
    favor: str = "balanced"  # precision | recall | balanced
    include_tables: bool = True
    include_comments: bool = False
    # Extraction time grows faster than the page: a 10 MB page takes about a minute
    # and 400 MB. Larger HTML is refused (PageTooLarge) rather than stall a worker.
    max_html_bytes: int = 5 * 1024 * 1024


@dataclass(frozen=True)
class Extracted:
    text: str
    title: str | None = None
    authors: tuple[str, ...] = ()
    published: str | None = None
    updated: str | None = None
    site_name: str | None = None
    language: str | None = None
    encoding: str | None = None


def decode(body: bytes, declared: str | None = None) -> tuple[str, str]:
    """Decode a page, even when its declared charset lies.

    Valid UTF-8 is UTF-8 whatever the header says; a page declared UTF-8 with a
    few broken bytes is UTF-8 with replacement characters. Otherwise the charset
    declared in the header, then in a ``<meta>`` tag, is used if it decodes
    and charset-normalizer does not reject that reading as chaos; else
    charset-normalizer's best reading; else UTF-8 with replacement characters.
    """
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return body.decode("utf-16", "replace"), "utf-16"  # a truncated last unit: U+FFFD
    try:
        return body.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    meta = _meta_charset(body)
    if "utf-8" in (_codec_name(declared), _codec_name(meta)):
        # Said to be UTF-8 and nearly is: a few broken bytes become U+FFFD rather than
        # the whole page being read in a guessed single-byte charset. "Nearly" is counted
        # against the non-ASCII text, not the page: a page of scripts with a little
        # Shift_JIS text is not nearly UTF-8.
        text = body.decode("utf-8", "replace")
        broken = text.count("\ufffd")
        wide = sum(1 for ch in text if ord(ch) > 127)
        if broken <= max(2, wide // 50):
            return text, "utf-8"
    sample = _sample(body)
    for candidate in (declared, meta):
        name = _codec_name(candidate)
        if not name or name == "utf-8":
            continue
        # Plausible means charset-normalizer does not reject that reading as chaos.
        if charset_normalizer.from_bytes(sample, cp_isolation=[name]).best() is not None:
            try:
                return body.decode(name), name
            except UnicodeDecodeError:
                pass
    best = charset_normalizer.from_bytes(sample).best()
    if best is not None:
        name = _codec_name(best.encoding) or best.encoding
        try:
            return body.decode(name, "replace"), name
        except LookupError:
            pass
    return body.decode("utf-8", "replace"), "utf-8"


_WIDE = re.compile(rb"[\x80-\xff]+")


def _sample(body: bytes, size: int = 32 * 1024, context: int = 24) -> bytes:
    """The bytes a charset can be told from, at most ``size``: every run of non-ASCII
    bytes with a little ASCII either side (a Shift_JIS trail byte can be ASCII), in page
    order. A page's first kilobytes are often all scripts and markup, which is why a
    sample from the start, or chunks spread over the page, can miss the text."""
    spans: list[list[int]] = []
    total = 0
    for match in _WIDE.finditer(body):
        start, end = max(0, match.start() - context), min(len(body), match.end() + context)
        if spans and start <= spans[-1][1]:
            total += end - spans[-1][1]
            spans[-1][1] = end  # overlaps the last span: one stretch, nothing cut inside it
        else:
            spans.append([start, end])
            total += end - start
        if total >= size:
            break
    if not spans:
        return body[:size]
    return b"\n".join(body[start:end] for start, end in spans)


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)


def _meta_charset(body: bytes) -> str | None:
    match = _META_CHARSET.search(body[:4096])
    return match.group(1).decode("ascii") if match else None


def _codec_name(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return None


def markup(content_type: str | None) -> bool:
    """Whether a body of this type is parsed as HTML (unknown types are): not plain
    text, not a PDF. Selectors, app-shell checks and the article's location in the
    page apply only to markup."""
    return content_type not in ("text/plain", PDF)


def refuse_large_html(body: bytes, options: ExtractOptions) -> None:
    """``PageTooLarge`` for HTML over the limit: parsing it would stall a worker."""
    if len(body) > options.max_html_bytes:
        raise PageTooLarge(
            f"{len(body)} bytes of HTML is over the extraction limit of {options.max_html_bytes}"
        )


def extract(
    body: bytes,
    content_type: str | None = None,
    charset: str | None = None,
    url: str | None = None,
    options: ExtractOptions | None = None,
) -> Extracted:
    options = options or ExtractOptions()
    if not body.strip():
        raise EmptyExtraction("the body is empty")
    if content_type == PDF:
        document = pdf_text(body)
        return Extracted(text=document.text, title=document.title)
    if content_type != "text/plain":
        refuse_large_html(body, options)
    text, encoding = decode(body, charset)
    if content_type == "text/plain":
        if not text.strip():
            raise EmptyExtraction("the text body is blank")
        return Extracted(text=text, encoding=encoding)
    tree = trafilatura.load_html(text)
    if tree is None:
        raise EmptyExtraction("the body is not parseable HTML")
    language = _html_lang(tree)
    try:
        updated = find_date(tree, original_date=False, extensive_search=False)
    except Exception:  # htmldate is best effort
        updated = None
    meta: Any = None
    if _LEAN_METADATA:
        try:
            meta = metadata(tree, url)
        except (TypeError, ValueError):  # a page trafilatura's metadata steps cannot read:
            meta = Document()  # its article without metadata, rather than no article
    doc = trafilatura.bare_extraction(
        tree,
        url=url,
        with_metadata=meta is None,
        include_comments=options.include_comments,
        include_tables=options.include_tables,
        favor_precision=options.favor == "precision",
        favor_recall=options.favor == "recall",
        config=_CONFIG,
    )
    body_text = getattr(doc, "text", None) if doc is not None else None
    if not body_text or not body_text.strip():
        raise EmptyExtraction("trafilatura found no main text in the page")
    meta = doc if meta is None else meta
    published = getattr(meta, "date", None)
    return Extracted(
        text=body_text,
        title=getattr(meta, "title", None),
        authors=_authors(getattr(meta, "author", None)),
        published=published,
        updated=updated if updated and updated != published else None,
        site_name=getattr(meta, "sitename", None),
        language=language or getattr(doc, "language", None),
        encoding=encoding,
    )


def metadata(tree: Any, url: str | None = None) -> Document:
    """The title, author, date and site name of a parsed page, as trafilatura's
    ``extract_metadata`` finds them, without its categories, tags and licence, which
    claimwatch never shows: those two steps read every link of the page's chrome
    and took 4.2 of its 4.7 ms a page, a quarter of a full extraction (see
    docs/benchmarks.md). The same steps in the same order; tests/test_normalize_extract.py
    checks the fields against trafilatura's own on varied pages."""
    meta = examine_meta(tree)
    if meta.author and " " not in meta.author:
        meta.author = None  # a bare handle is not a byline
    with contextlib.suppress(Exception):  # trafilatura's JSON-LD reader is best effort too
        meta = extract_meta_json(tree, meta)
    if not meta.title:
        meta.title = extract_title(tree)
    if not meta.author:
        meta.author = extract_author(tree)
    if not meta.url:
        meta.url = extract_url(tree, url)
    dates = set_date_params(_CONFIG.getboolean("DEFAULT", "EXTENSIVE_DATE_SEARCH"))
    meta.date = find_date(tree, **dates, url=meta.url)
    if not meta.sitename:
        meta.sitename = extract_sitename(tree)
    if meta.sitename:
        meta.sitename = meta.sitename.lstrip("@")
        if meta.sitename and "." not in meta.sitename and not meta.sitename[0].isupper():
            meta.sitename = meta.sitename.title()
    elif meta.url and (found := META_URL.match(meta.url)):
        meta.sitename = found[1]
    meta.clean_and_trim()
    return meta


def _html_lang(tree: Any) -> str | None:
    root = tree.getroottree().getroot() if hasattr(tree, "getroottree") else tree
    lang = root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang")
    return lang.strip().split("-")[0].lower() if lang and lang.strip() else None


def _authors(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(a.strip() for a in value.replace(";", "|").split("|") if a.strip())
