"""Store rows and revision histories for tests and benchmarks."""

from __future__ import annotations

import random
from datetime import timedelta

from store.models import CaptureRecord, SourceUpdate
from tests.support import NOW


def capture(source_id: int, minutes: int = 0) -> CaptureRecord:
    return CaptureRecord(
        source_id=source_id,
        started_at=NOW + timedelta(minutes=minutes),
        duration_ms=1,
        outcome="new_version",
    )


def schedule(minutes: int = 0) -> SourceUpdate:
    at = NOW + timedelta(minutes=minutes)
    return SourceUpdate(
        next_check_at=at + timedelta(hours=1), last_checked_at=at, consecutive_failures=0
    )


def revisions(n: int, seed: int = 7) -> list[tuple[str, bytes]]:
    """n successive texts (small word edits each, some Arabic) and raw pages around them."""
    rng = random.Random(seed)
    words = [
        "Meta",
        "said",
        "its",
        "next",
        "model",
        "would",
        "stay",
        "closed",
        "while",
        "Llama",
        "4",
        "remains",
        "open",
        "ميتا",
        "قالت",
        "إن",
        "نموذجها",
        "القادم",
        "سيبقى",
        "مغلقًا",
    ] * 40
    out = []
    for i in range(n):
        words[rng.randrange(len(words))] = rng.choice(["billion", "مليار", f"v{i}", "not"])
        text = " ".join(words)
        raw = f"<html><body><nav>menu</nav><article><p>{text}</p></article><footer>{i}</footer></body></html>"
        out.append((text, raw.encode()))
    return out
