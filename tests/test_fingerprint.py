"""The cheap unchanged check never misses a real change.

Over generated pages in several layouts and random sequences of edits, to the
chrome or to the article: whenever the fingerprint says the article element is
the same, a full extraction gives the same text. And for boilerplate-only edits
on pages with an article element, the fingerprint does say "same" (the saving
is real)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.extract import ExtractOptions
from archiver.fingerprint import BodyHint, fingerprint, locate, same_article
from archiver.worker import extract_text

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

    def html(self) -> str:
        paras = "".join(f"<p>{p}</p>" for p in self.paragraphs)
        body = f"{paras}<blockquote>{self.quote}</blockquote>"
        nav = " ".join(f"<a href='/{n.lower()}'>{n}</a>" for n in self.nav)
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
            f"<li>{self.teaser}</li></ul><p>{self.readers} people are reading now</p></aside>"
            f"<footer>{self.footer}</footer></body></html>"
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
    kind = n % 6
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
    else:
        page.paragraphs[k] = page.paragraphs[k].replace("billion", f"{n} billion", 1) + " Now."


def text_of(html: str) -> str:
    return extract_text(html.encode(), "text/html", "utf-8", "http://t/", ExtractOptions(), ())[1]


edits = st.lists(st.tuples(st.booleans(), st.integers(0, 10_000)), min_size=1, max_size=6)


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(LAYOUTS), st.permutations(SENTENCES), edits)
def test_same_fingerprint_means_same_text(layout: str, order: list[str], steps: list) -> None:  # type: ignore[type-arg]
    page = Page(layout, list(order[:5]))
    html = page.html()
    text = text_of(html)
    hint = locate(html.encode(), text)
    for in_article, n in steps:
        new = copy.deepcopy(page)
        (article_edit if in_article else chrome_edit)(new, n)
        new_html = new.html()
        new_text = text_of(new_html)
        if hint is not None and same_article(new_html.encode(), hint):
            assert new_text == text, f"fingerprint said same, text changed ({layout}, {n})"
        if in_article and new_text != text and hint is not None:
            assert not same_article(new_html.encode(), hint)
        page, html, text = new, new_html, new_text
        hint = locate(html.encode(), text)


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
    assert fingerprint(b"<html><body><p>x</p></body></html>", "/html/body/main/article") is None
    assert fingerprint(b"", "/html/body") is None
    assert fingerprint(b"<html><body><p>x</p></body></html>", "not an xpath ((") is None
