"""Words for counts in what claimwatch prints: "1 change", "2 changes"."""

from __future__ import annotations


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, the noun plural unless ``n`` is 1 (every noun used takes -s)."""
    return f"{n} {noun}{'s' if n != 1 else ''}"
