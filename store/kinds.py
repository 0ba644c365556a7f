"""Source kinds, declared once: what each kind of source is and what a check does with it.

Every rule that depends on a source's kind is an attribute here, and the rest of
the code asks the kind (``kind_of(source.kind).fingerprint``) instead of comparing
its name:

============  =======  =========  ===========  ========  ========  =======
kind          fetched  user adds  fingerprint  renders   coverage  entries
============  =======  =========  ===========  ========  ========  =======
page          yes      yes        yes          yes       no        no
article       yes      yes        yes          yes       yes       no
feed          yes      yes        no           no        no        yes
seed          no       no         no           no        no        no
============  =======  =========  ===========  ========  ========  =======

- **fetched**: checked on a schedule, by ``check`` and ``serve``. A seed article is
  imported from the seeds directory by ``init`` and never fetched.
- **user adds**: ``sources add`` and sources.yaml may declare it.
- **fingerprint**: the article-fingerprint shortcut applies (archiver/text/fingerprint.py).
- **renders**: its HTML is read for its text, so a selector (``--select``) and the
  browser (``--browser``) apply.
- **coverage**: its first version is matched against the claims as coverage, and
  when a feed found it, its schedule decays as it ages.
- **entries**: its text is a list of entries that become sources (a feed or a
  sitemap): it takes a topic filter and ``match_claims``, and its fetch accepts
  feed types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from store.errors import UsageError

KindName = Literal["page", "article", "feed", "seed"]
Origin = Literal["seed", "user", "feed"]  # who added a source: init, a user, or a feed poll

PDF_TYPES = ("application/pdf", "application/x-pdf")
# A body typed only as bytes: many servers send their PDFs so. It is read when it is a
# PDF (by its first bytes), refused otherwise (net.fetch).
UNTYPED = ("application/octet-stream", "binary/octet-stream")
PAGE_TYPES = ("text/html", "application/xhtml+xml", "text/plain", *PDF_TYPES, *UNTYPED)
FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
    "application/x-rss+xml",
    "application/feed+xml",
    "text/plain",  # some servers send feeds as text
)


@dataclass(frozen=True)
class SourceKind:
    name: KindName
    accepts: tuple[str, ...] = PAGE_TYPES  # the content types its fetch takes
    fetched: bool = True
    user_adds: bool = True
    fingerprint: bool = True
    renders: bool = True
    coverage: bool = False
    entries: bool = False


PAGE = SourceKind("page")
ARTICLE = SourceKind("article", coverage=True)
FEED = SourceKind("feed", accepts=FEED_TYPES, fingerprint=False, renders=False, entries=True)
SEED = SourceKind("seed", fetched=False, user_adds=False, fingerprint=False, renders=False)

KINDS: dict[str, SourceKind] = {k.name: k for k in (ARTICLE, PAGE, FEED, SEED)}
USER_KINDS: tuple[str, ...] = tuple(k.name for k in KINDS.values() if k.user_adds)
NOT_FETCHED: tuple[str, ...] = tuple(k.name for k in KINDS.values() if not k.fetched)
SCANNED: tuple[str, ...] = tuple(k.name for k in KINDS.values() if k.fetched and not k.entries)


def kind_of(name: str) -> SourceKind:
    """The kind called ``name``; a ``UsageError`` naming the kinds for any other name."""
    try:
        return KINDS[name]
    except KeyError:
        raise UsageError(f"unknown source kind {name!r}: use {', '.join(USER_KINDS)}") from None
