"""A feed's new entries: which become coverage sources, and why (pure).

``judge`` decides from an entry's title and summary: added when the feed has no
topic filter, when its topic matches, or (``match_claims``) when the text bears
on one of the story's claims; off topic otherwise. When only part of the topic
matches and the summary is short, it returns None: the article's own text
decides (``judge_text``), once the pipeline has fetched and extracted it.
``decision`` is the row the store records, with the new source's spec; an article on
the feed's own origin takes the feed URL's login, if it has one.
"""

from __future__ import annotations

from collections.abc import Sequence

from archiver.claims.rules import Claim, match
from archiver.claims.topic import Node, matches, positive_terms
from archiver.net.feeds import Entry
from archiver.net.login import lend_login
from store.models import EntryDecision, Source, SourceSpec

SHORT_SUMMARY = 200  # characters; a shorter summary may leave out what the topic needs


def judge(
    entry: Entry, topic: Node | None, feed_source: Source, claims: Sequence[Claim]
) -> tuple[str, str] | None:
    """("added" | "off_topic", why), or None when the article's text must decide."""
    text = f"{entry.title}\n{entry.summary}"
    if topic is None and not feed_source.match_claims:
        return "added", "the feed has no topic filter"
    if topic is not None and matches(topic, text):
        return "added", "topic matched in the title or summary"
    if feed_source.match_claims and claims:
        flags = match(text, claims)
        if flags:
            return "added", f"bears on claim {flags[0].claim}"
    partial = topic is not None and any(matches(t, text) for t in positive_terms(topic))
    if partial and len(entry.summary) < SHORT_SUMMARY:
        return None
    return "off_topic", "topic not matched in the title or summary"


def judge_text(topic: Node, body: str) -> tuple[str, str]:
    """The verdict from the article's extracted text."""
    if matches(topic, body):
        return "added", "topic matched in the article text"
    return "off_topic", "topic not matched in the article text"


def decision(entry: Entry, feed_source: Source, verdict: str, reason: str) -> EntryDecision:
    """The entry as the store records it; an added one carries its new source's spec."""
    spec = None
    if verdict == "added":
        spec = SourceSpec(
            url=lend_login(entry.url, feed_source.url),
            kind="article",
            origin="feed",
            found_by=feed_source.id,
            tags=(*feed_source.tags, "coverage"),
            entry={
                "title": entry.title,
                "published": entry.published,
                "summary": entry.summary[:500],
                "feed": feed_source.name,
            },
        )
    return EntryDecision(
        entry.url, entry.title, entry.published, entry.summary, verdict, reason, spec
    )
