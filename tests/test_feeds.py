"""Related coverage: topic queries, feed and sitemap parsing, the decaying schedule,
and feeds end to end against a loopback server."""

from __future__ import annotations

from dataclasses import replace as dc_replace
from datetime import timedelta
from itertools import pairwise

import pytest
from pytest_httpserver import HTTPServer

from archiver import pipeline
from archiver.app import entries
from archiver.app.schedule import DecayPolicy, decay_after_change, decay_interval, plan_next
from archiver.claims.rules import Claim, Entity
from archiver.claims.topic import matches, parse
from archiver.net.feeds import Entry, FeedLimits, canonical_url, parse_feed
from archiver.net.fetch import FetchOptions, cache_hint
from store.errors import FeedError, SourceNotFound, UsageError
from store.models import Source, SourceSpec
from store.repo import Store
from tests.support import NOW, article_html

OPTIONS = pipeline.CheckOptions(
    fetch=FetchOptions(allow_private=True, host_delay=0, backoff_base=0.01, max_attempts=1),
    processes=0,
    claims=(),
)
H, D = 3600, 86400


# -- topic queries -------------------------------------------------------------------


@pytest.mark.parametrize(
    "query,text,expected",
    [
        ("llama", "Meta's Llama 4 licence", True),
        ("llama", "Llamas graze in the Andes", True),  # a word, in any form
        ('"open weights"', "Meta will release open weights", True),
        ('"open weights"', "weights that are open", False),
        ("meta llama", "Meta ships Llama", True),
        ("meta llama", "Meta ships glasses", False),
        ("meta OR ميتا", "قالت ميتا إنها", True),
        ("llama -cpp", "llama.cpp gets faster", False),
        ("llama NOT cpp", "Llama 4 is out", True),
        ('meta AND (llama OR "open source") NOT glasses', "Meta open source push", True),
        ('meta AND (llama OR "open source") NOT glasses', "Meta glasses are open source", False),
    ],
)
def test_topic_queries(query: str, text: str, expected: bool) -> None:
    assert matches(parse(query), text) is expected


@pytest.mark.parametrize(
    "query,message",
    [
        ("(meta", r"missing '\)'"),
        ('"open', "unbalanced quote"),
        ("meta OR", "expected a word"),
        ("", "empty"),
    ],
)
def test_bad_topic_queries_say_what_is_wrong(query: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(query)


# -- parsing -------------------------------------------------------------------------

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Loopback Tech</title><ttl>30</ttl>
{items}</channel></rss>"""
ITEM = "<item><title>{title}</title><link>{link}</link><description>{summary}</description><pubDate>Mon, 14 Jul 2025 09:00:00 GMT</pubDate></item>"
ATOM = """<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Atom side</title>
<entry><title>Meta keeps Llama closed</title><link href="{base}/atom-a.html?utm_source=atom"/><updated>2025-07-15T10:00:00Z</updated><summary>A Llama story.</summary></entry>
<entry><title>Gardening tips</title><link href="{base}/atom-b.html"/><updated>2025-07-15T11:00:00Z</updated></entry></feed>"""
RDF = """<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
<channel rdf:about="{base}/"><title>RDF side</title></channel>
<item rdf:about="{base}/rdf-a.html"><title>Llama licence questioned</title><link>{base}/rdf-a.html</link><description>Open source groups object.</description></item></rdf:RDF>"""
SITEMAP = """<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
<url><loc>{base}/sm-a.html</loc><news:news><news:publication><news:name>Ledger</news:name><news:language>en</news:language></news:publication><news:publication_date>2025-07-16</news:publication_date><news:title>Meta weighs closing Llama</news:title></news:news></url>
<url><loc>{base}/sm-b.html</loc><news:news><news:publication><news:name>Ledger</news:name><news:language>en</news:language></news:publication><news:publication_date>2025-07-16</news:publication_date><news:title>Weather this weekend</news:title></news:news></url></urlset>"""


def rss(*items: tuple[str, str, str]) -> str:
    return RSS.format(
        items="".join(ITEM.format(title=t, link=link, summary=s) for t, link, s in items)
    )


def test_formats_parse_to_the_same_entries() -> None:
    base = "http://127.0.0.1:1"
    feed = parse_feed(
        rss(("Meta and Llama", f"{base}/a.html?utm_campaign=x#top", "<p>Summary</p>")).encode()
    )
    assert (feed.kind, feed.ttl_seconds) == ("rss20", 1800)
    [entry] = feed.entries
    assert (entry.url, entry.title, entry.summary, entry.published) == (
        f"{base}/a.html",
        "Meta and Llama",
        "Summary",
        "2025-07-14T09:00:00+00:00",
    )
    assert [e.url for e in parse_feed(ATOM.format(base=base).encode()).entries] == [
        f"{base}/atom-a.html",
        f"{base}/atom-b.html",
    ]
    assert parse_feed(RDF.format(base=base).encode()).kind == "rss10"
    sitemap = parse_feed(SITEMAP.format(base=base).encode())
    assert (
        sitemap.kind == "news-sitemap" and sitemap.entries[0].title == "Meta weighs closing Llama"
    )


@pytest.mark.parametrize(
    "body,message",
    [
        (b"<rss version='2.0'><channel><item><title>cut off", "malformed feed"),
        (b"<html><body>Not a feed</body></html>", "not an RSS or Atom feed"),
        (
            b"<?xml version='1.0'?><sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'><sitemap><loc>http://x/s.xml</loc></sitemap></sitemapindex>",
            "sitemap index",
        ),
        (b"<?xml version='1.0'?><urlset><url><loc>x</url></urlset>", "malformed sitemap"),
    ],
)
def test_unreadable_feeds_are_clear_errors(body: bytes, message: str) -> None:
    with pytest.raises(FeedError, match=message):
        parse_feed(body)


def test_canonical_urls() -> None:
    assert (
        canonical_url("HTTP://Example.COM:80/a?utm_source=x&fbclid=y&id=3#c")
        == "http://example.com/a?id=3"
    )
    with pytest.raises(FeedError):
        canonical_url("javascript:alert(1)")


# -- the schedule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "age,expected",
    [
        (0, 15 * 60),
        (2 * H - 1, 15 * 60),
        (2 * H, H),
        (D - 1, H),
        (D, D),
        (7 * D - 1, D),
        (7 * D, 7 * D),
        (30 * D - 1, 7 * D),
        (30 * D, None),
    ],
)
def test_decay_interval(age: int, expected: int | None) -> None:
    assert decay_interval(age) == expected


@pytest.mark.parametrize(
    "age,new_age", [(H, 0), (5 * H, 0), (3 * D, 2 * H), (10 * D, D), (40 * D, 7 * D)]
)
def test_a_change_moves_the_decay_one_stage_back(age: int, new_age: int) -> None:
    now = NOW + timedelta(days=60)
    anchor = decay_after_change(now - timedelta(seconds=age), now)
    assert (now - anchor).total_seconds() == new_age


def test_plan_next() -> None:
    assert plan_next(now=NOW, interval=600, cron=None).next_check_at == NOW + timedelta(minutes=10)
    assert plan_next(now=NOW, interval=None, cron="0 7 * * *").next_check_at == NOW.replace(
        hour=7
    ) + timedelta(days=1)
    assert plan_next(now=NOW, interval=600, cron=None, hint=1800).next_check_at == NOW + timedelta(
        minutes=30
    )
    assert plan_next(
        now=NOW, interval=600, cron=None, hint=10 * D
    ).next_check_at == NOW + timedelta(days=1)
    aged = plan_next(now=NOW, interval=None, cron=None, coverage_from=NOW - timedelta(days=31))
    assert aged.retire and aged.next_check_at is None
    assert plan_next(
        now=NOW, interval=None, cron=None, coverage_from=NOW, policy=DecayPolicy()
    ).next_check_at == NOW + timedelta(minutes=15)
    assert cache_hint({"cache-control": "public, max-age=900"}, NOW) == 900
    assert cache_hint({"expires": "Mon, 14 Jul 2025 10:00:00 GMT"}, NOW) == 3600


# -- end to end --------------------------------------------------------------------------


def check_all(store: Store, minutes: int = 0) -> list[pipeline.CheckResult]:
    now = NOW + timedelta(minutes=minutes)
    return pipeline.check(store, store.due_sources(now), OPTIONS, clock=lambda: now)


def serve_articles(httpserver: HTTPServer, names: list[str]) -> None:
    for name in names:
        httpserver.expect_request(f"/{name}.html").respond_with_data(
            article_html(
                f"Story {name}",
                [
                    f"Meta said today that the {name} story about Llama is developing.",
                    "Analysts expect more news about the model this week.",
                ],
            ),
            content_type="text/html",
        )


class FeedPage:
    def __init__(self, body: str, content_type: str = "application/rss+xml"):
        self.body, self.content_type = body, content_type

    def __call__(self, _request):  # type: ignore[no-untyped-def]
        from werkzeug import Response

        return Response(self.body, content_type=self.content_type)


def test_feed_scenario_three_polls(store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    base = httpserver.url_for("").rstrip("/")
    serve_articles(httpserver, ["on1", "on2", "off1", "on3"])
    items = [
        (
            "Meta keeps Llama closed",
            f"{base}/on1.html?utm_source=rss",
            "Meta says its next Llama model will be closed.",
        ),
        ("Garden news", f"{base}/off1.html", "Roses and tulips for the spring."),
        (
            "Llama licence under fire",
            f"{base}/on2.html",
            "Open source groups say the Llama licence is not open.",
        ),
    ]
    feed = FeedPage(rss(*items))
    httpserver.expect_request("/feed.xml").respond_with_handler(feed)
    store.add_source(
        SourceSpec(url=f"{base}/feed.xml", kind="feed", label="news", topic="llama OR meta"), NOW
    )

    results = check_all(store)
    articles = {s.url: s for s in store.list_sources() if s.kind == "article"}
    assert set(articles) == {f"{base}/on1.html", f"{base}/on2.html"}
    for source in articles.values():
        assert (source.origin, source.found_by) == ("feed", store.get_source("news").id)
        assert source.options["entry"]["feed"] == "news"
        assert [v.number for v in store.versions(source.id)] == [1]
    assert sorted(r.outcome for r in results) == ["new_version"] * 3

    items.append(
        (
            "Meta keeps Llama closed (updated)",
            f"{base}/on1.html?utm_medium=social#x",
            "The same story again.",
        )
    )
    feed.body = rss(*items)  # a repeat of on1 with other tracking parameters
    check_all(store, 60)
    assert {s.url for s in store.list_sources() if s.kind == "article"} == set(articles)

    items.append(("Zuckerberg on Llama's future", f"{base}/on3.html", "Meta's chief on the model."))
    feed.body = rss(*items)
    check_all(store, 120)
    after = {s.url for s in store.list_sources() if s.kind == "article"}
    assert after - set(articles) == {f"{base}/on3.html"}
    assert store.versions(store.get_source(f"{base}/on3.html").id)


@pytest.mark.parametrize("fmt", ["atom", "rdf", "sitemap"])
def test_atom_rdf_and_news_sitemap(store: Store, httpserver: HTTPServer, fmt: str) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    base = httpserver.url_for("").rstrip("/")
    serve_articles(httpserver, ["atom-a", "atom-b", "rdf-a", "sm-a", "sm-b"])
    body = {"atom": ATOM, "rdf": RDF, "sitemap": SITEMAP}[fmt].format(base=base)
    httpserver.expect_request("/f.xml").respond_with_data(body, content_type="application/xml")
    store.add_source(SourceSpec(url=f"{base}/f.xml", kind="feed", topic="llama"), NOW)
    check_all(store)
    expected = {"atom": {"atom-a"}, "rdf": {"rdf-a"}, "sitemap": {"sm-a"}}[fmt]
    assert {s.url for s in store.list_sources() if s.kind == "article"} == {
        f"{base}/{n}.html" for n in expected
    }


def test_malformed_feed_fails_alone(store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/bad.xml").respond_with_data(
        "<rss version='2.0'><channel><item>oops", content_type="application/rss+xml"
    )
    serve_articles(httpserver, ["page"])
    store.add_source(SourceSpec(url=f"{base}/bad.xml", kind="feed", label="bad"), NOW)
    store.add_source(SourceSpec(url=f"{base}/page.html", label="page"), NOW)
    results = {r.source.name: r for r in check_all(store)}
    assert results["bad"].failed and results["bad"].error_class == "FeedError"
    assert "malformed feed" in (results["bad"].error or "")
    assert store.get_source("bad").consecutive_failures == 1
    assert results["page"].outcome == "new_version"
    assert [s for s in store.list_sources() if s.kind == "article"] == []


def test_a_nul_in_a_feeds_entries_is_stored_as_a_replacement_character(
    store: Store, httpserver: HTTPServer
) -> None:
    """PostgreSQL refuses a NUL in text, and one entry title holding one failed the
    whole feed there. Every text column stores it as U+FFFD, on both backends, and a
    lookup holding a NUL finds nothing instead of failing."""
    from sqlalchemy import select

    from store.schema import feed_entries

    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    base = httpserver.url_for("").rstrip("/")
    serve_articles(httpserver, ["nul"])
    body = rss(("Meta and Llama\x00 news", f"{base}/nul.html", "Llama\x00 summary"))
    httpserver.expect_request("/nul.xml").respond_with_data(
        body.replace("<channel>", "<channel><title>Wire\x00</title>", 1),
        content_type="application/rss+xml",
    )
    store.add_source(SourceSpec(url=f"{base}/nul.xml", kind="feed", label="wire"), NOW)
    results = {r.source.name: r for r in check_all(store)}
    assert not results["wire"].failed, results["wire"].error
    assert [s.url for s in store.list_sources() if s.kind == "article"] == [f"{base}/nul.html"]
    with store.reading() as conn:
        titles = conn.execute(select(feed_entries.c.title, feed_entries.c.summary)).all()
    assert [tuple(t) for t in titles] == [("Meta and Llama\ufffd news", "Llama\ufffd summary")]
    with pytest.raises(SourceNotFound):
        store.get_source("wire\x00")


def test_uncertain_entries_are_decided_on_the_article(store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    base = httpserver.url_for("").rstrip("/")
    serve_articles(httpserver, ["deep"])  # its text mentions both Meta and Llama
    httpserver.expect_request("/shallow.html").respond_with_data(
        article_html("Meta", ["Meta opened an office in Lisbon this week, hiring engineers."]),
        content_type="text/html",
    )
    feed = rss(
        ("Meta's week", f"{base}/deep.html", ""),
        ("Meta's office", f"{base}/shallow.html", ""),
        ("Tulips", f"{base}/t.html", ""),
    )
    httpserver.expect_request("/f.xml").respond_with_data(feed, content_type="application/rss+xml")
    store.add_source(
        SourceSpec(url=f"{base}/f.xml", kind="feed", label="f", topic="meta llama"), NOW
    )
    check_all(store)
    assert {s.url for s in store.list_sources() if s.kind == "article"} == {f"{base}/deep.html"}
    assert [
        r.path for r, _ in httpserver.log if r.path == "/t.html"
    ] == []  # no half match: not fetched


@pytest.mark.slow
def test_coverage_is_rechecked_on_a_decaying_schedule(store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    base = httpserver.url_for("").rstrip("/")
    serve_articles(httpserver, ["c"])
    httpserver.expect_request("/f.xml").respond_with_data(
        rss(("Meta Llama", f"{base}/c.html", "Meta Llama")), content_type="application/rss+xml"
    )
    store.add_source(
        SourceSpec(url=f"{base}/f.xml", kind="feed", label="f", interval_seconds=24 * H), NOW
    )
    checks = []
    for minute in range(0, 3 * 24 * 60 + 1, 5):  # three simulated days, a tick every 5 minutes
        for r in check_all(store, minute):
            if r.source.kind == "article":
                checks.append(minute)
    gaps = [b - a for a, b in pairwise(checks)]
    # every 15 minutes for 2 hours, hourly to a day, then daily
    assert gaps[:8] == [15] * 8
    assert set(gaps[8:30]) == {60}
    assert gaps[-2:] == [24 * 60, 24 * 60]


def test_a_feed_entry_pointing_at_loopback_is_refused_by_default(
    store: Store, httpserver: HTTPServer
) -> None:

    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    base = httpserver.url_for("").rstrip("/")
    serve_articles(httpserver, ["inside"])
    httpserver.expect_request("/f.xml").respond_with_data(
        rss(("Meta Llama", f"{base}/inside.html", "Meta Llama")), content_type="application/rss+xml"
    )
    # The user added this feed explicitly and allowed it to be local; its entries are not.
    store.add_source(
        SourceSpec(url=f"{base}/f.xml", kind="feed", label="f", allow_private=True), NOW
    )
    guarded = dc_replace(OPTIONS, fetch=dc_replace(OPTIONS.fetch, allow_private=False))
    results = pipeline.check(store, store.due_sources(NOW), guarded, clock=lambda: NOW)
    by_kind = {r.source.kind: r for r in results}
    assert by_kind["feed"].outcome == "new_version"
    assert by_kind["article"].failed and by_kind["article"].error_class == "BlockedAddress"
    assert [r.path for r, _ in httpserver.log if r.path == "/inside.html"] == []


# -- bounded and forgiving ------------------------------------------------------------


def test_a_bare_ampersand_keeps_the_recovered_entries() -> None:
    body = rss(
        ("Meta & Llama", "https://example.org/a.html", "Fish & chips."),
        ("Second", "https://example.org/b.html", "Fine."),
    ).replace("&amp;", "&")
    feed = parse_feed(body.encode())
    assert [e.url for e in feed.entries] == [
        "https://example.org/a.html",
        "https://example.org/b.html",
    ]
    assert len(feed.notes) == 1 and feed.notes[0].startswith("malformed feed, 2 entries recovered")


def big_rss(n: int, base: str = "https://example.org") -> bytes:
    items = "".join(
        f"<item><title>Story {i}</title><link>{base}/s/{i}.html</link></item>" for i in range(n)
    )
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>Big</title>{items}</channel></rss>".encode()


def test_a_huge_feed_is_read_a_window_at_a_time() -> None:
    feed = parse_feed(big_rss(100_000), limits=FeedLimits(max_entries=500))
    assert len(feed.entries) == 500 and feed.entries[499].title == "Story 499"
    assert feed.notes and "longer than a poll reads" in feed.notes[0]
    assert feed.as_text().count("\n") == 499
    small = parse_feed(big_rss(100), limits=FeedLimits(max_bytes=2000))
    assert 0 < len(small.entries) < 100 and small.notes  # cut after the last whole entry


def test_a_poll_creates_at_most_max_new_sources(store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    base = httpserver.url_for("").rstrip("/")
    for i in range(12):
        httpserver.expect_request(f"/s/{i}.html").respond_with_data(
            article_html(f"Story {i}", [f"Meta said story {i} is about Llama and its licence."]),
            content_type="text/html",
        )
    httpserver.expect_request("/big.xml").respond_with_data(
        big_rss(12, base), content_type="application/rss+xml"
    )
    store.add_source(SourceSpec(url=f"{base}/big.xml", kind="feed", label="big"), NOW)
    options = dc_replace(OPTIONS, max_new_per_poll=5)
    pipeline.check(store, store.due_sources(NOW), options, clock=lambda: NOW)
    articles = [s for s in store.list_sources() if s.kind == "article"]
    assert len(articles) == 5
    [capture] = store.captures(store.get_source("big").id)
    assert capture.outcome == "new_version"
    assert (
        capture.error_message
        == "7 new entries wait for the next poll (at most 5 new sources a poll)"
    )
    later = NOW + timedelta(days=2)
    feed = store.get_source("big")
    pipeline.check(store, [feed], options, clock=lambda: later)
    assert len([s for s in store.list_sources() if s.kind == "article"]) == 10


def _feed_source(topic: str | None, match_claims: bool = False) -> Source:
    options: dict[str, object] = {"match_claims": match_claims}
    if topic:
        options["topic"] = topic
    return Source(
        1, "https://news.example/feed", "feed", "news", ["press"], "user", None, None, None,
        options, None, None, None, None, None, 0, NOW, None,
    )  # fmt: skip


LIBRARY_CLAIM = Claim(
    "library-closes",
    (("en", "The city library will close in March."),),
    actors=(Entity("city library", ("library",)),),
    terms=("close",),
    supports=("library will close",),
)


@pytest.mark.parametrize(
    ("topic", "match_claims", "title", "summary", "verdict"),
    [
        (None, False, "Anything at all", "", ("added", "the feed has no topic filter")),
        ("llama AND meta", False, "Meta ships Llama 5", "", ("added", "topic matched in the title or summary")),
        ("llama AND meta", False, "Weather for Tuesday", "Rain.", ("off_topic", "topic not matched in the title or summary")),
        # half the topic and a short summary: the article must decide
        ("llama AND meta", False, "Llama herders meet", "A short note.", None),
        # half the topic, but a long summary that would have said it
        ("llama AND meta", False, "Llama herders meet", "x " * 150, ("off_topic", "topic not matched in the title or summary")),
        ("zebra", True, "The library will close in March", "", ("added", "bears on claim library-closes")),
        ("zebra", False, "The library will close in March", "", ("off_topic", "topic not matched in the title or summary")),
    ],
)  # fmt: skip
def test_an_entry_is_judged_by_its_title_and_summary_first(
    topic: str | None,
    match_claims: bool,
    title: str,
    summary: str,
    verdict: tuple[str, str] | None,
) -> None:
    source = _feed_source(topic, match_claims)
    entry = Entry("https://news.example/a", title, None, summary)
    node = parse(topic) if topic else None
    assert entries.judge(entry, node, source, (LIBRARY_CLAIM,)) == verdict


def test_an_added_entry_becomes_coverage_and_an_off_topic_one_does_not() -> None:
    source = _feed_source("llama")
    entry = Entry("https://news.example/a", "Llama", "2026-11-01T00:00:00Z", "s" * 900)
    added = entries.decision(entry, source, "added", "topic matched")
    assert added.spec is not None
    assert (added.spec.url, added.spec.origin, added.spec.found_by) == (entry.url, "feed", 1)
    assert added.spec.tags == ("press", "coverage")
    assert added.spec.entry is not None and len(added.spec.entry["summary"]) == 500
    assert entries.decision(entry, source, "off_topic", "no").spec is None
    assert entries.judge_text(parse("llama"), "All about a llama.")[0] == "added"
    assert entries.judge_text(parse("llama"), "All about alpacas.")[0] == "off_topic"
