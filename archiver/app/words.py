"""Words in what claimwatch prints: counts ("1 change", "2 changes"), a flag's score."""

from __future__ import annotations


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, the noun plural unless ``n`` is 1 (every noun used takes -s)."""
    return f"{n} {noun}{'s' if n != 1 else ''}"


def score_words(score: float, added: bool) -> str:
    """A flag's score as printed; a flag the reviewer added (``flags add``) is stored at
    1.00, which is not the matcher's, so it says who flagged it instead."""
    return "added by a reviewer" if added else f"{score:.2f}"
