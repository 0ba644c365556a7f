"""The claims aggregate: the story's claims, the flags raised against them, the
reviewer's verdicts, the examples the matcher learns from, and cached sentence vectors.

Functions take an open connection; ``Store`` is the facade. A check's flags are written
with their version by ``store.writes.Batch``; the reviewer's (``add``) and a scan's
(``add_found``) here.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from store.db import among, insert_ignoring_duplicates, insert_replacing, narrow, older
from store.errors import NotFoundError
from store.models import ADDED, ClaimRow, FlagFilter, FlagRecord, StoredFlag, mask_url
from store.schema import (
    claim_examples,
    claims,
    flags,
    matcher_cache,
    schema_time,
    sentence_vectors,
    sources,
    story,
)
from store.schema import versions as versions_t
from store.writes import evidence_key, flag_row, rejected_among

Example = tuple[str | None, str | None, str, str]  # claim, stance, text, origin


def load(
    conn: Connection, rows: Sequence[dict[str, Any]], now: datetime, summary: str = ""
) -> None:
    """Make ``rows`` (plain claim dicts, in the claims file's order) the active claims,
    and ``summary`` the story's; other claims become inactive. Claims are never
    deleted: their flags keep pointing at them. Rows are written insert-or-replace, so
    two workers reloading one claims file at once (a SIGHUP to each) both succeed."""
    conn.execute(update(claims).values(active=0))
    conn.execute(insert_replacing(conn, story).values(id=1, summary=summary, loaded_at=now))
    for position, row in enumerate(rows):
        texts = [text for _lang, text in row["statements"]]
        values = {
            "en": texts[0],  # the claim in its first language (column kept from 0003)
            "ar": texts[1] if len(texts) > 1 else "",
            "data": row,
            "active": 1,
            "loaded_at": now,
            "position": position,
        }
        conn.execute(insert_replacing(conn, claims).values(id=row["id"], **values))


def summary(conn: Connection) -> str:
    """The story's summary as its claims file last gave it ("" when it gives none)."""
    return conn.execute(select(story.c.summary)).scalar() or ""


# The claims file's order (claims loaded before positions were kept come after, by when
# they were loaded).
_FILE_ORDER = (claims.c.position.is_(None), claims.c.position, claims.c.loaded_at, claims.c.id)


def exists(conn: Connection, claim_id: str, active_only: bool = False) -> bool:
    query = select(claims.c.id).where(claims.c.id == claim_id)
    if active_only:
        query = query.where(claims.c.active == 1)
    return conn.execute(query).first() is not None


def active(conn: Connection) -> dict[str, dict[str, Any]]:
    """The active claims, id -> the claim as its dict, in the claims file's order,
    counting no flag: what the matcher and a form's list of claims need."""
    query = select(claims.c.id, claims.c.data).where(claims.c.active == 1)
    return {r.id: r.data for r in conn.execute(query.order_by(*_FILE_ORDER))}


def listing(conn: Connection, active_only: bool) -> list[ClaimRow]:
    """Claims with their flag counts by stance and the time of the latest flag, as the
    reviewer left them: a rejected flag does not count, a confirmed one counts under
    the stance the reviewer gave (as on the web view's story page). A flag raised by a
    sentence an edit removed counts as removed, not under its stance: the page no
    longer says it."""
    stance = func.coalesce(flags.c.verdict_stance, flags.c.stance).label("stance")
    counts = (
        select(
            flags.c.claim_id,
            stance,
            flags.c.removed,
            func.count().label("n"),
            func.max(flags.c.created_at).label("latest"),
        )
        .where(or_(flags.c.verdict.is_(None), flags.c.verdict != "rejected"))
        .group_by(flags.c.claim_id, stance, flags.c.removed)
    )
    stats: dict[str, dict[str, Any]] = {}
    for r in conn.execute(counts).mappings():
        entry = stats.setdefault(r["claim_id"], {"latest": None})
        key = "removed" if r["removed"] else r["stance"]
        entry[key] = entry.get(key, 0) + r["n"]
        latest = schema_time(r["latest"])
        if latest and (entry["latest"] is None or latest > entry["latest"]):
            entry["latest"] = latest
    # Active claims first, each kind in the claims file's order (claims loaded before
    # positions were kept come after, by when they were loaded).
    query = select(claims).order_by(claims.c.active.desc(), *_FILE_ORDER)
    if active_only:
        query = query.where(claims.c.active == 1)
    return [
        ClaimRow(
            id=r["id"],
            first=r["en"],
            second=r["ar"],
            data=r["data"],
            active=bool(r["active"]),
            supports=stats.get(r["id"], {}).get("supports", 0),
            contradicts=stats.get(r["id"], {}).get("contradicts", 0),
            mentions=stats.get(r["id"], {}).get("mentions", 0),
            removed=stats.get(r["id"], {}).get("removed", 0),
            latest=stats.get(r["id"], {}).get("latest"),
        )
        for r in conn.execute(query).mappings().all()
    ]


def flag_listing(conn: Connection, which: FlagFilter) -> list[StoredFlag]:
    """The flags ``which`` picks, newest first, with their source and version."""
    query = (
        select(flags, sources.c.label, sources.c.url, versions_t.c.number, versions_t.c.title)
        .join(sources, sources.c.id == flags.c.source_id)
        .join(versions_t, versions_t.c.id == flags.c.version_id)
        .where(flags.c.score >= which.min_score)
        .order_by(flags.c.created_at.desc(), flags.c.id.desc())
        .limit(which.limit)
    )
    query = narrow(
        query,
        (which.claim_id, flags.c.claim_id, operator.eq),
        (which.stance, flags.c.stance, operator.eq),
        (which.since, flags.c.created_at, operator.ge),
        (which.source_id, flags.c.source_id, operator.eq),
        (which.ids, flags.c.id, among),
        (which.before, (flags.c.created_at, flags.c.id), older),
    )
    if which.unreviewed:
        query = query.where(flags.c.verdict.is_(None))
    if which.removed is not None:
        query = query.where(flags.c.removed == int(which.removed))
    return [
        StoredFlag(
            id=r["id"],
            claim_id=r["claim_id"],
            stance=r["stance"],
            score=r["score"],
            evidence=r["evidence"],
            reasons=r["reasons"],
            status=r["status"],
            created_at=r["created_at"],
            source_id=r["source_id"],
            source_name=r["label"] or mask_url(r["url"]),
            source_url=mask_url(r["url"]),
            version=r["number"],
            title=r["title"],
            change_id=r["change_id"],
            verdict=r["verdict"],
            verdict_stance=r["verdict_stance"],
            removed=bool(r["removed"]),
        )
        for r in conn.execute(query).mappings().all()
    ]


def review(
    conn: Connection, flag_id: int, verdict: str, now: datetime, stance: str | None
) -> StoredFlag:
    """Record a verdict (confirmed | rejected) on a flag, and keep the flag's evidence
    as an example for the matcher: confirmed, with its (possibly corrected) stance;
    rejected, as a near miss. Reviewing again replaces the earlier verdict."""
    found = flag_listing(conn, FlagFilter(ids=(flag_id,)))
    if not found:
        raise NotFoundError(f"no flag {flag_id}; see 'claimwatch flags'")
    flag = found[0]
    stance = stance or flag.stance if verdict == "confirmed" else None
    conn.execute(
        update(flags)
        .where(flags.c.id == flag_id)
        .values(
            verdict=verdict,
            verdict_stance=stance,
            reviewed_at=now,
            status="reviewed",
            evidence_digest=evidence_key(flag.evidence),
        )
    )
    conn.execute(delete(claim_examples).where(claim_examples.c.flag_id == flag_id))
    conn.execute(
        insert(claim_examples).values(
            claim_id=flag.claim_id if verdict == "confirmed" else None,
            stance=stance,
            text=flag.evidence,
            origin="verdict",
            flag_id=flag_id,
            created_at=now,
        )
    )
    return flag_listing(conn, FlagFilter(ids=(flag_id,)))[0]


def add(
    conn: Connection,
    source_id: int,
    version_id: int,
    claim_id: str,
    stance: str,
    evidence: str,
    now: datetime,
) -> tuple[StoredFlag, int]:
    """A flag the reviewer adds, for a sentence the matcher missed: ``evidence`` (a
    sentence of the version) bears on the claim with ``stance``. It is stored confirmed,
    and its sentence joins the examples as a confirmed flag's does. A flag the matcher
    already raised for this sentence, claim and version is confirmed instead of a second
    one. Where the reviewer had rejected the sentence for this claim, those verdicts are
    replaced by this one, so it is neither kept as a near miss nor kept from being
    flagged again. Returns the flag and how many earlier rejections were replaced."""
    digest = evidence_key(evidence)
    same = conn.execute(
        select(flags.c.id, flags.c.version_id, flags.c.verdict).where(
            flags.c.claim_id == claim_id, flags.c.evidence_digest == digest
        )
    ).all()
    here = [r.id for r in same if r.version_id == version_id]
    if here:
        flag_id = here[0]
    else:
        added = FlagRecord(claim_id, stance, 1.0, evidence.strip(), [ADDED], from_change=False)
        result = conn.execute(insert(flags), flag_row(added, source_id, version_id, None, now))
        flag_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    replaced = [r.id for r in same if r.verdict == "rejected" and r.id != flag_id]
    if replaced:  # confirmed now; their near misses go, and one example stands for all
        conn.execute(
            update(flags)
            .where(flags.c.id.in_(replaced))
            .values(verdict="confirmed", verdict_stance=stance, reviewed_at=now)
        )
        conn.execute(delete(claim_examples).where(claim_examples.c.flag_id.in_(replaced)))
    return review(conn, flag_id, "confirmed", now, stance), len(replaced)


def add_found(
    conn: Connection,
    source_id: int,
    version_id: int,
    found: Sequence[FlagRecord],
    now: datetime,
) -> list[int]:
    """Flags a scan of the archive found in a version (``flags scan``), stored new, so
    that they reach the digest and the review like any flag; only the ``unseen`` ones.
    Returns the new flags' ids."""
    ids = []
    for f in unseen(conn, source_id, version_id, found):
        result = conn.execute(insert(flags), flag_row(f, source_id, version_id, None, now))
        ids.append(int(result.inserted_primary_key[0]))  # type: ignore[index]
    return ids


def unseen(
    conn: Connection, source_id: int, version_id: int, found: Sequence[FlagRecord]
) -> list[FlagRecord]:
    """The flags of ``found`` (at most one per claim) that do not repeat what the store
    holds: not for a claim the version already has a flag for, not for a sentence the
    source was already flagged with for the claim (in any version), and not for a
    sentence the reviewer rejected for the claim."""
    if not found:
        return []
    ours = conn.execute(
        select(flags.c.claim_id, flags.c.version_id, flags.c.evidence_digest).where(
            flags.c.source_id == source_id,
            flags.c.claim_id.in_(sorted({f.claim_id for f in found})),
        )
    ).all()
    flagged = {r.claim_id for r in ours if r.version_id == version_id}
    known = {(r.claim_id, r.evidence_digest) for r in ours} | rejected_among(conn, found)
    kept: list[FlagRecord] = []
    for f in found:
        if f.claim_id in flagged or (f.claim_id, evidence_key(f.evidence)) in known:
            continue
        kept.append(f)
        flagged.add(f.claim_id)
    return kept


def load_examples(
    conn: Connection, rows: Sequence[tuple[str | None, str | None, str]], now: datetime
) -> None:
    """Make ``rows`` ((claim, stance, text); claim None for a near miss) the story's
    corpus examples, replacing the previous corpus (verdicts stay)."""
    conn.execute(delete(claim_examples).where(claim_examples.c.origin == "corpus"))
    if rows:
        conn.execute(
            insert(claim_examples),
            [
                {"claim_id": c, "stance": s, "text": t, "origin": "corpus", "created_at": now}
                for c, s, t in rows
            ],
        )


def examples(conn: Connection) -> list[Example]:
    """Every example: (claim, stance, text, origin), corpus first, then verdicts."""
    query = select(claim_examples).order_by(claim_examples.c.origin, claim_examples.c.id)
    return [(r.claim_id, r.stance, r.text, r.origin) for r in conn.execute(query)]


def vectors_for(conn: Connection, model: str, digests: Iterable[str]) -> dict[str, bytes]:
    """The cached vectors of these sentence digests under ``model`` (missing ones left out)."""
    rows = _kept(conn, model, digests, sentence_vectors.c.digest, sentence_vectors.c.vector)
    return {r.digest: bytes(r.vector) for r in rows}


def save_vectors(conn: Connection, model: str, vectors: dict[str, bytes]) -> None:
    """Keep vectors by digest; ones already kept (by another writer too) are skipped."""
    known = {r.digest for r in _kept(conn, model, vectors, sentence_vectors.c.digest)}
    rows = [
        {"model": model, "digest": k, "vector": v} for k, v in vectors.items() if k not in known
    ]
    if rows:
        conn.execute(insert_ignoring_duplicates(conn, sentence_vectors), rows)


def cached(conn: Connection, kind: str, key: str) -> bytes | None:
    """The matcher's cached ``kind`` if it was computed from the same inputs (``key``)."""
    row = conn.execute(
        select(matcher_cache.c.data).where(matcher_cache.c.kind == kind, matcher_cache.c.key == key)
    ).first()
    return bytes(row.data) if row is not None else None


def save_cached(conn: Connection, kind: str, key: str, data: bytes, now: datetime) -> None:
    """Keep ``data`` as the matcher's ``kind``, replacing what older inputs gave (or a
    concurrent worker, fitting the same probes, wrote)."""
    row = {"kind": kind, "key": key, "data": data, "created_at": now}
    conn.execute(insert_replacing(conn, matcher_cache).values(**row))


def _kept(conn: Connection, model: str, digests: Iterable[str], *columns: Any) -> Iterator[Any]:
    """``columns`` of the kept vectors among these digests, 500 digests a query."""
    wanted = sorted(set(digests))
    for i in range(0, len(wanted), 500):
        query = select(*columns).where(
            sentence_vectors.c.model == model,
            sentence_vectors.c.digest.in_(wanted[i : i + 500]),
        )
        yield from conn.execute(query)
