"""Evidence the reviewer adds: a sentence of an archived version that bears on a claim,
named by quoting part of it (``flags add``, and the web view's source page).

The matcher's misses can only be taught this way: a review of its flags never sees
them. The flag is stored confirmed (``store.claims.add``), so its sentence joins the
story's examples at once, as a confirmed flag's does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from archiver.text.segment import contains_loosely, sentences_containing
from store.errors import UsageError
from store.models import Source, StoredFlag, Version
from store.repo import Store


@dataclass(frozen=True)
class Added:
    flag: StoredFlag  # flag.added False: the matcher had flagged it, and it is confirmed
    replaced: int  # earlier rejections of the sentence for the claim, now confirmed


def add_evidence(
    store: Store,
    source: Source,
    version: Version,
    claim_id: str,
    stance: str,
    quote: str,
    now: datetime,
) -> Added:
    """Flag the one sentence of ``version`` that contains ``quote`` (case and spacing
    aside) as evidence for an active claim. A mistake is a ``UsageError`` that names the
    input and says what to do; nothing is written then."""
    require_active(store, claim_id)
    text = store.read_text(version)
    found = sentences_containing(text, quote)
    where = f"version {version.number} of {source.name}"
    if not found and contains_loosely(text, quote):
        raise UsageError(
            f"{quoted(quote)} runs over more than one sentence of {where}; a flag's "
            "evidence is one sentence: quote the one that bears on the claim"
        )
    if not found:
        raise UsageError(
            f"no sentence of {where} contains {quoted(quote)}; quote one sentence as "
            f"'claimwatch show {source.name} {version.number}' prints it"
        )
    if len(found) > 1:
        raise UsageError(
            f"{len(found)} sentences of {where} contain {quoted(quote)}; quote more of "
            "the one you mean"
        )
    flag, replaced = store.add_flag(version, claim_id, stance, found[0], now)
    return Added(flag, replaced)


def require_active(store: Store, claim_id: str) -> None:
    """A ``UsageError`` unless ``claim_id`` is a claim of the claims file loaded now: a
    retired claim keeps its flags, but new evidence is for the story as it stands."""
    if not store.has_claim(claim_id, active_only=True):
        if store.has_claim(claim_id):
            raise UsageError(
                f"claim {claim_id!r} is retired (not in the claims file); flag an active claim"
            )
        raise UsageError(f"no claim {claim_id!r}; see 'claimwatch claims list'")


def quoted(text: str, most: int = 60) -> str:
    """The reader's quote in an error line: escaped, and cut if long."""
    return repr(text if len(text) <= most else text[: most - 1] + "…")
