"""Feeds and sitemaps: bytes in, entries out (pure; nothing here fetches).

``parse_feed`` reads RSS 0.9x/1.0 (RDF)/2.0 and Atom with feedparser, and
XML sitemaps (news sitemaps included) with lxml. ``canonical_url`` is the key
entries are deduplicated by: tracking parameters removed (courlan), host and
scheme normalised, fragment dropped.
"""

from __future__ import annotations

import calendar
import contextlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import courlan
import feedparser
from lxml import etree

from store.errors import FeedError

_SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
_NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
_BENIGN = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


@dataclass(frozen=True)
class FeedLimits:
    """What one poll may cost, whatever the feed's size: only the first ``max_bytes`` of
    the body are parsed (cut after the last whole entry), and only the first
    ``max_entries`` entries (feeds list the newest first) are kept."""

    max_bytes: int = 2 * 1024 * 1024
    max_entries: int = 500


@dataclass(frozen=True)
class Entry:
    url: str  # canonical
    title: str = ""
    published: str | None = None  # ISO 8601, UTC
    summary: str = ""


@dataclass(frozen=True)
class Feed:
    kind: str  # rss20, atom10, rss10, sitemap, ...
    title: str
    entries: tuple[Entry, ...]
    ttl_seconds: int | None = None  # the feed's own hint for how often to poll
    notes: tuple[str, ...] = ()  # what was recovered or left out (kept on the capture)

    def as_text(self) -> str:
        """The feed's archived text: one line per entry, in feed order."""
        return "\n".join(f"{e.title} <{e.url}>" if e.title else f"<{e.url}>" for e in self.entries)


def canonical_url(url: str) -> str:
    """The URL entries are deduplicated by; raises ``FeedError`` for non-http(s) URLs."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise FeedError(f"entry link {url!r} is not an http(s) URL")
    cleaned = courlan.normalize_url(urlunsplit(parts._replace(fragment="")), strict=False)
    return cleaned.split("#", 1)[0]


def parse_feed(body: bytes, base_url: str = "", limits: FeedLimits | None = None) -> Feed:
    """Entries of an RSS/Atom feed or an XML sitemap; ``FeedError`` if it is neither.

    A malformed feed whose entries feedparser recovered (one bare ``&``, a cut-off
    end) keeps them, with the reason in ``notes``; one with nothing recovered fails.
    """
    limits = limits or FeedLimits()
    if not body.strip():
        raise FeedError("the feed is empty")
    notes: list[str] = []
    head = body[:2048].lstrip().lower()
    sitemap = b"<urlset" in head or b"<sitemapindex" in head
    end = _window(body, sitemap, limits)
    if end < len(body):
        body = body[:end] + (b"</urlset>" if sitemap else b"")
        notes.append(
            "only the first entries of the feed were read (it is longer than a poll reads)"
        )
    feed = _parse_sitemap(body) if sitemap else _parse_rss(body, base_url)
    if len(feed.entries) > limits.max_entries:
        notes.append(f"only the first {limits.max_entries} of {len(feed.entries)} entries kept")
        feed = replace(feed, entries=feed.entries[: limits.max_entries])
    return replace(feed, notes=(*notes, *feed.notes))


def _window(body: bytes, sitemap: bool, limits: FeedLimits) -> int:
    """Where to cut the body: after the entry that ends past ``max_entries`` entries (a
    few spare for duplicates and links that are not http), or after the last whole
    entry within ``max_bytes``; the whole body if it is within both."""
    closers = (b"</url>",) if sitemap else (b"</item>", b"</entry>")
    closer = max(closers, key=lambda c: body.count(c, 0, 65536))
    end, count = 0, 0
    while count < limits.max_entries + 50:
        found = body.find(closer, end, limits.max_bytes)
        if found < 0:
            return len(body) if len(body) <= limits.max_bytes or end == 0 else end
        end, count = found + len(closer), count + 1
    return end


def _parse_rss(body: bytes, base_url: str) -> Feed:
    parsed = feedparser.parse(body, response_headers={"content-location": base_url})
    malformed = parsed.bozo and not isinstance(parsed.bozo_exception, _BENIGN)
    reason = str(parsed.bozo_exception).splitlines()[0] if parsed.bozo_exception else "unknown"
    if malformed and not parsed.get("version"):
        raise FeedError(f"malformed feed: {reason}")
    if not parsed.get("version"):
        raise FeedError("not an RSS or Atom feed (no feed element found)")
    entries = []
    seen = set()
    for item in parsed.entries:
        link = item.get("link") or next(
            (lk.get("href") for lk in item.get("links", []) if lk.get("href")), None
        )
        if not link:
            continue
        try:
            url = canonical_url(link)
        except FeedError:
            continue
        if url in seen:
            continue
        seen.add(url)
        stamp = item.get("published_parsed") or item.get("updated_parsed")
        published = (
            datetime.fromtimestamp(calendar.timegm(stamp), UTC).isoformat() if stamp else None
        )
        entries.append(
            Entry(url, _clean(item.get("title", "")), published, _clean(item.get("summary", "")))
        )
    notes: tuple[str, ...] = ()
    if malformed:
        if not entries:
            raise FeedError(f"malformed feed: {reason}")
        notes = (f"malformed feed, {len(entries)} entries recovered: {reason}",)
    title = _clean(parsed.feed.get("title", ""))
    return Feed(parsed.version, title, tuple(entries), _ttl(parsed), notes)


def _clean(text: str) -> str:
    """Feed titles and summaries may carry HTML; keep the words."""
    if "<" in text:
        with contextlib.suppress(etree.XMLSyntaxError, ValueError):
            text = etree.fromstring(f"<x>{text}</x>", etree.HTMLParser()).xpath("string()")
    return " ".join(text.split())


def _ttl(parsed: feedparser.FeedParserDict) -> int | None:
    feed = parsed.feed
    ttl = str(feed.get("ttl", "")).strip()
    if ttl.isdigit() and int(ttl) > 0:
        return int(ttl) * 60
    period = str(feed.get("sy_updateperiod", "")).strip().lower()
    seconds = {
        "hourly": 3600,
        "daily": 86400,
        "weekly": 604800,
        "monthly": 2592000,
        "yearly": 31536000,
    }
    if period in seconds:
        freq = str(feed.get("sy_updatefrequency", "1")).strip()
        return seconds[period] // max(1, int(freq) if freq.isdigit() else 1)
    return None


def _parse_sitemap(body: bytes) -> Feed:
    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise FeedError(f"malformed sitemap: {exc}") from None
    ns = {"s": _SITEMAP_NS, "n": _NEWS_NS}
    if etree.QName(root).localname == "sitemapindex":
        locs = root.xpath("s:sitemap/s:loc/text()", namespaces=ns)
        raise FeedError(
            f"a sitemap index ({len(locs)} sitemaps); add the sitemaps it lists as feeds instead"
        )
    entries = []
    seen = set()
    for node in root.xpath("s:url", namespaces=ns):
        loc = "".join(node.xpath("s:loc/text()", namespaces=ns)).strip()
        try:
            url = canonical_url(loc)
        except FeedError:
            continue
        if url in seen:
            continue
        seen.add(url)
        title = "".join(node.xpath("n:news/n:title/text()", namespaces=ns)).strip()
        date = "".join(
            node.xpath("n:news/n:publication_date/text()", namespaces=ns)
            or node.xpath("s:lastmod/text()", namespaces=ns)
        ).strip()
        entries.append(Entry(url, " ".join(title.split()), date or None, ""))
    kind = "news-sitemap" if root.xpath("//n:news", namespaces=ns) else "sitemap"
    return Feed(kind, "", tuple(entries))
