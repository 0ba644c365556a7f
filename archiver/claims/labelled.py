"""Labelled passages: reading them, and measuring a matcher on them.

A labelled file has one JSON object per line: ``{"id", "text", "labels":
{CLAIM_ID: supports|contradicts|mentions}}``, optionally ``lang`` and ``url``
(docs/claims.md). ``evaluate`` (or ``tally``, for flags found elsewhere) gives
precision, recall and F1 per claim and per language, the stance confusion matrix,
bootstrap intervals over pages, and what each score cut-off would keep. Training on
them is ``archiver.claims.training``.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archiver.claims.matcher import BATCH, Matcher, batches, match_each, prefetch
from archiver.claims.rules import STANCES, Claim, Flag
from archiver.claims.semantic import Embedder
from store.errors import NESTED, ConfigError


@dataclass(frozen=True)
class Labelled:
    id: str
    text: str
    labels: dict[str, str]
    lang: str = "und"
    group: str = ""  # the page it was written from: folds never split a page


def read_labelled(path: Path, claims: Sequence[Claim] | None = None) -> list[Labelled]:
    """Labelled passages from a JSONL file; one clear error naming file:line otherwise."""
    known = {c.id for c in claims} if claims is not None else None
    out = []
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), f"cannot be read ({exc.strerror or exc})") from None
    try:
        lines = data.decode("utf-8-sig").splitlines()  # a BOM is fine
    except UnicodeDecodeError as exc:
        bad = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}:{bad}", f"not UTF-8 text ({exc.reason}); save the file as UTF-8"
        ) from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(line)
            text, labels = row["text"], row.get("labels", {})
            if not isinstance(text, str) or not isinstance(labels, dict):
                raise TypeError("'text' must be a string and 'labels' a mapping")
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(where, f"expected {{'id', 'text', 'labels'}} ({exc})") from None
        except RecursionError:
            raise ConfigError(where, NESTED) from None
        for cid, stance in labels.items():
            if stance not in STANCES:
                raise ConfigError(where, f"stance {stance!r} is not one of {', '.join(STANCES)}")
            if known is not None and cid not in known:
                some = ", ".join(sorted(known)[:12]) + (", ..." if len(known) > 12 else "")
                raise ConfigError(
                    where,
                    f"labels unknown claim {cid!r}; the claims file has {some} "
                    "(--claims names another claims file)",
                )
        out.append(
            Labelled(
                str(row.get("id", n)),
                text,
                dict(labels),
                str(row.get("lang", "und")),
                str(row.get("url", row.get("id", n))),
            )
        )
    return out


def embedded_ahead(rows: Sequence[Labelled], embedder: Embedder | None) -> Iterator[Labelled]:
    """The rows in order, the sentences of each ``BATCH`` of them embedded in one call
    just before they are used (``prefetch``)."""
    for batch in batches(rows, BATCH):
        prefetch([r.text for r in batch], embedder)
        yield from batch


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def scores(self) -> dict[str, float]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(f, 3)}


RESAMPLES = 1000  # bootstrap resamples for the confidence intervals
# Score cut-offs ``evaluate`` also counts at: what ``flags --min-score`` would keep of
# the flags (``[alerts] min_score`` cuts the same way, leaving out "mentions").
MIN_SCORES = (0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class Report:
    passages: int = 0
    overall: Counts = field(default_factory=Counts)
    by_claim: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    by_lang: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)  # (label, found)
    by_page: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    right_by_page: Counter[str] = field(default_factory=Counter)  # stances found right
    # only the flags scored at least this (``MIN_SCORES``)
    by_min_score: dict[float, Counts] = field(default_factory=lambda: defaultdict(Counts))

    def stance_accuracy(self) -> float:
        total = sum(self.confusion.values())
        right = sum(n for (want, got), n in self.confusion.items() if want == got)
        return round(right / total, 3) if total else 0.0

    def intervals(self, resamples: int = RESAMPLES, seed: int = 0) -> dict[str, Any]:
        """95% confidence intervals of the overall figures, by a bootstrap over pages:
        passages written from one page rise and fall together, so whole pages are
        drawn. The same report and seed always give the same intervals."""
        pages = np.asarray(
            [(c.tp, c.fp, c.fn, self.right_by_page[g]) for g, c in self.by_page.items()],
            np.float64,
        ).reshape(-1, 4)
        if len(pages) < 2:
            return {}
        rng = np.random.default_rng(seed)
        drawn = pages[rng.integers(0, len(pages), (resamples, len(pages)))].sum(axis=1)
        tp, fp, fn, right = drawn.T
        with np.errstate(divide="ignore", invalid="ignore"):
            figures = {
                "precision": np.where(tp + fp > 0, tp / (tp + fp), 0.0),
                "recall": np.where(tp + fn > 0, tp / (tp + fn), 0.0),
                "f1": np.where(tp > 0, 2 * tp / (2 * tp + fp + fn), 0.0),
                "stance_accuracy": np.where(tp > 0, right / tp, 0.0),
            }
        out: dict[str, Any] = {
            name: [round(float(v), 3) for v in np.percentile(values, [2.5, 97.5])]
            for name, values in figures.items()
        }
        out["method"] = f"bootstrap over {len(pages)} pages, {resamples} resamples, seed {seed}"
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "passages": self.passages,
            "overall": {**self.overall.scores(), **self.overall.__dict__},
            "stance_accuracy": self.stance_accuracy(),
            "stance_pairs": sum(self.confusion.values()),  # labelled and flagged (0: no figure)
            "intervals": self.intervals(),
            "by_claim": {k: {**v.scores(), **v.__dict__} for k, v in sorted(self.by_claim.items())},
            "by_language": {
                k: {**v.scores(), **v.__dict__} for k, v in sorted(self.by_lang.items())
            },
            "stance_confusion": {
                want: {got: self.confusion[(want, got)] for got in STANCES} for want in STANCES
            },
            "by_min_score": {
                f"{s:.1f}": {**c.scores(), **c.__dict__}
                for s, c in sorted(self.by_min_score.items())
            },
        }


def evaluate(rows: Sequence[Labelled], claims: Sequence[Claim], matcher: Matcher) -> Report:
    """Run the matcher on every passage and count against the labels."""
    found = match_each(((row.id, row.text) for row in rows), claims, matcher)
    return tally(rows, claims, (flags for _id, flags in found))


def tally(
    rows: Sequence[Labelled], claims: Sequence[Claim], flags: Iterable[Sequence[Flag]]
) -> Report:
    """Count the flags found for each passage (``flags``, in the order of ``rows``)
    against its labels."""
    report = Report()
    for row, flagged in zip(rows, flags, strict=True):
        report.passages += 1
        found = {f.claim: f for f in flagged}
        page = report.by_page[row.group]
        for c in claims:
            want, got = row.labels.get(c.id), found.get(c.id)
            for counts in (report.overall, report.by_claim[c.id], report.by_lang[row.lang], page):
                if want and got:
                    counts.tp += 1
                elif got:
                    counts.fp += 1
                elif want:
                    counts.fn += 1
            if want and got:
                report.confusion[(want, got.stance)] += 1
                report.right_by_page[row.group] += got.stance == want
            for cut in MIN_SCORES:
                kept, counts = got is not None and got.score >= cut, report.by_min_score[cut]
                counts.tp += bool(want) and kept
                counts.fp += not want and kept
                counts.fn += bool(want) and not kept
    return report
