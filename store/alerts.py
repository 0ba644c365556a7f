"""Alert state: which changes and flags were announced, and which failed to be.

An item is pending while it has no ``sent`` row and fewer than ``max_attempts``
failed attempts. Recording happens right after each send, so an alert goes out
once; a process killed between the send and the record sends it again (at least
once, never silently lost).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update

from store.repo import Store
from store.schema import alerts, changes, flags


def pending(
    store: Store,
    min_significance: float,
    min_score: float,
    stances: tuple[str, ...],
    since: datetime,
    max_attempts: int = 5,
    limit: int = 100,
) -> tuple[list[int], list[int]]:
    """Ids of changes and flags that pass the thresholds and still need announcing."""
    over = changes.c.significance >= min_significance
    strong = and_(
        flags.c.score >= min_score,
        flags.c.stance.in_(stances),
        func.coalesce(flags.c.verdict, "") != "rejected",
    )
    return (
        _waiting(store, "change", changes, over, since, max_attempts, limit),
        _waiting(store, "flag", flags, strong, since, max_attempts, limit),
    )


def unchecked_changes(
    store: Store, since: datetime, max_attempts: int = 5, limit: int = 100
) -> list[int]:
    """Ids of changes since ``since`` still to be read for the watched phrases: kind
    "phrase" has a row a change once it is read, "sent" when it needed no alert or its
    alert went out, "failed" (and read again) while the alert could not be sent."""
    news = changes.c.kind != "selector"  # the user's new selection: no news of the page
    return _waiting(store, "phrase", changes, news, since, max_attempts, limit)


def _waiting(
    store: Store, kind: str, table: Any, cond: Any, since: datetime, max_attempts: int, limit: int
) -> list[int]:
    """Ids of ``table``'s rows since ``since`` that meet ``cond`` and whose alert of
    ``kind`` is neither sent nor out of attempts, oldest first."""
    done = select(alerts.c.item_id).where(
        alerts.c.kind == kind,
        (alerts.c.status == "sent") | (alerts.c.attempts >= max_attempts),
    )
    query = (
        select(table.c.id)
        .where(cond, table.c.created_at >= since, table.c.id.not_in(done))
        .order_by(table.c.id)
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return list(conn.execute(query).scalars())


def record(store: Store, kind: str, item_id: int, now: datetime, error: str | None) -> None:
    """One attempt's outcome: sent, or failed with ``error`` (attempts counted)."""
    with store.engine.begin() as conn:
        row = conn.execute(
            select(alerts.c.attempts).where(alerts.c.kind == kind, alerts.c.item_id == item_id)
        ).first()
        values = {
            "status": "failed" if error else "sent",
            "sent_at": None if error else now,
            "error": error,
        }
        if row is None:
            conn.execute(
                insert(alerts).values(
                    kind=kind, item_id=item_id, attempts=1, first_at=now, **values
                )
            )
        else:
            conn.execute(
                update(alerts)
                .where(alerts.c.kind == kind, alerts.c.item_id == item_id)
                .values(attempts=row.attempts + 1, **values)
            )


def failures(store: Store) -> tuple[int, str | None]:
    """How many alerts are failing now, and the latest error."""
    with store.engine.connect() as conn:
        n = conn.execute(
            select(func.count()).select_from(alerts).where(alerts.c.status == "failed")
        ).scalar_one()
        last = conn.execute(
            select(alerts.c.error)
            .where(alerts.c.status == "failed")
            .order_by(alerts.c.first_at.desc())
            .limit(1)
        ).scalar()
    return int(n), last
