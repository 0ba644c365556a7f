"""What ``claimwatch status`` reports, as one plain record: the counts, the due
backlog, the workers, failing and warned sources, failing alerts and the digests.

``claimwatch status --json`` prints it and the web view serves it at
``/api/v1/status``, so a script or an uptime check reads the same fields from both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from archiver.app.schedule import next_cron
from store import digests as digest_state
from store import leases
from store.alerts import failures
from store.db import mask_url
from store.repo import Store


@dataclass(frozen=True)
class StatusOptions:
    db_url: str  # shown masked: a password in it never leaves
    digest_cron: str | None = None  # when digests go out, for "next_digest"
    timezone: str = "UTC"  # the cron's time zone


def status_record(store: Store, now: datetime, options: StatusOptions) -> dict[str, Any]:
    st = store.status(now)
    backlog = leases.backlog(store, now)
    sent = [d for d in digest_state.history(store) if d.status == "sent"]
    next_digest = None
    if options.digest_cron:
        next_digest = next_cron(options.digest_cron, now, options.timezone)
    failing_alerts, last_alert_error = failures(store)
    return {
        "db": mask_url(options.db_url),
        "story_summary": store.story_summary(),  # as the claims file last gave it
        "sources": st.sources,
        "versions": st.versions,
        "captures": st.captures,
        "failed_captures": st.failed_captures,
        "blob_bytes": st.blob_bytes,
        "approximate": st.approximate,
        "backlog": {
            "due": backlog.due,
            "leased": backlog.leased,
            "oldest_due_at": backlog.oldest_due_at,
            "oldest_source": backlog.oldest_source,
        },
        "workers": [
            {
                "id": w["id"],
                "host": w["host"],
                "pid": w["pid"],
                "started_at": w["started_at"],
                "heartbeat_at": w["heartbeat_at"],
                "checks": w["checks"],
                "status": leases.worker_state(w, now),
            }
            for w in leases.list_workers(store)
        ],
        "failing": [
            {"source": s.name, "consecutive_failures": s.consecutive_failures} for s in st.failing
        ],
        "next_due": [{"source": s.name, "next_check_at": s.next_check_at} for s in st.next_due],
        "warnings": [{"source": s.name, "warning": s.warning} for s in st.warned],
        "alerts": {"failing": failing_alerts, "last_error": last_alert_error},
        "last_digest": sent[0].sent_at if sent else None,
        "next_digest": next_digest,
    }
