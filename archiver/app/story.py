"""A story's set-up in the store, before any check: its seeds, and its matcher's bank.

``load_seeds`` reads and validates a seeds directory (the seed articles, the
watchlist, the claims file and its labelled corpus) and writes nothing;
``import_seeds`` stores it. ``prepare_matching`` embeds the story's claims and
examples once, fits their probes once (both kept in the store), and writes the
bank file the extraction workers read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archiver.app.claimsfile import load_story
from archiver.app.seeds import SeedArticle, load_seed_articles, load_sources, seed_spec
from archiver.claims.matcher import MatchSpec
from archiver.claims.rules import Claim, claim_from_dict, claim_to_dict
from archiver.text.normalize import text_digest
from store.blobs import digest as raw_digest_of
from store.errors import UsageError
from store.models import CaptureRecord, NewVersion, SourceSpec, SourceUpdate
from store.repo import Store

if TYPE_CHECKING:  # numpy and the matcher's bank load only when a run matches claims
    from archiver.claims.bank import Bank, Example
    from archiver.claims.semantic import Embedder


@dataclass(frozen=True)
class Seeds:
    """A story's seeds, validated: seed articles (with their versions) and the watchlist."""

    articles: list[tuple[SeedArticle, NewVersion]]
    sources: list[SourceSpec]
    claims: tuple[Claim, ...] = ()
    examples: tuple[Example, ...] = ()  # the labelled corpus the claims file points to
    summary: str = ""  # the story in a few lines, as the claims file gives it


def load_seeds(seeds_dir: Path) -> Seeds:
    """Read and validate a seeds directory (raises ``ConfigError``); writes nothing."""
    if not seeds_dir.is_dir():
        raise UsageError(f"seeds directory {seeds_dir} does not exist")
    articles = [(a, a.version()) for a in load_seed_articles(seeds_dir)]
    claims_path = seeds_dir / "claims.yaml"
    story = load_story(claims_path) if claims_path.exists() else None
    return Seeds(
        articles,
        load_sources(seeds_dir / "sources.yaml"),
        story.claims if story else (),
        story.bank().examples if story else (),
        story.summary if story else "",
    )


@dataclass(frozen=True)
class Imported:
    """What ``import_seeds`` did: (label, version, created) for each seed article, and
    the claims that are new or rewritten (``claims_changed``), if any."""

    articles: list[tuple[str, int, bool]]
    claims_changed: str | None = None
    changed_ids: tuple[str, ...] = ()  # the claims named in ``claims_changed``


def import_seeds(store: Store, seeds: Seeds, now: datetime) -> Imported:
    """Store each seed article as a version of its ``seed`` source (a new one only when
    its text changed), add or update the watchlist, and load the claims and examples."""
    report = []
    for article, new in seeds.articles:
        source_id = store.add_source(seed_spec(article), now, update_existing=True)
        latest = store.latest_version(source_id)
        if latest is not None and latest.text_digest == text_digest(new.text):
            report.append((article.label, latest.number, False))
            continue
        capture = CaptureRecord(
            source_id=source_id,
            started_at=now,
            duration_ms=0,
            outcome="new_version",
            bytes=len(new.raw or b""),
            raw_digest=raw_digest_of(new.raw or b""),
        )
        update = SourceUpdate(next_check_at=None, last_checked_at=now, consecutive_failures=0)
        report.append((article.label, store.add_version(new, capture, update).number, True))
    for spec in seeds.sources:
        store.add_source(spec, now, update_existing=True)
    if not seeds.claims:
        return Imported(report)
    before = store.active_claims()
    store.load_claims([claim_to_dict(c) for c in seeds.claims], now, seeds.summary)
    store.load_examples([(e.claim, e.stance, e.text) for e in seeds.examples], now)
    after = store.active_claims()
    added, reworded = _changed(before, after)
    return Imported(report, claims_changed(before, after), (*added, *reworded))


def stored_claims(store: Store) -> tuple[Claim, ...]:
    """The active claims as the matcher takes them (the store keeps each as its dict):
    what a check, ``flags scan`` and the claims commands match against."""
    return tuple(claim_from_dict(data) for data in store.active_claims().values())


SCAN_HINT = "'claimwatch flags scan' matches the archive against them"


def claims_changed(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """After a re-import of the claims ({id: data} before and after), the claims that are
    new or rewritten ("new: a, b; changed: c"), or None. A check matches only new text,
    so the archive meets them only through a scan: ``flags scan`` (init says so), or
    serve's own after a SIGHUP. A first import changes nothing that was archived
    against other claims."""
    new, changed = _changed(before, after)
    named = [
        f"{what}: {', '.join(ids)}" for what, ids in (("new", new), ("changed", changed)) if ids
    ]
    return "; ".join(named) or None


def _changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The new claims and the rewritten ones (none after a first import)."""
    if not before:
        return [], []
    new = [c for c in after if c not in before]
    return new, [c for c in after if c in before and after[c] != before[c]]


def prepare_matching(
    store: Store, claims: tuple[Claim, ...], model: str | None, workdir: Path, now: datetime
) -> MatchSpec:
    """The semantic matcher the workers build for ``claims`` (``model``: a trained
    claims model, None for the shipped one): a bank file holding the story's examples,
    the vectors of every text the matcher compares with (claims, cues, examples) and
    the probes fitted from them, computed here once and kept in the store, not in
    every worker and every run."""
    from archiver.claims.bank import Bank, Example, with_background
    from archiver.claims.matcher import write_spec
    from archiver.claims.semantic import E5Embedder

    bank = with_background(
        Bank(tuple(Example(c, s, t, origin) for c, s, t, origin in store.examples()))
    )
    embedder = E5Embedder(cache=store)  # computes (and keeps) only what is new
    probes = _fitted_probes(store, bank, embedder, now)
    return write_spec(bank, claims, embedder, workdir / "bank.npz", model, probes)


def _fitted_probes(store: Store, bank: Bank, embedder: Embedder, now: datetime) -> bytes | None:
    """The story's probes, fitted once here and kept in the store until the examples
    change, so that no worker fits them again in every run (1.3 s of CPU each)."""
    from archiver.claims.probes import probes_to_bytes

    if not bank.examples:
        return None
    key = bank.probes_key(embedder.name)
    blob = store.cached("probes", key)
    if blob is None:
        blob = probes_to_bytes(bank.probes(embedder))
        store.save_cached("probes", key, blob, now)
    return blob
