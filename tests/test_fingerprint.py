"""The cheap unchanged check never misses a real change.

Over generated pages in several layouts and random sequences of edits, to the
chrome, to volatile parts inside the article (an inline ad, a "related" aside, an
"updated N minutes ago" line, a comment count) or to the article itself: whenever
the fingerprint says the article element is the same, a full extraction gives the
same text. And for boilerplate-only and volatile-only edits on pages with an
article element, the fingerprint does say "same" (the saving is real)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import lxml.etree
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.app.worker import extract_text
from archiver.text import fingerprint as fingerprint_module
from archiver.text.extract import ExtractOptions
from archiver.text.fingerprint import BodyHint, fingerprint, locate, same_article
from archiver.text.normalize import NormalizeOptions

SENTENCES = [
    "Meta said its next frontier model would keep its weights private.",
    "The company expects to spend as much as seventy billion dollars on data centres.",
    "Analysts said the change had been expected since the new lab was announced.",
    "Regulators in Brussels asked how the licence treats developers outside the company.",
    "قالت ميتا إن نموذجها القادم لن يُطرح مجانًا للمطورين.",
    "Zuckerberg told staff that openness would be decided case by case from now on.",
    "Llama downloads passed one billion according to a company blog post in March.",
    "The lab hired researchers from rival companies with unusually large offers.",
]
LAYOUTS = ["article", "story-body", "bare", "nested", "arabic"]


@dataclass
class Page:
    layout: str
    paragraphs: list[str]
    nav: list[str] = field(default_factory=lambda: ["Home", "Technology", "Markets", "Opinion"])
    readers: int = 1200
    footer: str = "© 2025 The Loopback Ledger"
    script: str = "window.dataLayer = [];"
    teaser: str = "Ten gadgets for the summer"
    quote: str = "Open source is not a charity, one investor said."
    # Volatile parts inside the article element (None: the page has no such part)
    ad: str | None = None  # an inline ad slot between paragraphs
    ad_class: str = "ad-inline"
    related: list[str] | None = None  # a "related" aside inside the article
    updated: str | None = None  # "Updated 5 minutes ago" under the headline
    updated_tag: str = "p"
    comments: str | None = None  # "12 comments" in the article's footer

    def html(self) -> str:
        paras = [f"<p>{p}</p>" for p in self.paragraphs]
        if self.ad is not None:
            ad = f"<div class='{self.ad_class}'><span>Sponsored</span> <a href='/x'>{self.ad}</a></div>"
            paras.insert(min(2, len(paras)), ad)
        if self.related is not None:
            links = "".join(
                f"<li><a href='/r/{i}'>{r}</a></li>" for i, r in enumerate(self.related)
            )
            paras.insert(min(4, len(paras)), f"<aside class='related'><ul>{links}</ul></aside>")
        if self.updated is not None:
            t = self.updated_tag
            paras.insert(0, f"<{t} class='dateline'>{self.updated}</{t}>")
        body = f"{''.join(paras)}<blockquote>{self.quote}</blockquote>"
        if self.comments is not None:
            body += f"<footer class='article-foot'><a href='#c'>{self.comments}</a></footer>"
        nav = " ".join(f"<a href='/{n.lower()}'>{n}</a>" for n in self.nav)
        # After the article, as on real pages: more than a parse of its prefix reads
        more = "".join(
            f"<li><a href='/s/{i}'>{self.teaser}, number {i}</a></li>" for i in range(24)
        )
        if self.layout == "article":
            main = f"<main><article><h1>Meta and open models</h1>{body}</article></main>"
        elif self.layout == "story-body":
            main = (
                f"<div id='content'><h1>Meta and open models</h1><div class='story-body'>{body}"
                f"</div><div class='share'>Shared {self.readers} times</div></div>"
            )
        elif self.layout == "nested":
            main = f"<div><div><section><div class='c'>{body}</div></section></div></div>"
        elif self.layout == "arabic":
            main = (
                f"<main><article dir='rtl'><h1>ميتا والنماذج المفتوحة</h1>{body}</article></main>"
            )
        else:
            main = f"<h1>Meta and open models</h1>{body}"
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>Meta and open models"
            f"</title><script>{self.script}</script></head><body><header><nav>{nav}</nav>"
            f"</header><div class='ad'>Advertisement</div>{main}<aside><h2>Most read</h2><ul>"
            f"<li>{self.teaser}</li>{more}</ul><p>{self.readers} people are reading now</p>"
            f"</aside><footer>{self.footer}<nav>{nav}</nav></footer></body></html>"
        )


def chrome_edit(page: Page, n: int) -> None:
    kind = n % 6
    if kind == 0:
        page.readers += 1 + n
    elif kind == 1:
        page.nav.append(f"Section {n}")
    elif kind == 2:
        page.footer = f"© {2025 + n % 3} The Loopback Ledger"
    elif kind == 3:
        page.script = f"window.dataLayer = [{n}];"
    elif kind == 4:
        page.teaser = f"Ten gadgets for the summer, part {n}"
    else:
        page.nav.reverse()


def article_edit(page: Page, n: int) -> None:
    kind = n % 7
    k = n % len(page.paragraphs)
    if kind == 0:
        page.paragraphs[k] = page.paragraphs[k].replace("said", "says", 1) + f" ({n})"
    elif kind == 1:
        page.paragraphs.insert(k, SENTENCES[n % len(SENTENCES)] + f" Item {n}.")
    elif kind == 2 and len(page.paragraphs) > 2:
        del page.paragraphs[k]
    elif kind == 3:
        page.paragraphs.append(f"Meta declined to comment on the {n} reports.")
    elif kind == 4:
        page.quote = f"Open source is not a charity, {n} investors said."
    elif kind == 5:  # a long paragraph at the end: past where the article ended before
        page.paragraphs.append(" ".join(SENTENCES[: 2 + n % 6]))
    else:
        page.paragraphs[k] = page.paragraphs[k].replace("billion", f"{n} billion", 1) + " Now."


ADS = [
    "Save 20% on cloud storage this week",
    "The laptop that engineers keep recommending, now in stock at every store near you",
    "Learn Python in 30 days",
    "",
]


def volatile_parts(page: Page, n: int) -> None:
    """Give the page its in-article volatile parts (a deterministic mix)."""
    page.ad = ADS[n % len(ADS)] if n % 5 else None
    page.related = [f"Related story {n % 7}", "Chips and power"] if n % 3 else None
    page.updated = f"Updated {n % 50 + 1} minutes ago" if n % 4 else None
    page.updated_tag = ("p", "span", "time")[n % 3]
    page.comments = f"{n % 900 + 1} comments" if n % 2 else None


def volatile_edit(page: Page, n: int) -> None:
    """What a volatile part does between two requests, including turning into real
    text or a different kind of element (which must never be skipped)."""
    kind = n % 9
    if kind == 0:
        page.ad = ADS[n % len(ADS)] + (f" {n}" if n % 2 else "")
    elif kind == 1:
        page.related = [f"Related story {n}", f"Another one, {n % 13} hours old"]
    elif kind == 2:
        page.updated = f"Updated {n % 59 + 1} minutes ago"
    elif kind == 3:
        page.comments = f"{n:,} comments"
    elif kind == 4:  # the dateline becomes news: extraction keeps it
        page.updated = f"Update: Meta says the licence will change in {n % 12 + 1} weeks."
    elif kind == 5:  # the ad slot is no longer an ad slot
        page.ad_class = "story-part"
    elif kind == 6:  # the ad swells to a wall of text
        page.ad = " ".join(SENTENCES) * 3
    elif kind == 7:  # a volatile part appears or disappears
        page.ad = None if page.ad is not None else "New offer"
    else:
        page.comments = "Be the first to comment on this story about Meta's licence"


def text_of(html: str, ignore: tuple[str, ...] = ()) -> str:
    body = html.encode()
    return extract_text(body, "text/html", "utf-8", "http://t/", ExtractOptions(), ignore)[1]


def parsed(body: bytes, hint: BodyHint) -> tuple[Any, Any]:
    """What the fingerprint parsed of ``body`` (a prefix or the whole page), and the
    article element in it."""
    found = fingerprint_module._parse_for(body, hint)
    assert found is not None
    return found[0], found[1]


EDITS = {"chrome": chrome_edit, "article": article_edit, "volatile": volatile_edit}
edits = st.lists(
    st.tuples(st.sampled_from(sorted(EDITS)), st.integers(0, 10_000)), min_size=1, max_size=6
)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(LAYOUTS),
    st.permutations(SENTENCES),
    st.none() | st.integers(0, 10_000),
    edits,
)
def test_same_fingerprint_means_same_text(
    layout: str,
    order: list[str],
    volatile: int | None,
    steps: list[tuple[str, int]],
) -> None:
    page = Page(layout, list(order[:5]))
    if volatile is not None:
        volatile_parts(page, volatile)
    html = page.html()
    text = text_of(html)
    hint = locate(html.encode(), text)
    for what, n in steps:
        new = copy.deepcopy(page)
        EDITS[what](new, n)
        new_html = new.html()
        new_text = text_of(new_html)
        if hint is not None and same_article(new_html.encode(), hint):
            assert new_text == text, f"fingerprint said same, text changed ({layout}, {what} {n})"
        page, html, text = new, new_html, new_text
        hint = locate(html.encode(), text)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(LAYOUTS), st.none() | st.integers(0, 10_000), edits)
def test_a_prefix_parse_gives_the_whole_page_answer(
    layout: str, volatile: int | None, steps: list[tuple[str, int]]
) -> None:
    """The fingerprint from a prefix of the page (the hint's ``end``) is always the one
    a parse of the whole page gives, and the prefix is used wherever it can be."""
    page = Page(layout, SENTENCES[:5])
    if volatile is not None:
        volatile_parts(page, volatile)
    html = page.html()
    hint = locate(html.encode(), text_of(html))
    if hint is None:
        return
    assert hint.end is not None
    prefix, _ = parsed(html.encode(), hint)
    assert layout == "bare" or prefix.find(".//footer/nav") is None  # the page's own footer
    whole = BodyHint(hint.path, hint.digest, hint.skip)
    for what, n in steps:
        EDITS[what](page, n)
        body = page.html().encode()
        assert fingerprint(body, hint) == fingerprint(body, whole), (layout, what, n)


def test_the_prefix_is_parsed_only_when_it_closes_the_article() -> None:
    page = Page("article", SENTENCES[:4])
    page.teaser = "A long teaser about chips and power " * 4  # a tail worth skipping
    html = page.html()
    hint = locate(html.encode(), text_of(html))
    assert hint is not None and hint.end is not None
    body = html.encode()
    doc, _ = parsed(body, hint)
    assert len(lxml.etree.tostring(doc)) < len(lxml.etree.tostring(lxml.etree.HTML(body))) - 1000
    # The article grows past the slack: the prefix ends inside it, so the whole page is
    # parsed, and the new paragraph is seen.
    page.paragraphs.append("Meta later said the next model would be open after all. " * 40)
    grown = page.html().encode()
    doc, node = parsed(grown, hint)
    assert node.getnext() is None and b"after all" in lxml.etree.tostring(node)
    assert doc.find(".//footer") is not None  # the whole page
    assert not same_article(grown, hint)
    # A small addition at the article's end lies within the prefix and changes the hash.
    page.paragraphs[-1] = "Meta declined to comment."
    assert not same_article(page.html().encode(), hint)


def test_a_title_the_prefix_does_not_hold_means_the_whole_page() -> None:
    """The hash covers the page title. When the first title comes after the article, or
    not at all, only the whole page can say which it is."""
    article = "<main><article><p>" + "Meta said its next model would stay closed. " * 5
    tail = "<aside>" + "<p>Most read: chips and power.</p>" * 40 + "</aside>"
    late = f"<html><body>{article}</p></article></main>{tail}<title>One</title></body></html>"
    hint = locate(late.encode(), "Meta said its next model would stay closed. " * 5)
    assert hint is not None and hint.end is not None
    assert same_article(late.encode(), hint)
    assert not same_article(late.replace("One", "Two").encode(), hint)


def test_a_hint_without_end_parses_the_whole_page() -> None:
    page = Page("article", SENTENCES[:4])
    html = page.html()
    hint = locate(html.encode(), text_of(html))
    assert hint is not None
    old = BodyHint.from_dict({k: v for k, v in hint.to_dict().items() if k != "end"})
    assert old is not None and old.end is None and same_article(html.encode(), old)
    for bad in (-1, 0, "12", True, 1.5):
        assert BodyHint.from_dict({**hint.to_dict(), "end": bad}) == old


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["article", "story-body", "arabic"]), st.integers(0, 10_000))
def test_chrome_edits_take_the_cheap_path(layout: str, n: int) -> None:
    page = Page(layout, SENTENCES[:4])
    html = page.html()
    hint = locate(html.encode(), text_of(html))
    assert hint is not None
    new = copy.deepcopy(page)
    chrome_edit(new, n)
    assert same_article(new.html().encode(), hint)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["article", "story-body", "arabic"]), st.integers(0, 10_000))
def test_volatile_parts_in_the_article_take_the_cheap_path(layout: str, n: int) -> None:
    """An ad that rotates, an aside whose links change, a relative time and a comment
    count that move: none of them costs a full extraction."""
    page = Page(layout, SENTENCES[:4])
    page.ad, page.related = ADS[0], ["Related story 1", "Chips and power"]
    page.updated, page.updated_tag, page.comments = "Updated 3 minutes ago", "p", "12 comments"
    html = page.html()
    hint = locate(html.encode(), text_of(html))
    assert hint is not None and {why for _, why in hint.skip} == {"kind", "volatile"}
    new = copy.deepcopy(page)
    new.ad = ADS[1 + n % 2]
    new.related = [f"Related story {n}", f"Story {n + 1}"]
    new.updated = f"Updated {n % 58 + 2} minutes ago"
    new.comments = f"{n + 13:,} comments"
    chrome_edit(new, n)
    assert text_of(new.html()) == text_of(html)
    assert same_article(new.html().encode(), hint)


def test_a_volatile_part_that_becomes_text_or_swells_is_doubt() -> None:
    page = Page("article", SENTENCES[:4])
    page.ad, page.updated = ADS[0], "Updated 3 minutes ago"
    html = page.html()
    hint = locate(html.encode(), text_of(html))
    assert hint is not None
    news = copy.deepcopy(page)
    news.updated = "Update: Meta says the licence will change."
    assert not same_article(news.html().encode(), hint)
    wall = copy.deepcopy(page)
    wall.ad = " ".join(SENTENCES) * 4
    assert not same_article(wall.html().encode(), hint)
    renamed = copy.deepcopy(page)
    renamed.ad_class = "story-part"
    assert not same_article(renamed.html().encode(), hint)
    gone = copy.deepcopy(page)
    gone.ad = None
    assert not same_article(gone.html().encode(), hint)


def test_the_source_ignore_patterns_decide_what_is_volatile() -> None:
    """A line only the source's own ignore pattern removes is volatile for that source,
    and only while the pattern still removes it."""
    page = Page("article", SENTENCES[:4])
    page.updated = "Visitor 17 of today"
    html = page.html()
    options = NormalizeOptions(ignore=(r"Visitor \d+ of today",))
    hint = locate(html.encode(), text_of(html, options.ignore), options)
    assert hint is not None and [why for _, why in hint.skip] == ["volatile"]
    page.updated = "Visitor 18 of today"
    assert same_article(page.html().encode(), hint, options)
    page.updated = "Visitor 18 of yesterday"
    assert not same_article(page.html().encode(), hint, options)
    plain = locate(html.encode(), text_of(html))  # without the pattern, the line is text
    assert plain is not None and plain.skip == ()


def test_the_hint_is_the_article_element() -> None:
    page = Page("article", SENTENCES[:3])
    html = page.html()
    hint = locate(html.encode(), text_of(html))
    assert hint is not None and hint.path == "/html/body/main/article"
    assert BodyHint.from_dict(hint.to_dict()) == hint


def test_split_text_hints_the_common_holder_and_repeated_text_none() -> None:
    """Text split over two sibling elements: the element holding both (chrome and all,
    so the cheap path rarely applies, but safely). Text found twice: no hint."""
    html = (
        "<html><body><div class='a'><p>Meta said its next model would stay closed.</p></div>"
        "<nav>Home Markets</nav><div class='b'><p>The lab hired forty researchers.</p></div>"
        "</body></html>"
    )
    hint = locate(
        html.encode(),
        "Meta said its next model would stay closed.\nThe lab hired forty researchers.",
    )
    assert hint is not None and hint.path == "/html/body"  # only the body holds both
    twice = "<html><body><p>Same words here.</p><p>Same words here.</p></body></html>"
    assert locate(twice.encode(), "Same words here.") is None


def test_missing_or_ambiguous_path_is_doubt() -> None:
    page = b"<html><body><p>x</p></body></html>"
    assert fingerprint(page, BodyHint("/html/body/main/article", "d")) is None
    assert fingerprint(b"", BodyHint("/html/body", "d")) is None
    assert fingerprint(page, BodyHint("not an xpath ((", "d")) is None
    assert fingerprint(page, BodyHint("/html/body", "d", (("/html/body/main", "kind"),))) is None


def test_a_hint_this_code_did_not_write_is_no_hint() -> None:
    ok = {"path": "/html/body/article", "digest": "d", "skip": [["/html/body/article/div", "kind"]]}
    assert BodyHint.from_dict(ok) == BodyHint(
        "/html/body/article", "d", (("/html/body/article/div", "kind"),)
    )
    assert BodyHint.from_dict({"path": "/a", "digest": "d"}) == BodyHint("/a", "d")
    for bad in ("x", [["/html/body/article/div", "other"]], [["/elsewhere/div", "kind"]], [1]):
        assert BodyHint.from_dict({**ok, "skip": bad}) is None


def test_text_around_comments_and_instructions_is_laid_out_whole() -> None:
    """The text after a comment or a processing instruction belongs to the element
    around it: a line split by one is still found, so the page still gets a hint."""
    html = (
        "<html><head><title>T</title></head><body><nav>Home</nav><article><p>Meta said"
        " <!-- ad slot --> its next model <?php echo 1 ?> would stay closed.</p></article>"
        "<footer>Footer</footer></body></html>"
    )
    hint = locate(html.encode(), "Meta said its next model would stay closed.")
    assert hint is not None and hint.path == "/html/body/article/p"
    assert same_article(html.replace("Home", "Start").encode(), hint)
