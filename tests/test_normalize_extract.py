"""Pure stages: decode, extract, normalize."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archiver.text.extract import decode, extract
from archiver.text.normalize import NormalizeOptions, normalize, text_digest
from store.errors import EmptyExtraction, UsageError
from tests.support import article_html

DIFF_PAGES = Path(__file__).parent / "data" / "diff"


def test_normalize_folds_whitespace_and_unicode_forms() -> None:
    composed = "Caf\u00e9  said\u00a0 no.\n\n\n  Second\tparagraph  "
    decomposed = "Cafe\u0301 said no.\r\nSecond paragraph"
    assert normalize(composed) == "Café said no.\nSecond paragraph"
    assert text_digest(normalize(composed)) == text_digest(normalize(decomposed))


def test_normalize_drops_invisible_and_control_characters() -> None:
    assert normalize("Me\u200bta\u200f said\x07 \x1b[2Jno\ufeff") == "Meta said [2Jno"


@pytest.mark.parametrize(
    "volatile",
    [
        "Updated 3 minutes ago",
        "posted 2 hours ago",
        "12,400 views",
        "Updated just now",
        "تم التحديث منذ 5 دقائق",
        "1٬200 مشاهدة",
    ],
)
def test_builtin_volatile_patterns_are_removed(volatile: str) -> None:
    assert normalize(f"Meta said no.\n{volatile}\nThe end.") == "Meta said no.\nThe end."


def test_source_ignore_patterns_apply_and_bad_ones_are_named() -> None:
    opts = NormalizeOptions(ignore=(r"Reading time: \d+ min",))
    assert normalize("Text. Reading time: 4 min", opts) == "Text."
    with pytest.raises(UsageError, match=r"ignore pattern '\(unclosed' is not a valid"):
        normalize("x", NormalizeOptions(ignore=("(unclosed",)))


@given(st.text())
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@pytest.mark.e2e
@given(st.text(alphabet=st.sampled_from(list("ab \t\n\r\u00a0\u3000\u2028\x0b\x1cé")), max_size=60))
def test_whitespace_is_folded_line_by_line(text: str) -> None:
    """Normalization folds runs of spaces in one pass over the text; the result is the
    line-by-line definition: each line's runs of spaces become one, lines are
    stripped, blank lines dropped."""
    out = normalize(text, NormalizeOptions(volatile=False))
    assert all(line and line == line.strip() for line in out.split("\n")) or out == ""
    assert not re.search(r"[^\S\n]{2}", out)
    words = [w for w in re.split(r"\s+", text) if w]
    assert re.split(r"\s+", out) == words or (not words and out == "")


def test_extract_reads_text_and_metadata() -> None:
    html = article_html(
        "Meta weighs a closed model",
        ["Meta is weighing whether to keep its next model closed, people familiar said."],
    )
    got = extract(html.encode(), "text/html", "utf-8", "http://127.0.0.1/a.html")
    assert got.title == "Meta weighs a closed model"
    assert got.authors == ("Rana Haddad",)
    assert got.published == "2025-07-15"
    assert got.site_name == "The Loopback Ledger"
    assert got.language == "en"
    assert "keep its next model closed" in got.text
    assert "All rights reserved" not in got.text and "Ten gadgets" not in got.text


def test_plain_text_is_taken_whole() -> None:
    body = "LLAMA 4 COMMUNITY LICENSE AGREEMENT\n\n1. License Rights and Redistribution."
    assert extract(body.encode(), "text/plain").text == body


@pytest.mark.parametrize(
    "body,reason",
    [
        (b"", "empty"),
        (b"<html><body><nav><a href='/'>Home</a></nav></body></html>", "no main text"),
    ],
)
def test_nothing_to_extract_says_why(body: bytes, reason: str) -> None:
    with pytest.raises(EmptyExtraction, match=reason):
        extract(body, "text/html")


def test_decode_prefers_valid_utf8_then_a_plausible_declared_charset() -> None:
    arabic = "قالت ميتا إن نموذجها القادم لن يُتاح مجانًا، في تحول واضح عن نهجها السابق."
    assert decode(arabic.encode("utf-8"), "iso-8859-1") == (arabic, "utf-8")
    text, enc = decode(arabic.encode("cp1256"), "iso-8859-1")
    assert (text, enc) == (arabic, "cp1256")
    latin = "Café déjà vu: a naïve résumé of the Zürich meeting, said the café owner."
    assert decode(latin.encode("latin-1"), "iso-8859-1") == (latin, "iso8859-1")


def test_teaser_patterns_leave_real_sentences_alone() -> None:
    text = (
        "Analysts read more into the figure than Meta intended.\nThe most read report was Meta's."
    )
    assert normalize(text) == text


# Each passage written for this test, in its language; every page is encoded in the
# charset named, then served undeclared or under a header that says utf-8.
CHARSET_PAGES = {
    "shift_jis": "メタ社は新しい言語モデルを公開すると発表した。同社によると、このモデルは研究者が自由に利用できるが、商用利用には別の条件が付く。",
    "euc-kr": "메타는 새로운 언어 모델을 공개한다고 발표했다. 회사 측은 연구자들이 이 모델을 자유롭게 쓸 수 있지만 상업적 이용에는 별도의 조건이 붙는다고 설명했다.",
    "gb18030": "元宇宙公司宣布将发布新的语言模型。该公司表示，研究人员可以免费使用这一模型，但商业用途需要遵守另外的条款。",
    "windows-1256": "أعلنت شركة ميتا أنها ستطرح نموذجا لغويا جديدا. وقالت الشركة إن الباحثين يمكنهم استخدامه مجانا، لكن الاستخدام التجاري يخضع لشروط أخرى.",
    "koi8-r": "Компания Meta объявила о выпуске новой языковой модели. По словам компании, исследователи смогут пользоваться ею бесплатно, однако для коммерческого использования действуют отдельные условия.",
}


@pytest.mark.parametrize("charset", sorted(CHARSET_PAGES))
@pytest.mark.parametrize("declared", [None, "utf-8"])
@pytest.mark.parametrize("scripts", [0, 20_000])
def test_undeclared_and_misdeclared_charsets_decode(
    charset: str, declared: str | None, scripts: int
) -> None:
    """A page's first kilobytes are often scripts: detection must read the text."""
    text = CHARSET_PAGES[charset]
    script = "<script>" + "var x = 1; " * scripts + "</script>"
    html = f"<html><head><title>t</title>{script}</head><body><article><p>{text}</p><p>{text}</p></article></body></html>"
    decoded, _encoding = decode(html.encode(charset), declared)
    assert text in decoded and "\ufffd" not in decoded


def test_text_that_is_mostly_replacement_characters_is_flagged() -> None:
    from archiver.app.worker import garbled

    assert garbled("Meta said " + "\ufffd" * 40 + " today.") is not None
    assert garbled("Meta said\ufffd today, and the rest of this sentence reads fine.") is None
    assert garbled("") is None


@pytest.mark.e2e
def test_a_short_article_element_does_not_hide_the_rest_of_the_story() -> None:
    """With MIN_EXTRACTED_SIZE=50 trafilatura took its first, short pass here and lost
    the article's own lead; at its default (250) it compares with its fallbacks and
    keeps both. 0 of 922 real pages keep under half of default trafilatura's text
    (docs/benchmarks.md, benchmarks/extract_settings.py)."""
    body = "".join(
        f"<p>{t}</p>"
        for t in [
            "The prison's director told the committee that the perimeter fence had not been replaced since it was built, and that two of its cameras had been out of service for most of the year.",
            "Inspectors who visited in the spring found that night shifts were often covered by a single officer, because overtime budgets had been cut twice in three years.",
            "The ministry said new fencing had been ordered and would be installed before the end of the year, along with a control room that watches every wing.",
            "Lawyers for two inmates argued in court that the conditions described in the statement showed the escape risk had been known to officials for a long time.",
            "A hearing on the case is set for next month, when the director is expected to give evidence in person.",
        ]
    )
    html = (
        "<html><head><title>Prison escape risk</title></head><body><header><nav>"
        "<a href='/'>Home</a> <a href='/news'>News</a></nav></header><article>"
        "<h1>Prison escape risk</h1><p>A senior official has said in a sworn statement that "
        "anyone determined enough could escape from the island's prison.</p><h3>Related</h3>"
        f"</article><div class='body-copy'>{body}</div><footer>All rights reserved.</footer>"
        "</body></html>"
    )
    text = extract(html.encode(), "text/html", "utf-8").text
    assert "said in a sworn statement" in text and "A hearing on the case" in text


_BYLINE_PAGE = """<html><head><meta charset="utf-8">
<title>Harbour cranes idle as dock strike enters day four - portwatch.example.net</title>
<meta name="author" content="desk"></head><body>
<h1>Harbour cranes idle as dock strike enters day four</h1>
<p class="byline">By Ingrid Solberg, March 3, 2024</p>
<div class="story"><p>Container ships queued outside the harbour on Sunday as the strike by crane
operators entered its fourth day, with no talks scheduled between the union and the port.</p>
<p>The port authority said forty vessels were waiting at anchor, twice the usual number.</p>
<p>Union officials said members would return only if the overtime rules were withdrawn.</p></div>
<footer><a rel="license" href="https://creativecommons.org/licenses/by-sa/4.0/">CC BY-SA</a>
<a href="/tag/strikes/">strikes</a> <a href="/category/ports/">Ports</a></footer>
</body></html>"""

_JSON_LD_PAGE = """<html lang="de"><head><meta charset="utf-8"><title>Bahn</title>
<meta name="twitter:site" content="@schienenblatt">
<script type="application/ld+json">{"@context": "https://schema.org", "@type": "NewsArticle",
"headline": "Nachtzug nach Wien fährt wieder täglich", "datePublished": "2023-12-10T06:00:00+01:00",
"author": {"@type": "Person", "name": "Lena Brandt"},
"publisher": {"@type": "Organization", "name": "Schienenblatt"}}</script></head><body>
<article><p>Der Nachtzug zwischen Berlin und Wien verkehrt ab dem Fahrplanwechsel wieder an allen
Tagen der Woche, nachdem er zwei Jahre lang nur dreimal wöchentlich unterwegs war.</p>
<p>Die Betreiber begründen den Schritt mit einer Auslastung von über neunzig Prozent im Sommer.</p>
<p>Neue Schlafwagen sollen im Laufe des kommenden Jahres auf der Strecke eingesetzt werden.</p>
</article></body></html>"""

_BARE_PAGE = """<html><head><meta name="twitter:site" content="@tidewatch"></head><body><div>
<p>Spring tides reached the highest mark recorded at the river gauge since the flood barrier
opened, the water agency reported on Tuesday evening after the second high tide of the day.</p>
<p>Roads along the embankment were closed for three hours while crews checked the walls.</p>
<p>The agency expects lower tides for the rest of the week as the wind turns to the east.</p>
</div></body></html>"""


@pytest.mark.parametrize(
    "html,url",
    [
        (
            article_html("Meta weighs a closed model", ["Meta is weighing its next model."] * 4),
            None,
        ),
        (_BYLINE_PAGE, "https://portwatch.example.net/2024/03/cranes"),
        (_JSON_LD_PAGE, "https://schienenblatt.example/nachtzug"),
        (_BARE_PAGE, "https://www.tides.example.org/gauge"),
        (_BARE_PAGE.replace("@tidewatch", ""), "https://www.tides.example.org/gauge"),
        *[(p.read_text(encoding="utf-8"), None) for p in sorted(DIFF_PAGES.glob("*/page.html"))],
    ],
)
def test_metadata_is_what_trafilatura_finds(html: str, url: str | None) -> None:
    """``extract`` runs trafilatura's metadata steps without categories, tags and licence
    (a quarter of an extraction's time): every field it keeps must be trafilatura's own."""
    import trafilatura
    from trafilatura.settings import Document

    from archiver.text.extract import _CONFIG

    theirs = trafilatura.bare_extraction(
        trafilatura.load_html(html), url=url, with_metadata=True, config=_CONFIG
    )
    ours = extract(html.encode(), "text/html", "utf-8", url)
    assert isinstance(theirs, Document) and theirs.text == ours.text
    assert (ours.title, ours.published, ours.site_name) == (
        theirs.title,
        theirs.date,
        theirs.sitename,
    )
    names = (theirs.author or "").replace(";", "|").split("|")
    assert ours.authors == tuple(n.strip() for n in names if n.strip())


def test_a_page_whose_metadata_cannot_be_read_keeps_its_article(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """trafilatura's metadata steps raise on some malformed pages (inside its own
    ``bare_extraction`` such a page was dropped whole): the article is kept, without
    the metadata."""
    from archiver.text import extract as stage

    def unreadable(_tree: object) -> str:
        raise ValueError("a date this reader cannot parse")

    monkeypatch.setattr(stage, "extract_title", unreadable)
    html = _BARE_PAGE.replace("@tidewatch", "")
    got = extract(html.encode(), "text/html", "utf-8", "https://www.tides.example.org/gauge")
    assert "highest mark recorded" in got.text
    assert (got.title, got.site_name, got.authors) == (None, None, ())
